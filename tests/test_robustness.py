"""The robustness verdict's rules: what each check is judged by, what does not run, and what is only reported."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evallib.evaluation.site.robustness import Robustness
from evallib.evaluation.site.verdict import judge
from evallib.methods.base.results import Estimate
from evallib.methods.did.sensitivity import relative_magnitudes

from .conftest import check_status, estimate_row, robustness_of

pytestmark = pytest.mark.unit


def _row(estimate: float, lo: float, hi: float, p: float, method: str = "did_twfe") -> Estimate:
    return estimate_row(estimate, lo, hi, p, method)  # the plain DiD's rows


MAIN = _row(-0.20, -0.30, -0.10, 0.01)
QUIET_FAKE_START = _row(0.01, -0.05, 0.07, 0.70, "did_twfe_placebo_in_time")
STABLE = pd.Series([-0.22, -0.19, -0.18])


def test_parallel_trends_sensitivity_is_reported_beside_the_verdict_not_judged() -> None:
    # Leads whose largest change (0.08) accumulated over three years (bias 0.16 per Mbar) overturns the
    # interval's near end (0.10) below Mbar = 1: reported with a caution, the verdict still confirmed.
    rm = relative_magnitudes({-2: 0.08, -1: 0.0}, n_post_periods=3, ci_low=-0.30, ci_high=-0.10)
    checks = judge(MAIN, QUIET_FAKE_START, STABLE, _row(-0.15, -0.4, 0.1, 0.3), None, rm, n_comparators=60)
    assert check_status(checks, "parallel-trends sensitivity") == "reported"
    rb = robustness_of(MAIN, checks)
    assert rb.verdict == "confirmed"
    assert "0.62 times the largest pre-period one" in rb.sensitivity_words
    assert "rests on trends staying parallel" in rb.sensitivity_words
    robust = relative_magnitudes({-2: 0.01, -1: 0.0}, n_post_periods=3, ci_low=-0.30, ci_high=-0.10)
    words = robustness_of(MAIN, judge(MAIN, None, STABLE, None, None, robust, n_comparators=60)).sensitivity_words
    assert "5.00 times" in words and "rests on" not in words


def test_alternative_comparison_sets_are_judged_by_agreement_not_their_own_significance() -> None:
    not_significant_but_agrees = _row(-0.12, -0.35, 0.11, 0.30)
    checks = judge(MAIN, QUIET_FAKE_START, STABLE, not_significant_but_agrees, None, None, n_comparators=60)
    assert check_status(checks, "10 matched comparators") == "agrees"
    opposite = _row(0.05, 0.01, 0.09, 0.02)
    checks = judge(MAIN, QUIET_FAKE_START, STABLE, opposite, None, None, n_comparators=60)
    assert check_status(checks, "10 matched comparators") == "disagrees"
    rb = robustness_of(MAIN, checks)
    assert rb.verdict == "not confirmed" and [c.name for c in rb.disagreements] == ["10 matched comparators"]
    no_overlap = _row(-0.60, -0.70, -0.45, 0.01)
    assert (
        check_status(judge(MAIN, None, STABLE, no_overlap, None, None, n_comparators=60), "10 matched comparators")
        == "disagrees"
    )


def test_a_placebo_test_that_cannot_reach_five_percent_could_not_test() -> None:
    # 15 comparators: the smallest attainable p is 1/16 > 0.05, so a fake start could never disagree.
    checks = judge(MAIN, QUIET_FAKE_START, STABLE, None, None, None, n_comparators=15)
    assert check_status(checks, "placebo in time") == "could not test"
    assert (
        check_status(judge(MAIN, QUIET_FAKE_START, STABLE, None, None, None, n_comparators=19), "placebo in time")
        == "agrees"
    )
    fake_effect = _row(-0.10, -0.15, -0.05, 0.01, "did_twfe_placebo_in_time")
    assert check_status(judge(MAIN, fake_effect, STABLE, None, None, None, n_comparators=60), "placebo in time") == (
        "disagrees"
    )


def test_checks_that_did_not_run_are_never_counted_as_agreeing() -> None:
    checks = judge(MAIN, None, STABLE, None, None, None, n_comparators=60)
    assert {c.name: c.status for c in checks} == {
        "placebo in time": "not run",
        "leave one comparator out": "agrees",
        "10 matched comparators": "not run",
        "synthetic control": "not run",
        "pre-trend test": "not run",
        "parallel-trends sensitivity": "not run",
    }
    assert robustness_of(MAIN, checks).sensitivity_words == ""


def test_a_null_result_is_never_confirmed() -> None:
    null = _row(-0.02, -0.12, 0.08, 0.60)
    checks = judge(null, QUIET_FAKE_START, STABLE, _row(-0.03, -0.2, 0.1, 0.7), None, None, n_comparators=60)
    rb = robustness_of(null, checks)
    assert rb.verdict == "no clear effect"
    assert check_status(checks, "leave one comparator out") == "not run"
    assert check_status(checks, "parallel-trends sensitivity") == "not run"


def test_one_comparator_that_flips_the_sign_disagrees() -> None:
    flips = pd.Series([-0.22, -0.19, 0.01])
    assert check_status(judge(MAIN, None, flips, None, None, None, n_comparators=60), "leave one comparator out") == (
        "disagrees"
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("lo", "hi"), [(math.nan, math.nan), (-math.inf, -0.1), (-0.3, 0.01)], ids=["withheld", "unbounded", "spans-0"]
)
def test_sensitivity_words_never_report_a_breakdown_that_was_not_measured(lo: float, hi: float) -> None:
    # relative_magnitudes sets breakdown = 0 for an interval that is not finite or already spans zero; the words
    # then say departures "would have to be 0.0 times the largest pre-period one to overturn it", a number no
    # bound was computed for.
    main = _row(-0.2, lo, hi, 0.01)
    rm = relative_magnitudes({-2: 0.05, -1: 0.0}, n_post_periods=3, ci_low=lo, ci_high=hi)
    checks = judge(main, None, pd.Series([-0.2, -0.19]), None, None, rm, n_comparators=60)
    rb = Robustness("y", main, None, (math.nan, math.nan), None, None, None, None, checks=checks, sensitivity=rm)
    assert "0.0 times" not in rb.sensitivity_words


@pytest.mark.unit
def test_sensitivity_words_do_not_print_the_same_number_with_and_without_the_caution() -> None:
    # 1.04 and 0.96 both print "1.0 times"; one carries the caution, the other does not.
    def words(hi: float) -> str:
        main = _row(-0.2, -0.3, hi, 0.01)
        rm = relative_magnitudes({-2: 0.05, -1: 0.0}, n_post_periods=3, ci_low=-0.3, ci_high=hi)
        checks = judge(main, None, pd.Series([-0.2, -0.19]), None, None, rm, n_comparators=60)
        return Robustness("y", main, None, (math.nan,) * 2, None, None, None, None, checks=checks).sensitivity_words

    above, below = words(-0.104), words(-0.096)
    assert "rests on" not in above and "rests on" in below
    assert above.split(" times")[0] != below.split(" times")[0]
