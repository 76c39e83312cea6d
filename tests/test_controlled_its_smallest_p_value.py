"""The smallest p-value the verdict credits a controlled ITS with is the one its fake sites allow.

Controlled ITS ranks the site among fake sites drawn from its comparison units only (the real treated units are
never a fake site), so tried exhaustively its smallest p-value is ``1 / (C(comparators, k) + 1)``, not the
``1 / C(units, k)`` of a test that gives the treatment to any ``k`` of all the units. With two treated units and five
comparators that is 1/11, which cannot reject at 5%, though ``1 / C(7, 2)`` = 1/21 could: the placebo-in-time check
(evaluation/site/robustness.py) must then say "could not test", whatever the refit's interval.
"""

from __future__ import annotations

import math

import pandas as pd

from evallib.evaluation.site.sampling import row_smallest_p_value
from evallib.methods.its.controlled import ControlledITS
from evallib.methods.simulate import simulate_nhs_panel

START = pd.Timestamp("2015-04-01")  # period 48 of simulate_nhs_panel's months


def test_an_exhaustive_controlled_its_can_give_no_p_value_below_one_over_its_fake_sites_and_the_real_one() -> None:
    d = simulate_nhs_panel(7, 72, n_treated=2, start_period=48, effect=-0.6, seed=4)  # 5 comparison units
    r = ControlledITS("value", "unit", "period", "treated", start=START, horizons=(12,)).fit(d)
    row = r.row("mean_post_effect")
    assert r.placebo_draws == 0  # C(5, 2) = 10 fake sites, each once
    smallest = 1 / (math.comb(5, 2) + 1)
    assert min(x.p_value for x in r.rows) >= smallest
    assert row_smallest_p_value(row, r) == smallest
