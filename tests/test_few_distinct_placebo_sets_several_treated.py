"""Several treated units in a pool with no more distinct placebo sets than draws (reported, not fixed here).

``permutation_test`` (the DiD's test) always draws ``n_draws`` random sets when several units are treated, even when
``C(n, k)`` is smaller: with 2 treated among 7 units there are 21 sets, and 999 draws repeat each about 48 times.
The p-value is then reported as sampled (999 draws, a Monte Carlo error), and the page says "the possible sets are
too many to try every one" and "ranks the site among 999 randomly chosen sets ..., not every one", though trying
each of the 21 once would give the exact p-value with no Monte Carlo error (controlled ITS already does this:
tests/test_controlled_its_few_fake_sites.py). Expected to fail until placebo_sets enumerates small pools.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evallib.methods.inference.permutation import permutation_test


@pytest.mark.xfail(strict=True, reason="permutation_test samples sets even when C(n, k) <= n_draws (review2 report)")
def test_several_treated_units_with_few_distinct_sets_are_tried_exhaustively() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=7)
    treated = np.array([True, True, False, False, False, False, False])
    res = permutation_test(values, treated, n_draws=999, seed=1, alpha=0.05)
    assert math.comb(7, 2) <= 999
    assert res.placebo_draws == 0 and float(res.p_value_mc_error[0]) == 0.0
