"""With several treated units placebo assignments are random sets (capped draws), so every placebo p-value is
sampled: each estimator's result, the answer and its other methods in results.json, and the page say how many
assignments and the Monte Carlo error, by the same fields and words as a sampled single-unit p-value; the method
text follows the result (issue 22, review)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from evallib import evaluate_site
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.methods.inference.permutation import mc_error
from evallib.reporting.findings import summary
from evallib.reporting.sections import did, its

from .conftest import simulated_panel, simulated_site

pytestmark = pytest.mark.integration

#: Sampled estimators with several treated units, and the draws each makes (the refitting ones are capped at 199).
DRAWS = {"did": 999, "did_studentized": 999, "controlled_its": 999, "rate_ratio": 199, "synthetic_did": 199}


@pytest.fixture(scope="module")
def several() -> SiteEvaluation:
    protocol, long = simulated_site(60, 60, 24, seed=4)  # 3 of 60 units treated: 34,220 possible sets
    protocol = replace(protocol, treated_units=("T000", "T001", "T002"), primary_estimator="did")
    return evaluate_site(protocol, panel=simulated_panel(long))


def _text(html: object) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", str(html)))


def test_every_sampling_estimator_states_its_draws_and_the_one_error_formula(several: SiteEvaluation) -> None:
    a = several.primary
    assert a is not None
    for name, draws in DRAWS.items():
        res = a.headline[name].result
        assert res.placebo_draws == draws, name
        assert res.p_value_mc_error == pytest.approx(mc_error(a.headline[name].row.p_value, draws)), name
    assert a.headline["synthetic_control"].result.placebo_draws == 0  # one joined series against each donor in turn
    for name in DRAWS:  # the notebook's plain-text summary says so too
        assert f"placebo p-value from {DRAWS[name]} seeded random assignments" in a.headline[name].result.summary()
    assert "Monte Carlo" not in a.headline["synthetic_control"].result.summary()
    es = a.event_study
    assert es is not None and es.placebo_draws == 999
    assert es.p_value_mc_error == pytest.approx(mc_error(es.headline.p_value, 999))


def test_the_answer_and_its_other_methods_carry_the_fields_in_results_json(several: SiteEvaluation) -> None:
    ans = several.answer
    assert ans is not None and ans.estimator == "did"
    saved = ans.to_json_dict()
    assert saved["placebo_draws"] == 999 and saved["p_value_mc_error"] == pytest.approx(mc_error(ans.row.p_value, 999))
    views = {v["estimator"]: v for v in saved["other_methods"]}
    for name, draws in DRAWS.items():
        if name != "did":
            assert views[name]["placebo_draws"] == draws and views[name]["p_value_mc_error"] >= 0, name
    for exhaustive in ("synthetic_control", "own_series"):
        assert "placebo_draws" not in views.get(exhaustive, {}) and "p_value_mc_error" not in views.get(exhaustive, {})


def test_the_page_says_the_p_value_is_sampled_and_how_precise(several: SiteEvaluation) -> None:
    ans = several.answer
    assert ans is not None
    text = _text(summary(several))
    assert "999 randomly chosen sets of 3 comparison" in text and f"{ans.p_value_mc_error:.3f}" in text


def test_the_method_text_says_random_sets_not_every_unit_in_turn(several: SiteEvaluation) -> None:
    text = _text(did(several))
    assert "random sets of as many units (drawn from every unit, the site's" in text
    assert "each comparison unit is given the treatment in turn and" not in text
    assert "p-value from 999 random placebo assignments, Monte Carlo error" in text
    assert "pre-trend test: p-value from 999 random placebo assignments" in text
    assert "event study (first period after the start): p-value from 999" in text
    its_text = _text(its(several))
    assert "random sets of as many comparison units as the site has as placebo sites" in its_text
    assert "every comparison unit in turn" not in its_text
    assert "controlled interrupted time series: p-value from 999 random placebo assignments" in its_text
    assert not re.search(r"\d\.\)", its_text)  # each sentence ends once, not inside a parenthesis


def test_an_exhaustive_site_says_every_unit_takes_the_treatment_in_turn() -> None:
    protocol, long = simulated_site(40, 60, 24, seed=4)
    ev = evaluate_site(replace(protocol, primary_estimator="did"), panel=simulated_panel(long))
    text = _text(did(ev))
    assert "each comparison unit is given the treatment in turn and the site's estimate is ranked" in text
    assert "random" not in text and "Monte Carlo" not in text
    assert "every comparison unit in turn as a placebo site" in _text(its(ev))
    saved = ev.answer.to_json_dict() if ev.answer is not None else {}
    assert "placebo_draws" not in saved and all("placebo_draws" not in v for v in saved["other_methods"])
