"""One rule for "clear": p <= alpha rejects, every interval a page can show is that rule's inversion, and the
conclusion, the verdict's checks and the edge-of-significance words follow the same rule (issue 18, point 2)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.site.answer import conclusion, placebo_assignments
from evallib.evaluation.site.estimators import HEADLINE_ESTIMATORS, DesignData, fit_headline
from evallib.evaluation.site.verdict import judge
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.twfe import DiD
from evallib.methods.inference.decision import (
    ALPHA,
    at_edge,
    fewest_to_accept,
    holds_null,
    rejection_rate,
    rejects,
)
from evallib.methods.its.segmented import SegmentedITS
from evallib.methods.simulate import simulate_nhs_panel, simulate_panel
from evallib.reporting.words import EDGE_OF_SIGNIFICANCE, edge_words

from .conftest import SIM_ROLES


def _row(est: float, lo: float, hi: float, p: float, scale: str = "log") -> Estimate:
    return Estimate("y", "t", est, 0.1, lo, hi, p, "m", "placebo_in_space", scale, 1, 19)


def test_a_p_value_at_alpha_rejects_and_above_it_does_not() -> None:
    assert rejects(0.05) and rejects(1 / 20) and rejects(2 / 40) and rejects(5 / 100)
    assert not rejects(0.0500001) and not rejects(3 / 41) and not rejects(math.nan)
    assert rejects(np.array([0.01, 0.05, 0.051, np.nan])).tolist() == [True, True, False, False]
    assert rejection_rate([0.05, 0.1, 0.01, 0.5]) == 0.5


@pytest.mark.parametrize("n", [19, 20, 21, 40, 41, 100, 200, 400, 1000])
def test_fewest_to_accept_is_where_the_rule_stops_rejecting(n: int) -> None:
    k = fewest_to_accept(n)
    assert not rejects(k / n) and (k == 1 or rejects((k - 1) / n))
    assert k == math.floor(ALPHA * n + 1e-9) + 1  # the count the inversions used before the rule had one home


def test_conclusion_at_p_equal_alpha_is_a_clear_change_like_its_interval() -> None:
    """V49's case: p = 0.05 exactly (2nd of 40) and an interval that leaves out zero is a clear change."""
    row = _row(0.38, 0.09, 0.67, 0.05)
    assert not holds_null(row.ci_low, row.ci_high, row.scale)
    assert conclusion(row) == "increase"
    assert conclusion(_row(-0.137, -0.26, -0.005, 0.05)) == "decrease"  # V21's DiD
    assert conclusion(_row(0.8, 0.7, 0.95, 0.05, "rate_ratio")) == "decrease"
    assert conclusion(_row(-0.1, -0.3, 0.01, 0.0500001)) == "no clear effect"


def test_the_verdicts_placebo_in_time_check_uses_the_same_rule() -> None:
    """A fake start with p = 0.05 exactly finds an effect where none can be; with 19 comparators the test can run."""
    main = _row(-0.1, -0.2, -0.02, 0.01)
    fake = Estimate(
        "y", "t", -0.1, 0.1, -0.2, -0.01, 0.05, "did_twfe_placebo_in_time", "placebo_in_space", "log", 1, 19
    )
    checks = {c.name: c for c in judge(main, fake, pd.Series([-0.1, -0.09]), None, None, None, n_comparators=19)}
    assert checks["placebo in time"].status == "disagrees"
    few = {c.name: c for c in judge(main, fake, pd.Series([-0.1, -0.09]), None, None, None, n_comparators=18)}
    # 1/19 > 0.05: the test could never reject, so it ran but could not test (counted neither way)
    assert few["placebo in time"].status == "could not test"


