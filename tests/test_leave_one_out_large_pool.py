"""Leave-one-out past a large pool: the units it leaves out follow the documented rule, each estimate is still the
exact refit without its unit, the rule is on the result and in the check's words, and small pools are unchanged.

The caps (500 comparison units, 100 left out) are lowered here so that a small panel takes the large-pool path.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.site.estimators import DesignData, fit_headline, leave_one_out, on_log_scale
from evallib.evaluation.site.verdict import judge
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.simulate import simulate_nhs_panel
from evallib.methods.synth.synthetic_did import SyntheticDiD

N_PRE, N_POST = 24, 12


def _design(n_units: int, n_treated: int = 1, seed: int = 5) -> DesignData:
    frame = simulate_nhs_panel(
        n_units, N_PRE + N_POST, n_treated=n_treated, start_period=N_PRE, effect=math.log(0.8), seed=seed
    )
    long = frame[["period", "unit", "value", "treated", "post"]].reset_index(drop=True)
    start = pd.Timestamp(sorted(long["period"].unique())[N_PRE])
    design = Design.from_long(
        long, outcome="value", unit="unit", time="period", treated="treated", start=start, measure="count", label="y"
    )
    return DesignData(design, n_draws=19, seed=1)


@pytest.mark.unit
@pytest.mark.parametrize("n_treated", [1, 3])
def test_synthetic_did_large_pool_leaves_out_its_heaviest_units_each_an_exact_refit(n_treated: int) -> None:
    data = _design(30, n_treated)
    sdid = SyntheticDiD(transform="log", n_draws=9)
    capped = sdid.leave_one_out(data.design, all_units=10, top=6)
    weights = sdid.fit(data.design).unit_weights
    heaviest = weights.index[np.argsort(-weights.to_numpy(), kind="stable")[:6]]
    assert list(capped.index) == sorted(heaviest)
    assert capped.attrs["left_out"] == f"the 6 most heavily weighted of {30 - n_treated} comparison units"
    full = sdid.leave_one_out(data.design)
    assert "left_out" not in full.attrs and len(full) == 30 - n_treated
    for unit, estimate in capped.items():
        refit = sdid.fit(data.design.drop(str(unit))).estimate
        assert estimate == pytest.approx(refit, abs=1e-9), unit
        assert estimate == pytest.approx(full[unit], abs=1e-12), unit


@pytest.mark.unit
@pytest.mark.parametrize("name", ["rate_ratio", "controlled_its", "synthetic_control", "synthetic_did"])
def test_any_estimator_large_pool_refits_are_exact_and_say_which_units(name: str) -> None:
    data = _design(16)
    loo = leave_one_out(name, data, all_units=8, top=4)
    assert len(loo) == 4 and "of 15 comparison units" in loo.attrs["left_out"]
    treated, pool = data.treated_units, data.comparison_units
    for unit in loo.index:
        row = fit_headline(name, data.restricted_to([*treated, *(c for c in pool if c != unit)])).row
        assert loo[unit] == pytest.approx(on_log_scale(row).estimate, abs=1e-9), unit
    assert list(leave_one_out(name, data, all_units=15, top=4).index) == pool  # at the cap: every unit, as before


@pytest.mark.unit
def test_mean_based_estimators_leave_out_the_most_extreme_changes() -> None:
    data = _design(16)
    wide = np.log(data.design.frame()[data.comparison_units])
    post = data.design.post
    change = (wide[post].mean() - wide[~post].mean()).sort_values(kind="stable")
    loo = leave_one_out("controlled_its", data, all_units=8, top=4)
    assert list(loo.index) == sorted([*change.index[:2], *change.index[-2:]])


@pytest.mark.unit
def test_the_check_names_the_rule_when_a_large_pool_left_out_only_some_units() -> None:
    main = Estimate(
        outcome="y",
        term="t",
        estimate=-0.2,
        std_error=0.05,
        ci_low=-0.3,
        ci_high=-0.1,
        p_value=0.01,
        method="m",
        inference="placebo_in_space",
        scale="log",
        n_treated=1,
        n_control=7000,
    )
    loo = pd.Series([-0.25, -0.15], index=["A", "B"])
    loo.attrs["left_out"] = "the 2 most heavily weighted of 7,000 comparison units"
    words = {c.name: c.detail for c in judge(main, None, loo, None, None, None, n_comparators=7000)}
    assert "(the 2 most heavily weighted of 7,000 comparison units, a large pool)" in words["leave one comparator out"]
    every = pd.Series([-0.25, -0.15], index=["A", "B"])  # every unit left out: the words as before
    plain = {c.name: c.detail for c in judge(main, None, every, None, None, None, n_comparators=2)}
    assert "without each comparator in turn ranges from" in plain["leave one comparator out"]


@pytest.mark.unit
@pytest.mark.parametrize("with_exposure", [False, True])
def test_rate_ratio_batched_leave_one_out_equals_each_refit(with_exposure: bool) -> None:
    frame = simulate_nhs_panel(14, N_PRE + N_POST, n_treated=2, start_period=N_PRE, effect=math.log(0.8), seed=9)
    long = frame[["period", "unit", "value", "treated", "post", "population"]].reset_index(drop=True)
    design = Design.from_long(
        long,
        outcome="value",
        unit="unit",
        time="period",
        treated="treated",
        post="post",
        exposure="population" if with_exposure else None,
        measure="count",
    )
    model = PoissonDiD(inference="model_based")
    loo = model.leave_one_out(design)
    assert list(loo.index) == list(design.comparison_units)
    for unit, estimate in loo.items():
        assert estimate == pytest.approx(model.fit(design.drop(str(unit))).log_rate_ratio, abs=1e-9), unit
    some = model.leave_one_out(design, [design.comparison_units[3], design.comparison_units[0]])
    assert list(some.index) == [design.comparison_units[3], design.comparison_units[0]]
    assert np.allclose(some.to_numpy(), loo.iloc[[3, 0]].to_numpy(), atol=1e-12)
