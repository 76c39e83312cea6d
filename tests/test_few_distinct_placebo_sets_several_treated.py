"""Several treated units in a pool with no more distinct placebo sets than draws (each distinct set tried once).

``permutation_test`` (the DiD's test) always draws ``n_draws`` random sets when several units are treated, even when
``C(n, k)`` is smaller: with 2 treated among 7 units there are 21 sets, and 999 draws repeat each about 48 times.
The p-value is then reported as sampled (999 draws, a Monte Carlo error), and the page says "the possible sets are
too many to try every one" and "ranks the site among 999 randomly chosen sets ..., not every one", though trying
each of the 21 once would give the exact p-value with no Monte Carlo error (controlled ITS already does this:
tests/test_controlled_its_few_fake_sites.py). placebo_sets now enumerates them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evallib.methods.inference.permutation import permutation_test


def test_several_treated_units_with_few_distinct_sets_are_tried_exhaustively() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=7)
    treated = np.array([True, True, False, False, False, False, False])
    res = permutation_test(values, treated, n_draws=999, seed=1, alpha=0.05)
    assert math.comb(7, 2) <= 999
    assert res.placebo_draws == 0 and float(res.p_value_mc_error[0]) == 0.0


def test_few_distinct_sets_are_each_used_once_with_the_real_one_first() -> None:
    from evallib.methods.inference.permutation import placebo_sets

    treated = np.array([False, True, False, True, False, False, False])
    sets = placebo_sets(treated, 999, 1)
    assert sets.shape == (math.comb(7, 2), 2) and sets[0].tolist() == [1, 3]
    assert len({tuple(s) for s in sets.tolist()}) == len(sets)


def test_the_exact_p_value_is_a_share_of_every_distinct_set() -> None:
    values = np.arange(7, dtype=float)
    treated = np.array([False] * 5 + [True, True])  # the two largest: as extreme as only the two smallest
    res = permutation_test(values, treated, n_draws=999, seed=1, alpha=0.05)
    assert float(res.p_value[0]) == pytest.approx(2 / 21)  # two-sided: {5, 6} and {0, 1} of the 21 sets


def test_many_distinct_sets_are_still_drawn_at_random() -> None:
    from evallib.methods.inference.permutation import placebo_sets

    treated = np.zeros(40, bool)
    treated[:3] = True  # C(40, 3) = 9,880 sets, more than 999 draws
    assert placebo_sets(treated, 999, 1).shape == (1000, 3)


def test_the_method_text_of_an_exhaustive_several_unit_test_says_every_set() -> None:
    from evallib.reporting.templating import render

    context = {
        "any_log": True,
        "any_points": False,
        "measure_word": "count",
        "period_word": "month",
        "table": "",
        "checks": [],
        "figures": [],
        "several": True,
    }
    every = str(render("did.html.j2", sampled=False, **context))
    assert "every set of as many units as the site has" in every and "random sets" not in every
    drawn = str(
        render("did.html.j2", sampled=["pre-trend test: p-value from 999 random placebo assignments"], **context)
    )
    assert "random sets of as many units" in drawn and "every set of as many units" not in drawn