@pytest.mark.parametrize(
    ("p", "n", "edge"),
    [
        (2 / 41, 41, True),  # rejects; a 3rd placebo as extreme would not
        (3 / 41, 41, True),  # does not reject; one fewer would
        (1 / 41, 41, False),
        (4 / 41, 41, False),
        (1 / 20, 20, True),
        (2 / 20, 20, True),
        (3 / 20, 20, False),
        (50 / 1000, 1000, True),
        (45 / 1000, 1000, False),
        (0.05, None, False),  # not a rank test
        (math.nan, 41, False),
    ],
)
def test_at_edge_when_one_assignment_more_or_fewer_changes_the_conclusion(p: float, n: int | None, edge: bool) -> None:
    assert at_edge(p, n) is edge


def test_edge_words_name_the_edge_and_which_way_it_would_tip() -> None:
    assert EDGE_OF_SIGNIFICANCE in edge_words(True) and "would not count as a clear change" in edge_words(True)
    assert EDGE_OF_SIGNIFICANCE in edge_words(False) and "would count as a clear change" in edge_words(False)


def _design(effect: float, seed: int, n_units: int = 20) -> Design:
    long = simulate_nhs_panel(n_units=n_units, n_periods=48, start_period=24, effect=effect, seed=seed)
    start = sorted(long["period"].unique())[24]
    wide = long.pivot(index="period", columns="unit", values="value")
    pop = long.pivot(index="period", columns="unit", values="population")
    treated = sorted(long.loc[long["treated"] == 1, "unit"].unique())
    return Design.from_wide(wide, treated, start, exposure=pop, measure="count", outcome="admissions")


#: 20 units: a one-site rank test's p-value is a multiple of 1/20, so p = 0.05 exactly (rank 1) is common.
PANELS = [(effect, seed) for effect in (0.0, -0.15, -0.25) for seed in (1, 2)]


@pytest.mark.parametrize("name", HEADLINE_ESTIMATORS)
def test_every_headline_interval_holds_zero_exactly_when_its_p_value_does_not_reject(name: str) -> None:
    """For every estimator a page can lead with, over simulated fits: (null in interval) == (not rejects(p)),
    the conclusion is clear exactly when the interval leaves out no change, and p = 0.05 is reached."""
    seen = []
    for effect, seed in PANELS:
        h = fit_headline(name, DesignData(_design(effect, seed), n_draws=99))
        r = h.row
        assert holds_null(r.ci_low, r.ci_high, r.scale) == (not rejects(r.p_value)), (name, effect, seed, r)
        assert (conclusion(r) == "no clear effect") == holds_null(r.ci_low, r.ci_high, r.scale)
        assert placebo_assignments(h) == 20  # one treated unit: every unit takes the treatment once
        seen.append(r.p_value)
    assert min(seen) <= ALPHA  # the rule is exercised where it matters, not only far from the edge


def test_the_wild_bootstrap_interval_is_the_inversion_of_its_p_value() -> None:
    """Searched (with p(0) known), not read off a grid: 0 is inside exactly when the bootstrap p does not reject."""
    for seed in range(6):
        d = simulate_panel(24, 20, treated=6, start_period=12, effect=-0.03 * (seed % 3), seed=40 + seed)
        r = DiD(**SIM_ROLES, inference="wild_bootstrap", n_draws=199, seed=seed).fit(d).headline
        assert (r.ci_low <= 0 <= r.ci_high) == (not rejects(r.p_value)), (seed, r)


def test_the_its_bootstrap_interval_is_the_inversion_of_its_p_value() -> None:
    """The site's own series (REML AR(1), bootstrap-t): each term's interval holds 0 exactly when p does not reject."""
    rng = np.random.default_rng(5)
    idx = pd.date_range("2012-04-01", periods=60, freq="MS")
    for level in (0.0, -0.04, -0.08):
        s = pd.Series(np.exp(5 + 0.03 * rng.standard_normal(60) + level * (idx >= "2015-04-01")), index=idx)
        res = SegmentedITS(pd.Timestamp("2015-04-01"), errors="ar1_reml", horizons=(12,), n_boot=199).fit(s)
        for r in res.rows:
            if math.isfinite(r.p_value):
                assert (r.ci_low <= 0 <= r.ci_high) == (not rejects(r.p_value)), (level, r)
