"""A site rolled out area by area: its answer's common-start estimates (several treated units, so random placebo
sets) carry their draws and Monte Carlo error in results.json like any other sampled p-value (review of issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evallib.methods.inference.permutation import mc_error
from evallib.protocol.params import load_params
from evallib.protocol.paths import ROOT_ENV

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def test_the_common_start_views_of_a_staggered_answer_say_they_are_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    from evallib.evaluation.site.evaluate import evaluate_site

    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    ev = evaluate_site(load_params(ROOT / "examples" / "staggered" / "rollout.yaml"))
    assert ev.answer is not None
    views = {v["estimator"]: v for v in ev.answer.to_json_dict()["other_methods"]}
    assert views["did"]["placebo_draws"] > 0
    assert views["did"]["p_value_mc_error"] == pytest.approx(
        mc_error(views["did"]["p_value"], views["did"]["placebo_draws"])
    )
    assert "placebo_draws" not in views["synthetic_control"]  # the site's units joined: each donor in turn
