"""The fake start (placebo in time) counts as a test exactly when its own placebo assignments could reach 5%.

Its smallest attainable p-value is one over the assignments the re-fit's test ranks the site among: the units, tried
in turn, for one treated unit (1 / (comparators + 1)); for several, the random sets drawn, but never fewer than the
distinct sets C(n, k). The old rule assumed one treated unit, so a site of three treated units and ten comparators
(286 distinct sets, 999 drawn) had its fake start called "could not test" although that test can reject (review of the
verdict's rules).
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evallib import evaluate_site
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.evaluation.site.sampling import distinct_sets, row_smallest_p_value, smallest_p_value
from evallib.evaluation.site.verdict import judge
from evallib.methods.base.results import Estimate

from .conftest import simulated_panel, simulated_site

TREATED = ("T000", "T001", "T002")


def _row(p: float, lo: float, hi: float, n_treated: int = 3, n_control: int = 10) -> Estimate:
    return Estimate("y", "placebo_in_time_2012-04", 0.08, math.nan, lo, hi, p, "did_twfe_placebo_in_time",
                    "placebo_in_space", "log", n_treated, n_control)  # fmt: skip


MAIN = Estimate("y", "treated_x_post", -0.2, math.nan, -0.3, -0.1, 0.01, "did_twfe", "placebo_in_space", "log", 3, 10)


@pytest.mark.unit
def test_the_smallest_p_value_counts_the_assignments_actually_ranked() -> None:
    assert smallest_p_value(distinct_sets(11, 1)) == pytest.approx(1 / 11)  # one treated, ten comparators in turn
    assert distinct_sets(13, 3) == 286
    assert smallest_p_value(286, 999) == pytest.approx(1 / 286)  # 999 draws repeat the 286 sets
    assert smallest_p_value(34_220, 999) == pytest.approx(1 / 1000)  # sampled: the draws and the real one
    assert smallest_p_value(10, 999) == pytest.approx(1 / 10)  # C(5, 2): no number of draws reaches 5%
    several = _row(0.02, 0.01, 0.2)
    assert row_smallest_p_value(several, SimpleNamespace(placebo_draws=999)) == pytest.approx(1 / 286)
    one = _row(0.5, -math.inf, math.inf, 1, 10)
    assert row_smallest_p_value(one, SimpleNamespace(placebo_draws=0)) == pytest.approx(1 / 11)
    # A result that knows its own (the synthetic control ranks the joined series among single donors) says so.
    assert row_smallest_p_value(several, SimpleNamespace(placebo_draws=0, min_p_value=1 / 11)) == pytest.approx(1 / 11)


@pytest.mark.unit
def test_a_fake_start_among_three_treated_units_and_ten_comparators_is_judged() -> None:
    fake = _row(0.02, 0.01, 0.2)
    reach = row_smallest_p_value(fake, SimpleNamespace(placebo_draws=999))
    checks = judge(MAIN, fake, pd.Series([-0.2]), None, None, None, n_comparators=10, placebo_time_min_p=reach)
    assert next(c for c in checks if c.name == "placebo in time").status == "disagrees"
    # The old rule (one treated unit: 1 / 11) could not have let it disagree.
    old = judge(MAIN, fake, pd.Series([-0.2]), None, None, None, n_comparators=10)
    assert next(c for c in old if c.name == "placebo in time").status == "could not test"
    # Two treated units among five: ten distinct sets, so the fake start still could not test, however many draws.
    few = _row(0.02, 0.01, 0.2, 2, 3)
    reach = row_smallest_p_value(few, SimpleNamespace(placebo_draws=999))
    checks = judge(MAIN, few, pd.Series([-0.2]), None, None, None, n_comparators=3, placebo_time_min_p=reach)
    assert next(c for c in checks if c.name == "placebo in time").status == "could not test"


def _diverging_site() -> SiteEvaluation:
    """Three treated units and ten comparators; the treated units fall 3% a month for the year before the start."""
    protocol, long = simulated_site(13, 60, 24, seed=1, effect=-0.2)
    period = pd.to_datetime(long["period"])
    months = (period.dt.year - 2012) * 12 + period.dt.month - 4  # 0 at April 2012, the fake start
    fall = np.exp(-0.03 * (months + 1).clip(lower=0, upper=12))
    value = np.where(long["unit"].isin(TREATED), long["value"] * fall, long["value"]).round()
    protocol = replace(protocol, treated_units=TREATED, primary_estimator="did")
    return evaluate_site(protocol, panel=simulated_panel(long.assign(value=value)))


@pytest.mark.integration
def test_a_several_treated_site_with_ten_comparators_gets_a_fake_start_that_can_disagree() -> None:
    ev = _diverging_site()
    assert ev.primary is not None and ev.primary.coverage.n_comparators == 10 and not ev.primary.volatile
    rb = ev.robustness
    assert rb is not None and rb.placebo_in_time is not None
    fake = next(c for c in rb.checks if c.name == "placebo in time")
    # Before: "could not test" (1 / 11 > 5%); the 999 random sets of three among 13 units reach 1 / 286.
    assert fake.status == "disagrees", fake
    assert rb.placebo_in_time.p_value <= 0.05
    assert rb.verdict == "not confirmed" and "placebo in time" not in rb.to_json_dict()["could_not_test"]
    # The same rule in the site's cautions: ten comparators are enough for a finite interval with three treated.
    assert not any("too few for a finite 95% placebo interval" in f for f in ev.flags)


@pytest.mark.integration
def test_one_treated_unit_with_ten_comparators_still_could_not_test() -> None:
    protocol, long = simulated_site(11, 60, 24, seed=1)
    ev = evaluate_site(replace(protocol, primary_estimator="did"), panel=simulated_panel(long))
    assert ev.robustness is not None
    assert next(c for c in ev.robustness.checks if c.name == "placebo in time").status == "could not test"
    assert any("Only 10 comparison" in f and "too few for a finite 95% placebo interval" in f for f in ev.flags)
