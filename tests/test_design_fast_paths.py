"""The design step's fast paths give the numbers of the slow definitions they replace (issue 21: fast enough to
explore): power from sorted rejection points, every fake start's swing at once, the nearest pool's statistics
start by start, follow-ups sharing fake windows, and the history built once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.evaluation.studies.design import design_history, design_site
from evallib.evaluation.studies.placebo_cells import placebo_cell, scaled
from evallib.evaluation.studies.pre_start import nearest_sets
from evallib.methods.inference.decision import rejects
from evallib.methods.inference.fake_starts import FakeStartTests, rolling_swing
from evallib.methods.inference.volatility import pre_period_swing
from evallib.protocol.params import SiteProtocol

from .conftest import simulated_panel, simulated_site

pytestmark = pytest.mark.unit


def _shifted_power(e: np.ndarray, tau: float, c: np.ndarray) -> float:
    """The definition: each draw shifted by ``tau c`` and ranked among the other draws by the report's rule."""
    m, hits = e.shape[0], 0
    for s in range(e.shape[1]):
        for i in range(m):
            stat = abs(e[i, s] + tau * c[s])
            others = np.abs(np.delete(e[:, s], i))
            hits += bool(rejects((1 + int(np.sum(others >= stat))) / m))
    return hits / e.size


@pytest.mark.parametrize("coefficient", ["one", "per_start", "a_zero"])
def test_power_from_sorted_rejection_points_is_every_draw_shifted_and_ranked(coefficient: str) -> None:
    rng = np.random.default_rng(3)
    e = np.round(rng.standard_normal((41, 4)), 2)  # ties, where a rank rule's off-by-one shows
    c = {"one": np.ones(4), "per_start": np.array([0.8, -1.3, 0.4, 2.0]), "a_zero": np.array([0.8, -1.3, 0.0, 2.0])}[
        coefficient
    ]
    tests = FakeStartTests(e, 1.0 if coefficient == "one" else c)
    effects = np.array([-3.0, -1.234, -0.5, 0.0, 0.37, 1.0, 2.5])
    np.testing.assert_allclose(tests.power(effects), [_shifted_power(e, t, c) for t in effects])
    mde = tests.detectable(0.8, "decrease")
    if coefficient == "a_zero":  # a quarter of the draws cannot move: 80% power is out of reach
        assert mde == np.inf and tests.power(np.array(-1e6)) < 0.8
        return
    assert tests.power(np.array(-mde)) >= 0.8 > tests.power(np.array(-mde * (1 - 1e-6)))


def test_every_fake_starts_swing_at_once_is_each_windows_own_swing() -> None:
    rng = np.random.default_rng(8)
    for periods, pre in [(60, 36), (30, 12), (40, 5), (20, 3)]:
        y = rng.standard_normal((25, periods)).cumsum(axis=1)
        n = periods - pre - 2
        windows = [pre_period_swing(y[:, s : s + pre], np.zeros(pre, bool)) for s in range(n)]
        np.testing.assert_allclose(rolling_swing(y, pre, n), np.column_stack(windows), rtol=1e-12)
    flat = rng.standard_normal((10, 30))
    # Unit 4 moves with the other units' mean over one window only (no swing of its own there): refused, naming
    # it, as that window's own swing refuses it.
    flat[4, 10:22] = np.delete(flat, 4, axis=0)[:, 10:22].mean(axis=0)
    with pytest.raises(DataError, match=r"no pre-period variation in unit 4; drop it"):
        rolling_swing(flat, 12, 15)


@pytest.mark.parametrize("name", ["did", "did_studentized"])
@pytest.mark.parametrize("treated", [1, 3])
def test_the_nearest_pools_statistics_are_each_start_refitted_on_its_own_units(name: str, treated: int) -> None:
    rng = np.random.default_rng(11)
    Y = rng.standard_normal((60, 48)).cumsum(axis=1) * 0.02
    is_treated = np.arange(treated + 20) < treated
    sets = nearest_sets(Y, treated, 12, 48 - 12 - 6 + 1, 20)
    fast = placebo_cell(name, Y, is_treated, (12, 6), 1.3, 99, 5, sets, 24)
    for s, rows in enumerate(sets):  # the slow definition: the whole cell on that start's units, its column s
        one = placebo_cell(name, Y[rows], is_treated, (12, 6), 1.0, 99, 5, None, 24)
        np.testing.assert_allclose(fast.placebos[:, s], 1.3 * one.placebos[:, s], rtol=1e-12)
        np.testing.assert_allclose(
            np.broadcast_to(fast.coefficient, (len(sets),))[s],
            np.broadcast_to(one.coefficient, (len(sets),))[s],
            rtol=1e-12,
        )


@pytest.mark.parametrize("name", ["did", "did_studentized", "synthetic_did"])
def test_a_cell_fitted_once_and_scaled_is_the_cell_fitted_at_its_factor(name: str) -> None:
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((30, 40)).cumsum(axis=1) * 0.02
    is_treated = np.arange(30) < 2
    direct = placebo_cell(name, Y, is_treated, (12, 10), 1.27, 49, 9, None, 24)
    shared = scaled(placebo_cell(name, Y, is_treated, (12, 10), 1.0, 49, 9, None, 24), 1.27)
    np.testing.assert_allclose(shared.placebos, direct.placebos, rtol=1e-12)
    assert shared.factor == direct.factor and shared.n_starts == direct.n_starts


def test_the_history_is_built_once_for_the_same_protocol_and_data_and_again_for_other_data() -> None:
    protocol, long = _site()
    panel = _panel(long)
    first = design_site(protocol, panel=panel, estimators=("did",), pools=("protocol",))
    assert design_history(protocol, panel, longest=36) is design_history(protocol, panel, longest=36)
    again = design_site(protocol, panel=panel, estimators=("did",), pools=("protocol",))
    pd.testing.assert_frame_equal(first.table, again.table)
    pre = pd.to_datetime(long["period"]) < "2013-04-01"
    changed = long.assign(value=np.where(pre & (long["unit"] == "T000"), long["value"] * 1.5, long["value"]))
    other = design_history(protocol, _panel(changed), longest=36)
    assert other is not design_history(protocol, panel, longest=36)
    assert not other.values.equals(design_history(protocol, panel, longest=36).values)


def _site() -> tuple[SiteProtocol, pd.DataFrame]:
    return simulated_site(30, 84, 48, first_month="2009-04", seed=4, primary_estimator="did")


_panel = simulated_panel
