"""A staggered site's answer gets a robustness verdict of its own: re-fits of Callaway-Sant'Anna itself (every
cohort's start moved back by the same time, each comparison unit left out) with the pre-trend test, judged by the
common-start sites' rule, recorded in results.json and worded on the page without "not assessed".
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from evallib.evaluation.site.rollout_checks import (
    STAGGERED_CHECKS,
    check_staggered_robustness,
    distinct_assignments,
)
from evallib.evaluation.site.staggered_site import ESTIMATOR, LABEL, fake_start_design
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.did.stacked import StackedDiD

from .conftest import rollout_design


def _pretrend(p: float) -> Estimate:
    return Estimate("admissions", "pretrend", 0.0, 0.01, -0.02, 0.02, p, "did_pretrend", "ols", "log_per_year", 4, 26)


def _check(design: Design, pretrend_p: float = 0.5):  # type: ignore[no-untyped-def]
    est = StaggeredPlacebo(n_draws=499, seed=3)
    result = est.fit(design)
    stacked = StackedDiD(n_draws=499, seed=3).fit(design).overall
    fake = fake_start_design(design)
    assert fake is not None
    in_time = est.fit(fake).overall
    rb = check_staggered_robustness(
        est,
        design,
        result,
        placebo_in_time=replace(in_time, method=f"{in_time.method}_placebo_in_time"),
        pretrend=_pretrend(pretrend_p),
        estimator_name=ESTIMATOR,
        estimator_label=LABEL,
        stacked=stacked,
    )
    return est, result, rb


@pytest.mark.unit
def test_a_clear_effect_that_every_refit_agrees_with_is_confirmed() -> None:
    est, result, rb = _check(rollout_design(1, -0.2))
    assert result.overall.p_value <= 0.05
    assert tuple(c.name for c in rb.checks) == STAGGERED_CHECKS
    assert [c.status for c in rb.checks] == ["agrees", "agrees", "agrees", "agrees"], rb.checks
    assert rb.verdict == "confirmed" and rb.estimator == "callaway_santanna" and rb.estimator_label == LABEL
    assert LABEL in rb.checks[0].detail and LABEL in rb.checks[1].detail


@pytest.mark.unit
def test_leave_one_out_is_the_range_of_refits_without_each_comparison_unit() -> None:
    design = rollout_design(2, -0.2)
    est, _, rb = _check(design)
    never = [u for u, s in zip(design.units, design.unit_starts or (), strict=True) if s is None]
    refits = [est.fit(design.drop(u)).overall.estimate for u in never]
    assert rb.leave_one_out == pytest.approx((min(refits), max(refits)), abs=1e-12)


@pytest.mark.unit
def test_a_change_before_the_start_found_by_the_fake_start_leaves_the_effect_not_confirmed() -> None:
    _, result, rb = _check(rollout_design(3, -0.2, early_drop=-0.15))
    assert result.overall.p_value <= 0.05
    check = dict((c.name, c) for c in rb.checks)["placebo in time"]
    assert check.status == "disagrees" and "finds an effect where none can be" in check.detail
    assert rb.verdict == "not confirmed"


@pytest.mark.unit
def test_a_failed_pre_trend_test_leaves_the_effect_not_confirmed() -> None:
    _, _, rb = _check(rollout_design(1, -0.2), pretrend_p=0.01)
    assert dict((c.name, c.status) for c in rb.checks)["pre-trend test"] == "disagrees"
    assert rb.verdict == "not confirmed"


@pytest.mark.unit
def test_no_clear_effect_is_never_confirmed() -> None:
    _, result, rb = _check(rollout_design(4, 0.0))
    if result.overall.p_value > 0.05:
        assert rb.verdict == "no clear effect"
    assert dict((c.name, c.status) for c in rb.checks)["leave one comparator out"] in ("not run", "agrees")


@pytest.mark.unit
def test_the_smallest_attainable_p_counts_distinct_assignments() -> None:
    assert distinct_assignments(5, (2, 1)) == math.comb(5, 2) * 3
    assert distinct_assignments(40, (2, 1, 1)) > 999


@pytest.fixture(scope="module")
def example(staggered_example):  # type: ignore[no-untyped-def]
    """The staggered worked example, evaluated once per session (conftest.staggered_example)."""
    return staggered_example


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


@pytest.mark.integration
def test_the_worked_examples_verdict_comes_from_refits_of_its_own_estimator(example) -> None:  # type: ignore[no-untyped-def]
    rb = example.robustness
    assert rb is example.staggered.robustness and rb.estimator == "callaway_santanna"
    assert tuple(c.name for c in rb.checks) == STAGGERED_CHECKS
    assert example.answer.verdict == rb.verdict
    assert rb.main.estimate == example.answer.row.estimate
    d = example.to_json_dict()
    assert d["robustness"]["estimator"] == "callaway_santanna"
    assert d["answer"]["robustness_verdict"] == rb.verdict
    assert [c["check"] for c in d["robustness"]["checks"]] == list(STAGGERED_CHECKS)


@pytest.mark.integration
def test_the_page_names_the_refitted_estimator_and_never_says_not_assessed(example) -> None:  # type: ignore[no-untyped-def]
    from evallib.reporting.findings import findings, summary
    from evallib.reporting.robustness_section import robustness

    page = _text(robustness(example).html)
    assert f"Every check re-fits the estimator the answer comes from, {LABEL}" in page
    assert f"{LABEL}: overall effect" in page  # the table's main row names the estimator
    assert "placebo in time (fake start)" in page
    assert "matched comparators" not in page and "synthetic control" not in page
    words = {"confirmed": "Confirmed:", "not confirmed": "Not confirmed", "no clear effect": "No clear effect"}
    assert words[example.robustness.verdict] in page
    for html in (findings(example).html, summary(example).html, robustness(example).html):
        assert "not assessed" not in _text(html)
