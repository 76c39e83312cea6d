"""The stacked DiD for a staggered roll-out (``StackedDiD``): the estimator contract, each cohort's 2x2 DiD against
its clean comparisons only, the placebo test's interval moving with the effect, and the worked example (a true 12%
fall from each area's start) inside the interval, shown beside Callaway-Sant'Anna on the staggered page.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.base.design import Design
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.did.stacked import StackedDiD, StackedDiDResult

# The estimator contract, run on the stacked DiD and the staggered placebo estimator (the module's fixtures below).
from tests.test_estimator_contract import (  # noqa: F401
    START,
    test_every_estimator_refits_on_other_comparison_units,
    test_every_estimator_refits_with_a_fake_start_in_the_pre_period,
    test_every_result_displays_summarises_and_plots_on_the_given_axes,
    test_every_result_has_the_tidy_columns_and_a_headline_among_its_rows,
    test_every_result_is_frozen,
    test_p_value_and_interval_agree_on_every_row,
)

TRUE_LOG = math.log(0.88)


@pytest.fixture(scope="module")
def design() -> Design:
    """The contract's simulated panel with three treated units (one gives 30 distinct assignments: no interval)."""
    from evallib.methods.simulate import simulate_nhs_panel

    long = simulate_nhs_panel(n_units=30, n_periods=60, n_treated=3, start_period=START, effect=-0.1, seed=7)
    start = sorted(long["period"].unique())[START]
    wide = long.pivot(index="period", columns="unit", values="value")
    treated = sorted(long.loc[long["treated"] == 1, "unit"].unique())
    return Design.from_wide(wide, treated, start, measure="count", outcome="admissions")


@pytest.fixture(scope="module", params=["StackedDiD", "StaggeredPlacebo"])
def fitted(request: pytest.FixtureRequest, design: Design) -> tuple[str, Any, Any]:
    est = StackedDiD(n_draws=199) if request.param == "StackedDiD" else StaggeredPlacebo(n_draws=199)
    return request.param, est, est.fit(design)


def _panel(seed: int, n_units: int = 30, n_periods: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    periods = pd.date_range("2015-01-01", periods=n_periods, freq="MS")
    logs = 6 + rng.normal(0, 0.3, n_units) + np.cumsum(rng.normal(0, 0.02, (n_periods, n_units)), axis=0)
    return pd.DataFrame(np.exp(logs), index=periods, columns=[f"U{i:02d}" for i in range(n_units)])


@pytest.mark.unit
def test_each_cohort_is_its_2x2_did_against_clean_comparisons_and_the_overall_weights_by_size() -> None:
    wide = _panel(1)
    p = wide.index
    starts = {"U01": p[24], "U02": p[24], "U03": p[36], "U04": p[54]}
    res = StackedDiD(pre_periods=12, post_periods=6, n_draws=99).fit(Design.staggered(wide, starts, measure="count"))
    y = np.log(wide)

    def change(u: str, s: int) -> float:
        return float(y[u].iloc[s : s + 6].mean() - y[u].iloc[s - 12 : s].mean())

    never = [u for u in wide.columns if u not in starts]
    expect = {}
    for s, members in ((24, ["U01", "U02"]), (36, ["U03"]), (54, ["U04"])):
        # Clean: never treated, or starting only after the window's end (U04 for the first two cohorts).
        clean = never + [u for u, st in starts.items() if p.get_loc(st) >= s + 6]
        expect[s] = np.mean([change(u, s) for u in members]) - np.mean([change(u, s) for u in clean])
    assert [r.estimate for r in res.cohorts] == pytest.approx(list(expect.values()), abs=1e-12)
    assert [r.n_control for r in res.cohorts] == [len(never) + 2, len(never) + 1, len(never)]
    overall = (2 * expect[24] + expect[36] + expect[54]) / 4
    assert res.overall.estimate == pytest.approx(overall, abs=1e-12)
    assert res.overall.method == "did_stacked" and (res.pre_periods, res.post_periods) == (12, 6)


@pytest.mark.unit
def test_the_default_window_trims_no_cohort_and_a_longer_one_trims_the_late_cohort() -> None:
    wide = _panel(2)
    p = wide.index
    starts = {"U01": p[24], "U02": p[36], "U03": p[48]}
    design = Design.staggered(wide, starts, measure="count")
    default = StackedDiD(n_draws=99).fit(design)
    assert (default.pre_periods, default.post_periods) == (24, 12)  # all before the first start; the last's follow-up
    assert len(default.cohorts) == 3
    longer = StackedDiD(post_periods=18, n_draws=99).fit(design)
    assert [str(s)[:7] for s in longer.cohort_starts] == ["2017-01", "2018-01"]  # the 2019 cohort has 12 months
    with pytest.raises(DataError, match="no cohort has"):
        StackedDiD(post_periods=40, n_draws=99).fit(design)


@pytest.mark.unit
@pytest.mark.parametrize("studentized", [False, True])
def test_every_estimate_and_interval_move_with_a_constant_effect(studentized: bool) -> None:
    wide = _panel(5)
    p = wide.index
    starts = {"U01": p[24], "U02": p[30], "U03": p[36]}
    est = StackedDiD(n_draws=499, seed=1, studentized=studentized)
    res = est.fit(Design.staggered(wide, starts, measure="count"))
    tau = -0.2
    shifted = wide.copy()
    for u, s in starts.items():
        shifted.loc[shifted.index >= s, u] *= math.exp(tau)
    moved = est.fit(Design.staggered(shifted, starts, measure="count"))
    for a, b in zip(res.rows, moved.rows, strict=True):
        assert (a.p_value > 0.05) == (a.ci_low <= 0 <= a.ci_high)
        assert a.inference == ("placebo_studentized" if studentized else "placebo_in_space")
        assert b.estimate == pytest.approx(a.estimate + tau, abs=1e-10)
        assert b.ci_low == pytest.approx(a.ci_low + tau, abs=1e-10)
        assert b.ci_high == pytest.approx(a.ci_high + tau, abs=1e-10)


@pytest.fixture(scope="module")
def example(staggered_example):  # type: ignore[no-untyped-def]
    """The staggered worked example, evaluated once per session (conftest.staggered_example)."""
    return staggered_example


@pytest.mark.integration
def test_the_worked_example_holds_the_true_effect_overall_and_is_shown_per_cohort(example) -> None:  # type: ignore[no-untyped-def]
    from evallib.reporting.staggered_section import staggered

    st = example.staggered
    assert st is not None and isinstance(st.stacked, StackedDiDResult)
    overall = st.stacked.overall
    assert overall.scale == "log" and overall.ci_low <= TRUE_LOG <= overall.ci_high
    assert overall.p_value <= 0.05 and overall.estimate < 0
    assert [r.term for r in st.stacked.rows] == ["overall", "cohort_2016-04", "cohort_2017-01", "cohort_2017-10"]
    records = [r for r in example.to_json_dict()["results"] if r["method"] == "did_stacked"]
    assert len(records) == 4
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", staggered(example).html)))
    text = text.replace("&#39;", "'")
    for words in (
        "Callaway-Sant'Anna: all areas, cohorts weighted by size",
        "stacked DiD: all areas, cohorts weighted by size",
        "stacked DiD: cohort starting Oct 2017 (A04)",
        "a stacked difference-in-differences",
    ):
        assert words in text, words
