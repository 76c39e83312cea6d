"""A staggered answer's own p-value gives the start dates to randomly chosen units (never every assignment): its
answer, results.json and summary say so, with the draws and the Monte Carlo error (review of issue 22)."""

from __future__ import annotations

import pytest

from evallib.methods.inference.permutation import mc_error

pytestmark = pytest.mark.integration


def test_the_staggered_answer_states_its_draws_and_monte_carlo_error(staggered_example) -> None:  # type: ignore[no-untyped-def]
    ev = staggered_example
    assert ev.answer is not None and ev.answer.estimator == "callaway_santanna"
    answer = ev.answer.to_json_dict()
    assert answer["placebo_draws"] == ev.protocol.n_placebo_draws
    assert answer["p_value_mc_error"] == pytest.approx(mc_error(answer["p_value"], answer["placebo_draws"]))
    assert answer["p_value_mc_error"] > 0


def test_the_staggered_result_summary_names_its_sampled_p_value(staggered_example) -> None:  # type: ignore[no-untyped-def]
    result = staggered_example.staggered.result
    assert result.placebo_draws > 0
    assert "Monte Carlo error" in result.summary()


def test_the_stacked_did_says_its_p_value_is_sampled(staggered_example) -> None:  # type: ignore[no-untyped-def]
    stacked = staggered_example.staggered.stacked
    assert stacked is not None and stacked.placebo_draws == staggered_example.protocol.n_placebo_draws
    assert stacked.p_value_mc_error == pytest.approx(mc_error(stacked.overall.p_value, stacked.placebo_draws))
