"""Every robustness check re-fits the estimator the answer comes from, and the verdict is judged on those re-fits.

The checks (a fake start in the pre-period, the 10 matched comparators, leaving each comparator out) re-fit the
primary estimator by name on a modified design; these tests re-fit it independently and compare. The verdict also
needs the pre-specified pre-trend test not to fail, and the checks' words are in percent, not log units.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from evallib import evaluate_site, load_params
from evallib.evaluation.site.coverage import Coverage
from evallib.evaluation.site.estimators import DesignData, fit_headline, leave_one_out
from evallib.evaluation.site.robustness import Robustness, check_robustness
from evallib.evaluation.site.verdict import effect_text, judge
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.simulate import simulate_nhs_panel
from evallib.methods.synth.synthetic_did import SyntheticDiD

from .conftest import ROOT, estimate_row, robustness_of

N_PRE, N_POST = 24, 12


def _design(n_units: int = 24, n_treated: int = 1, effect: float = math.log(0.8), seed: int = 7) -> DesignData:
    frame = simulate_nhs_panel(
        n_units,
        N_PRE + N_POST,
        n_treated=n_treated,
        start_period=N_PRE,
        effect=effect,
        first_month="2013-04",
        seed=seed,
    )
    long = frame[["period", "unit", "value", "treated", "post"]].reset_index(drop=True)
    start = pd.Timestamp(sorted(long["period"].unique())[N_PRE])
    design = Design.from_long(
        long, outcome="value", unit="unit", time="period", treated="treated", start=start, measure="count", label="y"
    )
    return DesignData(design, n_draws=99, seed=1)


def _robustness(design: DesignData, primary: str, pretrend: Estimate | None = None) -> Robustness:
    wide = design.design.frame()
    treated, pool = design.treated_units, design.comparison_units
    coverage = Coverage(
        outcome="y",
        source="simulated",
        periods=tuple(wide.index),
        n_pre=N_PRE,
        n_post=N_POST,
        missing_periods=(),
        treated_used=tuple(treated),
        treated_not_in_data=(),
        treated_incomplete=(),
        comparators=tuple(pool),
    )
    return check_robustness(
        main=fit_headline(primary, design),
        design=design,
        coverage=coverage,
        is_proportion=False,
        values=wide,
        site_series=wide[treated].sum(axis=1),
        pretrend=pretrend,
    )


@pytest.mark.unit
@pytest.mark.parametrize("n_treated", [1, 3])
def test_synthetic_did_leave_one_out_equals_refitting_without_each_comparator(n_treated: int) -> None:
    design = _design(n_units=12, n_treated=n_treated)
    sdid = SyntheticDiD(transform="log", n_draws=9)
    loo = sdid.leave_one_out(design.design)
    assert list(loo.index) == design.comparison_units
    for unit, estimate in loo.items():
        refit = sdid.fit(design.design.drop(str(unit))).estimate
        assert estimate == pytest.approx(refit, abs=1e-9), unit


@pytest.mark.unit
@pytest.mark.parametrize("name", ["did", "did_studentized", "rate_ratio"])
def test_leave_one_out_of_any_estimator_equals_its_refits(name: str) -> None:
    design = replace(_design(n_units=8), n_draws=19)
    loo = leave_one_out(name, design)
    treated = design.treated_units
    for unit in design.comparison_units:
        others = [*treated, *(c for c in design.comparison_units if c != unit)]
        row = fit_headline(name, design.restricted_to(others)).row
        expected = math.log(row.estimate) if row.scale == "rate_ratio" else row.estimate
        assert loo[unit] == pytest.approx(expected, abs=1e-6), unit


@pytest.mark.unit
def test_a_fake_start_keeps_the_pre_period_only_with_the_start_moved() -> None:
    design = _design()
    fake = pd.Timestamp(design.design.periods[12])
    placebo = design.with_fake_start(fake)
    assert placebo.start == fake and placebo.design.periods.max() < design.start
    assert (placebo.design.post == (placebo.design.periods >= fake)).all()
    assert placebo.design.n_periods == (~design.design.post).sum()
    assert placebo.design.units == design.design.units


@pytest.mark.unit
@pytest.mark.parametrize(
    ("primary", "method"), [("synthetic_did", "did_synthetic"), ("did", "did_twfe"), ("rate_ratio", "did_poisson_fe")]
)
def test_every_check_refits_the_primary_estimator(primary: str, method: str) -> None:
    design = _design()
    rb = _robustness(design, primary)
    assert rb.estimator == primary
    assert [r.method for r in rb.rows] == [f"{method}_placebo_in_time", f"{method}_matched"]
    # The fake start: the same estimator with its own placebo test on the pre-period, halfway through it.
    fake = pd.Timestamp(design.design.periods[N_PRE // 2])
    own = fit_headline(primary, design.with_fake_start(fake)).row
    placebo = rb.placebo_in_time
    assert placebo is not None and placebo.term == f"placebo_in_time_{fake:%Y-%m}"
    assert (placebo.estimate, placebo.p_value, placebo.ci_low) == (own.estimate, own.p_value, own.ci_low)
    # The matched comparators: the same estimator against them alone.
    assert rb.matched is not None and rb.matched_did is not None
    matched = fit_headline(primary, design.restricted_to([*design.treated_units, *rb.matched.units])).row
    assert (rb.matched_did.estimate, rb.matched_did.p_value) == (matched.estimate, matched.p_value)
    # Leave one out: the range of the same estimator's re-fits.
    loo = leave_one_out(primary, design)
    assert rb.leave_one_out == (float(loo.min()), float(loo.max()))
    words = {c.name: c.detail for c in rb.checks}
    label = rb.estimator_label
    assert words["leave one comparator out"].startswith(label) and words["10 matched comparators"].startswith(label)


@pytest.mark.unit
def test_the_volatile_sites_studentized_did_is_refitted_with_its_own_test() -> None:
    rb = _robustness(_design(), "did_studentized")
    assert {r.inference for r in rb.rows} == {"placebo_studentized"}
    assert [r.method for r in rb.rows] == ["did_twfe_placebo_in_time", "did_twfe_matched"]


MAIN = estimate_row(-0.20, -0.30, -0.10, 0.01)
QUIET = estimate_row(0.01, -0.05, 0.07, 0.70, "did_synthetic_placebo_in_time")
STABLE = pd.Series([-0.22, -0.19, -0.18])


@pytest.mark.unit
def test_a_failed_pretrend_test_leaves_an_effect_unconfirmed() -> None:
    def checks(p: float) -> tuple:
        pretrend = replace(estimate_row(0.02, 0.01, 0.03, p, "did_pretrend"), term="pre_trend_difference")
        return judge(MAIN, QUIET, STABLE, None, None, None, n_comparators=60, pretrend=pretrend)

    failed = checks(0.041)
    assert {c.name: c.status for c in failed}["pre-trend test"] == "disagrees"
    assert robustness_of(MAIN, failed).verdict == "not confirmed"
    assert robustness_of(MAIN, checks(0.30)).verdict == "confirmed"
    # A p-value just under 5% never prints as "p = 0.050" beside "differs".
    assert "p < 0.05" in next(c.detail for c in checks(0.0499) if c.name == "pre-trend test")
    withheld = judge(
        MAIN, QUIET, STABLE, None, None, None, n_comparators=60, pretrend=estimate_row(0.0, *[math.nan] * 3)
    )
    assert {c.name: c.status for c in withheld}["pre-trend test"] == "not run"


@pytest.mark.unit
def test_check_words_are_in_percent_and_name_the_estimator() -> None:
    matched = estimate_row(-0.15, -0.40, 0.10, 0.30, "did_synthetic_matched")
    checks = judge(MAIN, QUIET, STABLE, matched, None, None, n_comparators=60, estimator="synthetic_did")
    words = {c.name: c.detail for c in checks}
    assert (
        "synthetic difference-in-differences with a fake start in the pre-period gives +1.0%"
        in words["placebo in time"]
    )
    assert "ranges from -19.7% to -16.5%" in words["leave one comparator out"]
    assert "gives -13.9%, 95% interval -33.0% to +10.5%" in words["10 matched comparators"]
    assert not any(re.search(r"[+-]0\.\d{3}", w) for w in words.values())  # no log units
    assert effect_text(1.5, "percentage_points") == "+1.5 percentage points"


@pytest.mark.integration
def test_v33s_verdict_follows_from_checks_of_synthetic_did() -> None:
    ev = evaluate_site(load_params(ROOT / "params" / "vanguards" / "V33.yaml"))
    a = ev.primary
    assert a is not None and a.main.name == "synthetic_did" and a.robustness is not None
    rb = a.robustness
    assert rb.estimator == "synthetic_did"
    assert rb.main.method == "did_synthetic" and rb.main.estimate == a.main.row.estimate
    assert {r.method for r in rb.rows} == {"did_synthetic_placebo_in_time", "did_synthetic_matched"}
    status = {c.name: c.status for c in rb.checks}
    # Leave-one-out of synthetic DiD: every re-fit keeps the decrease (the plain DiD's did not matter).
    lo, hi = rb.leave_one_out
    assert lo <= a.main.row.estimate <= hi < 0 and status["leave one comparator out"] == "agrees"
    assert "synthetic difference-in-differences" in next(c.detail for c in rb.checks if c.name == "placebo in time")
    # The verdict follows from those checks alone: on admissions per head every re-fit of synthetic DiD and the
    # pre-trend test agree, so the clear decrease is confirmed (on counts the pre-trend test failed, p = 0.041).
    disagreeing = [c.name for c in rb.checks if c.status == "disagrees"]
    expected = "no clear effect" if not rb.effect else ("not confirmed" if disagreeing else "confirmed")
    assert status["pre-trend test"] == ("disagrees" if a.pretrend_evidence else "agrees")
    assert rb.verdict == expected and ev.answer is not None and ev.answer.verdict == expected
    assert rb.placebo_in_time is not None and np.isfinite(rb.placebo_in_time.p_value)
