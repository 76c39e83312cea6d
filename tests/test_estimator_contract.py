"""The estimator contract, checked the same way for every estimator: each fits a ``Design`` and returns a frozen
result with one tidy table, a headline, an interval that agrees with its p-value, a summary, a display and a plot,
and each can be re-fitted on other comparison units and on the pre-period with a fake start (what the robustness
checks do). Fitting a design gives exactly what the DataFrame entry point gives on the same rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from evallib.methods.base.design import Design
from evallib.methods.base.results import TIDY_COLUMNS, EstimatorResult
from evallib.methods.did.event_study import EventStudy
from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.did.staggered import CallawaySantAnna
from evallib.methods.did.twfe import DiD
from evallib.methods.its.controlled import ControlledITS
from evallib.methods.its.poisson import PoissonITS
from evallib.methods.its.segmented import SegmentedITS
from evallib.methods.simulate import simulate_nhs_panel
from evallib.methods.synth.control import SyntheticControl
from evallib.methods.synth.synthetic_did import SyntheticDiD

pytestmark = pytest.mark.unit

START = 36  # month index of the start in the simulated panel

#: Every estimator, configured by its settings alone (the design carries the data's roles).
ESTIMATORS: dict[str, Callable[[], Any]] = {
    "DiD": lambda: DiD(transform="log", inference="placebo_in_space"),
    "DiD studentized": lambda: DiD(transform="log", inference="placebo_studentized"),
    "EventStudy": lambda: EventStudy(transform="log", bin_periods=12, inference="placebo_in_space"),
    "PoissonDiD": lambda: PoissonDiD(inference="placebo_in_space", n_draws=99),
    "CallawaySantAnna": lambda: CallawaySantAnna(control_group="not_yet_treated"),
    "SegmentedITS": lambda: SegmentedITS(errors="ar1_reml", horizons=(12,), n_boot=199),
    "ControlledITS": lambda: ControlledITS(transform="log", horizons=(12,)),
    "PoissonITS": lambda: PoissonITS(),
    "SyntheticControl": lambda: SyntheticControl(transform="log", demean=True, scale="log"),
    "SyntheticDiD": lambda: SyntheticDiD(transform="log", n_draws=99),
}


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    return simulate_nhs_panel(n_units=30, n_periods=60, start_period=START, effect=-0.1, seed=7)


@pytest.fixture(scope="module")
def design(long: pd.DataFrame) -> Design:
    start = sorted(long["period"].unique())[START]
    wide = long.pivot(index="period", columns="unit", values="value")
    pop = long.pivot(index="period", columns="unit", values="population")
    treated = sorted(long.loc[long["treated"] == 1, "unit"].unique())
    return Design.from_wide(wide, treated, start, exposure=pop, measure="count", outcome="admissions")


@pytest.fixture(scope="module", params=list(ESTIMATORS))
def fitted(request: pytest.FixtureRequest, design: Design) -> tuple[str, Any, EstimatorResult]:
    est = ESTIMATORS[request.param]()
    return request.param, est, est.fit(design)


def _zero_in(row: Any) -> bool:
    null = 1.0 if row.scale == "rate_ratio" else 0.0
    return bool(row.ci_low <= null <= row.ci_high)


def test_every_result_has_the_tidy_columns_and_a_headline_among_its_rows(fitted: tuple[str, Any, Any]) -> None:
    name, _, res = fitted
    assert isinstance(res, EstimatorResult), name
    tidy = res.tidy()
    assert tuple(tidy.columns) == TIDY_COLUMNS and len(tidy) >= 1
    assert res.headline in res.rows or name == "CallawaySantAnna"  # its headline is an aggregate of its rows
    assert res.estimate == res.headline.estimate and res.p_value == res.headline.p_value
    assert res.headline.outcome  # named after the design's outcome or the estimator's label


def test_p_value_and_interval_agree_on_every_row(fitted: tuple[str, Any, Any]) -> None:
    """p > alpha exactly when the interval holds no effect: both come from one test (bootstrap, placebo or t)."""
    name, _, res = fitted
    checked = 0
    for row in [*res.rows, res.headline]:
        if not (math.isfinite(row.p_value) and math.isfinite(row.ci_low) and math.isfinite(row.ci_high)):
            continue
        if row.scale == "statistic" or abs(row.p_value - 0.05) < 1e-9:
            continue
        assert (row.p_value > 0.05) == _zero_in(row), (name, row)
        checked += 1
    assert checked >= 1, name


def test_every_estimator_refits_on_other_comparison_units(fitted: tuple[str, Any, Any], design: Design) -> None:
    name, est, res = fitted
    fewer = design.subset(design.comparison_units[:-4])
    again = est.fit(fewer)
    assert type(again) is type(res)
    if name not in ("SegmentedITS", "PoissonITS"):  # the site's own series has no comparison units
        assert again.headline.n_control == res.headline.n_control - 4, name
    dropped = est.fit(design.drop(design.comparison_units[0]))
    assert math.isfinite(dropped.estimate)


def test_every_estimator_refits_with_a_fake_start_in_the_pre_period(
    fitted: tuple[str, Any, Any], design: Design
) -> None:
    name, est, res = fitted
    pre_periods = design.periods[~design.post]
    fake = design.before(pre_periods[len(pre_periods) // 2 + (6 if name == "EventStudy" else 0)])
    if name == "EventStudy":
        est = dataclasses.replace(est, bin_periods=6)
    again = est.fit(fake)
    assert type(again) is type(res) and math.isfinite(again.estimate)


def test_every_result_is_frozen(fitted: tuple[str, Any, Any]) -> None:
    _, est, res = fitted
    field = dataclasses.fields(res)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(res, field, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.seed = 1  # settings are frozen too


def test_every_result_displays_summarises_and_plots_on_the_given_axes(fitted: tuple[str, Any, Any]) -> None:
    name, _, res = fitted
    html = res._repr_html_()
    assert "<table" in html and res.headline.method in html
    text = res.summary()
    assert res.headline.method in text and res.headline.inference in text
    ci = res.conf_int()
    assert list(ci.columns) == ["ci_low", "ci_high"] and set(ci.index) == {r.term for r in res.rows}
    fig, ax = plt.subplots()
    out = res.plot(ax=ax, title="a title")
    assert out is fig and ax.has_data(), name
    plt.close(fig)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DiD(transform="log", inference="placebo_in_space"),
        lambda: DiD(transform="log", inference="placebo_studentized"),
        lambda: PoissonDiD(inference="placebo_in_space", n_draws=99, exposure="population"),
        lambda: SyntheticDiD(transform="log", n_draws=99),
        lambda: ControlledITS(transform="log", horizons=(12,), start=None),
    ],
    ids=["DiD", "DiD studentized", "PoissonDiD", "SyntheticDiD", "ControlledITS"],
)
def test_fitting_a_design_equals_fitting_the_same_rows(
    make: Callable[[], Any], long: pd.DataFrame, design: Design
) -> None:
    """The DataFrame entry point is a convenience: on rows in the design's order (period by period, units sorted)
    both give the same numbers, bit for bit."""
    est = make()
    rows = long[["period", "unit", "value", "treated", "post", "population"]].sort_values(["period", "unit"])
    if isinstance(est, ControlledITS):
        est_long = dataclasses.replace(est, start=design.start)
    else:
        est_long = est
    a = est.fit(design).tidy().drop(columns="outcome")
    b = est_long.fit(rows).tidy().drop(columns="outcome")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_design_checks_its_input() -> None:
    wide = pd.DataFrame({"A": [1.0, 2.0, 3.0], "B": [1.0, 2.0, 3.0]}, index=[1, 2, 3])
    with pytest.raises(Exception, match="treated unit"):
        Design.from_wide(wide, ["Z"], 2)
    with pytest.raises(Exception, match="no comparison units"):
        Design.from_wide(wide, ["A", "B"], 2)
    with pytest.raises(Exception, match="before and from the start"):
        Design.from_wide(wide, ["A"], 9)
    with pytest.raises(Exception, match="non-finite"):
        Design.from_wide(wide.assign(B=[1.0, np.nan, 3.0]), ["A"], 2)
    d = Design.from_wide(wide, ["A"], 2)
    with pytest.raises(Exception, match="only comparison units"):
        d.drop("A")
    assert d.treated_units == ("A",) and d.comparison_units == ("B",) and list(d.post) == [False, True, True]


def test_a_design_keeps_the_order_its_units_were_given_in(long: pd.DataFrame) -> None:
    """Units are sorted for placebo assignments, but rows and sums follow the order given (treated first here),
    so a rate ratio fitted on the design equals one fitted on long rows stacked in that order, bit for bit."""
    wide = long.pivot(index="period", columns="unit", values="value")
    pop = long.pivot(index="period", columns="unit", values="population")
    treated = sorted(long.loc[long["treated"] == 1, "unit"].unique())
    order = treated[::-1] + [u for u in wide.columns if u not in treated][::-1]
    start = sorted(long["period"].unique())[START]
    design = Design.from_wide(wide[order], treated, start, exposure=pop[order], measure="count")
    assert list(design.units) == sorted(order)
    rows = wide[order].stack().rename("value").reset_index()
    rows["population"] = pop[order].stack().to_numpy()
    rows["treated"] = rows["unit"].isin(treated).astype(int)
    rows["post"] = (rows["period"] >= start).astype(int)
    est = PoissonDiD(inference="placebo_in_space", n_draws=99)
    a = est.fit(design).tidy().drop(columns="outcome")
    b = dataclasses.replace(est, exposure="population").fit(rows).tidy().drop(columns="outcome")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert design.treated_series().equals(wide[treated[::-1]].sum(axis=1).rename(design.treated_series().name))


def test_a_staggered_design_gives_each_treated_unit_its_own_start(long: pd.DataFrame) -> None:
    """One start per treated unit: Callaway-Sant'Anna reads the units' own starts (cohorts) from the design."""
    wide = long.pivot(index="period", columns="unit", values="value")
    periods = list(wide.index)
    starts = {"T000": periods[30], "T001": periods[40]}
    design = Design.staggered(np.log(wide), starts, outcome="admissions")
    assert design.start == periods[30] and design.treated_units == ("T000", "T001")
    assert design.unit_starts is not None and design.unit_starts[1] == periods[40]
    res = CallawaySantAnna(control_group="not_yet_treated").fit(design)
    cohorts = set(res.group_time["group"])
    assert cohorts == {31, 41}  # periods numbered from 1
    assert math.isfinite(res.estimate) and res.headline.n_treated == 2
    with pytest.raises(Exception, match="not a period"):
        Design.staggered(wide, {"T000": pd.Timestamp("1990-01-01")})
