"""Controlled ITS with several treated units and few comparison units: every distinct fake site once, not random
draws that repeat them (a p-value below 1 / (distinct fake sites + 1) would claim a precision the pool cannot give)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evallib.methods.its.controlled import ControlledITS
from evallib.methods.simulate import simulate_nhs_panel

START = pd.Timestamp("2015-04-01")  # period 48 of simulate_nhs_panel's months


def _panel(n_units: int, n_treated: int, effect: float) -> pd.DataFrame:
    return simulate_nhs_panel(n_units, 72, n_treated=n_treated, start_period=48, effect=effect, seed=4)


def test_few_distinct_fake_sites_are_each_used_once_and_the_p_value_is_exhaustive() -> None:
    d = _panel(9, 3, -0.6)  # 6 comparison units: C(6, 3) = 20 distinct fake sites
    r = ControlledITS("value", "unit", "period", "treated", start=START, horizons=(12,)).fit(d)
    assert len(r.placebo_estimates) == 1 + math.comb(6, 3)
    assert r.placebo_draws == 0 and r.p_value_mc_error == 0.0  # exhaustive: nothing sampled, no error to state
    assert min(row.p_value for row in r.rows) >= 1 / (1 + math.comb(6, 3))
    sets = ControlledITS("value", "unit", "period", "treated", start=START)._fake_sites(6, 3)
    assert len({tuple(sorted(s)) for s in sets.tolist()}) == len(sets) == 20


def test_many_distinct_fake_sites_are_still_drawn_at_random() -> None:
    d = _panel(40, 3, -0.1)  # 37 comparison units: C(37, 3) = 7,770 sets, more than the 999 draws
    r = ControlledITS("value", "unit", "period", "treated", start=START, horizons=(12,)).fit(d)
    assert r.placebo_draws == 999 and len(r.placebo_estimates) == 1000
    assert r.p_value_mc_error > 0 or r.row("mean_post_effect").p_value in (1 / 1000, 1.0)
    np.testing.assert_array_equal(
        ControlledITS("value", "unit", "period", "treated", start=START)._fake_sites(37, 3).shape, (999, 3)
    )
