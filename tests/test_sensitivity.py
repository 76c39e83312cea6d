"""Rambachan-Roth relative-magnitude breakdown values."""

from __future__ import annotations

import math

import pytest

from evallib.errors import DataError
from evallib.methods.did.sensitivity import relative_magnitudes

pytestmark = pytest.mark.unit


def test_breakdown_is_the_nearer_interval_end_over_the_accumulated_bias() -> None:
    # Pre-period changes: |-0.01 - 0.02| = 0.03, |0 - (-0.01)| = 0.01 -> m = 0.03.
    rm = relative_magnitudes({-3: 0.02, -2: -0.01, -1: 0.0}, n_post_periods=3, ci_low=-0.20, ci_high=-0.09)
    assert rm.max_pre_violation == pytest.approx(0.03)
    assert rm.bias_per_mbar == pytest.approx(0.03 * (3 + 1) / 2)  # average of 1, 2, 3 steps
    assert rm.breakdown == pytest.approx(0.09 / 0.06)
    assert rm.robust(1.0) and not rm.robust(2.0)


def test_an_interval_containing_zero_has_nothing_to_overturn() -> None:
    rm = relative_magnitudes({-2: 0.05, -1: 0.0}, n_post_periods=2, ci_low=-0.1, ci_high=0.02)
    assert rm.breakdown == 0 and not rm.robust()
    unbounded = relative_magnitudes({-2: 0.05, -1: 0.0}, n_post_periods=2, ci_low=-math.inf, ci_high=-0.1)
    assert unbounded.breakdown == 0


def test_flat_pre_period_gives_infinite_breakdown_and_a_single_lead_cannot_run() -> None:
    assert relative_magnitudes({-2: 0.0, -1: 0.0}, n_post_periods=1, ci_low=0.1, ci_high=0.2).breakdown == math.inf
    only_reference = relative_magnitudes({-1: 0.0}, n_post_periods=2, ci_low=0.1, ci_high=0.2)
    assert math.isnan(only_reference.breakdown) and only_reference.n_pre_changes == 0


@pytest.mark.parametrize(
    "leads, post",
    [({}, 2), ({-1: 0.0, 0: 0.1}, 2), ({-2: float("nan"), -1: 0.0}, 2), ({-1: 0.0}, 0)],
)
def test_bad_inputs_are_refused(leads: dict, post: int) -> None:
    with pytest.raises(DataError):
        relative_magnitudes(leads, n_post_periods=post, ci_low=0.1, ci_high=0.2)
