"""The studentized placebo test's scale: each unit's pre-period swing (SD of half-yearly means after removing
period means), and how far its statistic moves per unit of effect (issue 18, point 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.base.design import Design
from evallib.methods.did.twfe import DiD
from evallib.methods.inference.volatility import pre_period_noise, pre_period_swing

pytestmark = pytest.mark.unit


def _panel(seed: int = 1, n: int = 40, t: int = 60, start: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = 7 + rng.normal(0, 0.05, (n, t)).cumsum(axis=1) * 0.3 + rng.normal(0, 0.03, (n, t))
    return y, np.arange(t) >= start


def test_swing_is_the_sd_of_half_yearly_means_of_the_period_demeaned_pre_period() -> None:
    y, post = _panel()
    dev = y[:, ~post] - y[:, ~post].mean(axis=0)
    expected = dev.reshape(len(y), 4, 6).mean(axis=2).std(axis=1, ddof=1)
    assert np.allclose(pre_period_swing(y, post), expected)


def test_swing_ignores_the_post_period_and_shared_shocks() -> None:
    y, post = _panel()
    moved = y.copy()
    moved[:, post] += np.random.default_rng(2).normal(0, 1, (len(y), post.sum()))  # anything after the start
    moved += np.linspace(0, 1, y.shape[1])  # a shock every unit shares
    assert np.allclose(pre_period_swing(moved, post), pre_period_swing(y, post))


def test_short_pre_periods_use_shorter_blocks_so_there_are_four() -> None:
    y, post = _panel(t=30, start=12)  # 12 pre-period months: blocks of 3
    dev = y[:, ~post] - y[:, ~post].mean(axis=0)
    expected = dev.reshape(len(y), 4, 3).mean(axis=2).std(axis=1, ddof=1)
    assert np.allclose(pre_period_swing(y, post), expected)


def test_a_unit_without_pre_period_variation_is_named() -> None:
    y, post = _panel()
    y[3] = np.delete(y, 3, axis=0).mean(axis=0)  # exactly the period means: no swing at all
    with pytest.raises(DataError, match="no pre-period variation"):
        pre_period_swing(y, post, np.array([f"U{i}" for i in range(len(y))]))


def _design(y: np.ndarray, start: int) -> Design:
    periods = pd.date_range("2013-04", periods=y.shape[1], freq="MS")
    wide = pd.DataFrame(np.exp(y).T, index=periods, columns=[f"U{i:02d}" for i in range(len(y))])
    return Design.from_wide(wide, ["U00"], periods[start], measure="count")


def test_the_studentized_statistic_divides_by_the_swing_and_says_how_it_moves_with_the_effect() -> None:
    y, post = _panel(seed=4)
    res = DiD(transform="log", inference="placebo_studentized").fit(_design(y, 24))
    change = y[:, post].mean(axis=1) - y[:, ~post].mean(axis=1)
    z = (change - change.mean()) / pre_period_swing(y, post)
    assert res.observed_statistic == pytest.approx(z[0] - z[1:].mean())
    assert not np.allclose(pre_period_swing(y, post), pre_period_noise(y, post))  # not the month-to-month noise
    shifted = y.copy()
    shifted[0, post] += 0.1
    res2 = DiD(transform="log", inference="placebo_studentized").fit(_design(shifted, 24))
    assert res.statistic_per_effect is not None
    assert res2.observed_statistic - res.observed_statistic == pytest.approx(0.1 * res.statistic_per_effect)
