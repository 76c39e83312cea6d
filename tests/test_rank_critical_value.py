"""The rank test's exact critical value (``decision.rank_critical_value``), the one rule the design step's
fake-start power (``fake_starts.critical_values``) and the report's MDE (``power.placebo_mde``) both read.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evallib.methods.inference.decision import (
    fewest_to_accept,
    most_others_to_reject,
    rank_critical_value,
    rejects,
)
from evallib.methods.inference.fake_starts import critical_values
from evallib.methods.inference.power import placebo_mde

pytestmark = pytest.mark.unit


def _brute_rejects(stat: float, others: np.ndarray, n_total: int, alpha: float) -> bool:
    """The report's rule by counting: p = (1 + others at least as large in magnitude) / n_total, rejected at p <= alpha."""
    return bool(rejects((1 + int(np.sum(np.abs(others) >= abs(stat)))) / n_total, alpha))


@pytest.mark.parametrize("n_others", [1, 5, 18, 19, 20, 39, 40, 41, 79, 153, 199, 998])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_a_statistic_rejects_exactly_when_its_magnitude_is_above_the_critical_value(
    n_others: int, alpha: float
) -> None:
    rng = np.random.default_rng(n_others)
    # Rounded draws: ties among the others and with the statistic, where an off-by-one would show.
    others = np.round(rng.standard_normal(n_others), 1)
    q = rank_critical_value(others, n_others + 1, alpha)
    candidates = np.concatenate([np.abs(others), -np.abs(others), np.linspace(0, 4, 81)])
    for stat in candidates:
        assert (abs(stat) > q) == _brute_rejects(stat, others, n_others + 1, alpha), (stat, q)


@pytest.mark.parametrize("n_total", list(range(1, 260)))
def test_the_most_others_that_may_be_as_large_is_the_largest_count_that_still_rejects(n_total: int) -> None:
    c = most_others_to_reject(n_total)
    rejecting = [k for k in range(n_total) if rejects((1 + k) / n_total)]
    assert c == (max(rejecting) if rejecting else -1)
    assert c == fewest_to_accept(n_total) - 2
    assert c == math.floor(0.05 * n_total + 1e-9) - 1  # the closed form the two callers used before


def test_too_few_assignments_give_an_infinite_critical_value() -> None:
    assert rank_critical_value(np.arange(18.0)) == math.inf  # 19 assignments: p >= 1/19 > 5%
    assert np.all(rank_critical_value(np.ones((18, 3))) == math.inf)
    assert rank_critical_value(np.arange(19.0)) == 18.0  # 20 assignments: the largest other


def test_both_callers_read_the_one_critical_value() -> None:
    rng = np.random.default_rng(7)
    e = rng.standard_normal((154, 6))
    assert np.array_equal(critical_values(e), rank_critical_value(e, 154))
    assert np.array_equal(critical_values(e), -np.sort(-np.abs(e), axis=0)[6])  # the seventh of 154
    placebos = rng.standard_normal(153)
    q = rank_critical_value(placebos)
    # placebo_mde for a change upward is the critical value less the placebos' 20th percentile (its Notes).
    assert placebo_mde(placebos, skip_first=False, direction="increase") == pytest.approx(
        q - np.quantile(placebos, 0.2)
    )
