"""Staggered leave-one-out past a large pool follows the common-start rule: past 500 never-treated units only the 100
with the most extreme change from before the first start to after it are left out (half from each end), each still
the exact re-fit, and the check names the rule; at or below the cap every unit, as before (issue 22, review).

The caps are lowered here so that a small panel takes the large-pool path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.site.rollout_checks import check_staggered_robustness
from evallib.evaluation.site.staggered_site import ESTIMATOR, LABEL
from evallib.methods.base.design import Design
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.synth.synthetic_did import LOO_ALL_UNITS, LOO_UNITS

POSITIONS = {"U00": 24, "U01": 24, "U02": 30}


def _design(n_units: int = 20) -> Design:
    rng = np.random.default_rng(7)
    periods = pd.date_range("2013-01-01", periods=48, freq="MS")
    logs = 7 + rng.normal(0, 0.3, n_units) + np.cumsum(rng.normal(0, 0.02, (48, n_units)), axis=0)
    wide = pd.DataFrame(logs, index=periods, columns=[f"U{i:02d}" for i in range(n_units)])
    for u, s in POSITIONS.items():
        wide.loc[periods[s] :, u] -= 0.3
    return Design.staggered(np.exp(wide), {u: periods[s] for u, s in POSITIONS.items()}, measure="count")


def _leave_one_out(design: Design, **caps: int) -> tuple[StaggeredPlacebo, str, tuple[float, float]]:
    est = StaggeredPlacebo(n_draws=99, seed=3)
    rb = check_staggered_robustness(
        est, design, est.fit(design), placebo_in_time=None, pretrend=None, estimator_name=ESTIMATOR,
        estimator_label=LABEL, **caps,
    )  # fmt: skip
    check = next(c for c in rb.checks if c.name == "leave one comparator out")
    assert check.status in ("agrees", "disagrees"), check
    return est, check.detail, rb.leave_one_out


@pytest.mark.unit
def test_the_caps_are_the_common_start_ones() -> None:
    assert (LOO_ALL_UNITS, LOO_UNITS) == (500, 100)


@pytest.mark.unit
def test_a_large_staggered_pool_leaves_out_the_most_extreme_never_treated_units_each_an_exact_refit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    design = _design()
    never = [u for u, s in zip(design.units, design.unit_starts or (), strict=True) if s is None]  # 17 units
    wide = np.log(design.frame()[never])
    change = (wide[design.post].mean() - wide[~design.post].mean()).sort_values(kind="stable")
    expected = sorted([*change.index[:2], *change.index[-2:]])
    dropped: list[str] = []
    real_drop = Design.drop

    def spy(self: Design, unit: str) -> Design:
        dropped.append(unit)
        return real_drop(self, unit)

    monkeypatch.setattr(Design, "drop", spy)
    est, detail, (lo, hi) = _leave_one_out(design, loo_all_units=8, loo_top=4)
    assert dropped == expected
    assert "(the 4 of 17 never-treated units with the most extreme change from before the first start" in detail
    monkeypatch.undo()
    refits = [float(est.point_estimates(design.drop(u))[0]) for u in expected]
    assert (lo, hi) == (min(refits), max(refits))  # each the exact re-fit without its unit


@pytest.mark.unit
def test_at_or_below_the_cap_every_never_treated_unit_is_left_out() -> None:
    _, detail, _ = _leave_one_out(_design(), loo_all_units=17, loo_top=4)
    assert "never-treated units with the most extreme change" not in detail
    _, default, _ = _leave_one_out(_design())
    assert "most extreme" not in default


@pytest.mark.unit
def test_past_500_never_treated_units_the_default_caps_apply() -> None:
    _, detail, _ = _leave_one_out(_design(3 + 520))
    assert "(the 100 of 520 never-treated units with the most extreme change from before the first start" in detail
