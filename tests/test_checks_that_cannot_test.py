"""A robustness check that could not have disagreed says "could not test", never "agrees", and never confirms.

Ten matched comparators give 11 placebo assignments, so their test cannot reach 5% and their interval has no finite
end: it overlaps any interval, and the sign of its estimate is not a test. Likewise a placebo test (fake start,
pre-trend test) whose smallest attainable p-value is above 5%. Such a check is recorded as "could not test" in
results.json and on the page, counted neither for nor against the verdict (review of the verdict's rules).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evallib.evaluation.site.robustness import Robustness
from evallib.evaluation.site.verdict import judge, unbounded
from evallib.methods.base.results import Estimate
from evallib.reporting.agreement import disagreements
from evallib.reporting.templating import render

from .conftest import check_status, estimate_row, robustness_of

pytestmark = pytest.mark.unit

INF = math.inf


MAIN = estimate_row(-0.20, -0.30, -0.10, 0.01)
#: Ten matched comparators: 11 assignments, smallest p 1/11, an interval with no finite end.
MATCHED_SAME_WAY = estimate_row(-0.15, -INF, INF, 0.27, "did_synthetic_matched")
MATCHED_OTHER_WAY = estimate_row(0.05, -INF, INF, 0.64, "did_synthetic_matched")
#: A pre-trend test among too few comparison units to reject: its interval has no finite end either.
PRETREND_UNTESTABLE = Estimate("y", "pretrend", 0.01, math.nan, -INF, INF, 0.5, "did_pretrend", "placebo_in_space",
                               "log_per_year", 1, 12)  # fmt: skip
PRETREND_FINE = Estimate("y", "pretrend", 0.01, math.nan, -0.02, 0.04, 0.5, "did_pretrend", "placebo_in_space",
                         "log_per_year", 1, 50)  # fmt: skip
NO_LOO = {"leave one comparator out": "the re-fit failed (a test)"}


def test_an_interval_with_no_finite_end_is_unbounded_and_a_half_open_one_is_not() -> None:
    assert unbounded(MATCHED_SAME_WAY) and unbounded(estimate_row(0.1, math.nan, math.nan, 0.5))
    assert not unbounded(estimate_row(0.1, 0.02, INF, 0.01)) and not unbounded(MAIN)


def test_matched_comparators_that_cannot_reach_5_percent_could_not_test_either_way() -> None:
    for matched in (MATCHED_SAME_WAY, MATCHED_OTHER_WAY):  # "agrees" and "disagrees" before
        checks = judge(MAIN, None, pd.Series([-0.2, -0.18]), matched, None, None, n_comparators=60)
        check = next(c for c in checks if c.name == "10 matched comparators")
        assert check.status == "could not test", check
        assert "not counted" in check.detail and "unbounded" in check.detail


def test_a_comparison_without_an_interval_could_not_test_and_says_why() -> None:
    withheld = estimate_row(-0.15, math.nan, math.nan, math.nan, "did_synthetic_matched")
    checks = judge(MAIN, None, pd.Series([-0.2]), withheld, None, None, n_comparators=60)
    check = next(c for c in checks if c.name == "10 matched comparators")
    assert check.status == "could not test" and "it has no 95% interval" in check.detail


def test_a_matched_comparison_with_a_finite_interval_is_still_judged() -> None:
    apart = estimate_row(0.10, 0.02, 0.20, 0.02, "did_synthetic_matched")
    close = estimate_row(-0.12, -0.22, -0.03, 0.02, "did_synthetic_matched")
    assert (
        check_status(
            judge(MAIN, None, pd.Series([-0.2]), apart, None, None, n_comparators=60), "10 matched comparators"
        )
        == "disagrees"
    )
    assert (
        check_status(
            judge(MAIN, None, pd.Series([-0.2]), close, None, None, n_comparators=60), "10 matched comparators"
        )
        == "agrees"
    )


def test_a_pre_trend_test_that_cannot_reject_could_not_test() -> None:
    checks = judge(MAIN, None, pd.Series([-0.2]), None, None, None, n_comparators=12, pretrend=PRETREND_UNTESTABLE)
    assert check_status(checks, "pre-trend test") == "could not test"
    checks = judge(MAIN, None, pd.Series([-0.2]), None, None, None, n_comparators=50, pretrend=PRETREND_FINE)
    assert check_status(checks, "pre-trend test") == "agrees"


def test_a_fake_start_with_too_few_assignments_to_reject_could_not_test() -> None:
    fake = estimate_row(0.01, -INF, INF, 0.6, "did_synthetic_placebo_in_time")
    checks = judge(MAIN, fake, pd.Series([-0.2]), None, None, None, n_comparators=12)  # smallest p 1/13
    assert check_status(checks, "placebo in time") == "could not test"
    # Enough comparison units, but the re-fit's own test could not reject (its interval has no finite end).
    checks = judge(MAIN, fake, pd.Series([-0.2]), None, None, None, n_comparators=60)
    assert check_status(checks, "placebo in time") == "could not test"


def _none_could_test() -> tuple:  # type: ignore[type-arg]
    """The checks of an effect that none could test: matched comparators and a pre-trend test among 12 comparison
    units (neither can reject), leave one out failed."""
    return judge(
        MAIN,
        None,
        pd.Series([-0.2]),
        MATCHED_SAME_WAY,
        None,
        None,
        n_comparators=12,
        pretrend=PRETREND_UNTESTABLE,
        why_not=NO_LOO,
    )


def test_checks_that_could_not_test_never_confirm_an_effect() -> None:
    # Before: the matched comparators and the pre-trend test both "agreed", so the effect was "confirmed".
    checks = _none_could_test()
    assert "agrees" not in {c.status for c in checks}
    rb = robustness_of(MAIN, checks)
    assert rb.verdict == "not confirmed" and not rb.disagreements
    assert {c.name for c in rb.untested} == {"10 matched comparators", "pre-trend test"}


def test_an_untestable_check_beside_one_that_agrees_leaves_the_effect_confirmed_and_says_so() -> None:
    checks = judge(MAIN, None, pd.Series([-0.22, -0.18]), MATCHED_OTHER_WAY, None, None, n_comparators=60,
                   pretrend=PRETREND_FINE)  # fmt: skip
    rb = robustness_of(MAIN, checks)
    assert rb.verdict == "confirmed"  # leave one out and the pre-trend test agree; the matched one counts neither way
    d = rb.to_json_dict()
    assert d["could_not_test"] == ["10 matched comparators"]
    assert {c["check"]: c["status"] for c in d["checks"]}["10 matched comparators"] == "could not test"


def _page(rb: Robustness) -> str:
    return str(
        render(
            "robustness.html.j2",
            verdict=rb.verdict,
            n_disagree=len(rb.disagreements),
            disagreements=", ".join(c.name for c in rb.disagreements),
            untested=", ".join(c.name for c in rb.untested),
            estimator="synthetic DiD",
            checks=rb.checks,
            table="",
            points=False,
            units="areas",
            unit="area",
            period_word="month",
            matched=None,
            synthetic=None,
            balance=None,
            loo_all=500,
            loo_top=100,
        )
    )


def test_the_page_says_could_not_test_and_does_not_count_it() -> None:
    confirmed = robustness_of(
        MAIN, judge(MAIN, None, pd.Series([-0.22, -0.18]), MATCHED_SAME_WAY, None, None, n_comparators=60)
    )
    html = _page(confirmed)
    assert "could not test (not counted): 10 matched comparators" in html
    assert "(10 matched comparators: could not test it, so not counted)" in html
    assert "agrees: 10 matched comparators" not in html
    nothing = robustness_of(MAIN, _none_could_test())
    html = _page(nothing)
    assert "could run and test it (10 matched comparators, pre-trend test ran but could not have disagreed)" in html


def _results(verdict: str, statuses: list[str]) -> dict[str, object]:
    checks = [{"check": f"c{i}", "status": s, "detail": ""} for i, s in enumerate(statuses)]
    return {"site_id": "X01", "robustness": {"verdict": verdict, "checks": checks}}


def test_a_results_file_that_confirms_without_a_check_that_agrees_is_a_disagreement() -> None:
    assert disagreements(_results("confirmed", ["could not test", "not run", "reported"]))
    assert disagreements(_results("confirmed", ["agrees", "disagrees"]))
    assert disagreements(_results("not confirmed", ["agrees", "could not test"]))
    assert not disagreements(_results("confirmed", ["agrees", "could not test"]))
    assert not disagreements(_results("not confirmed", ["could not test", "not run"]))
