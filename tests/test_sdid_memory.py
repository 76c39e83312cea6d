"""Synthetic DiD at scale (issue 22): results unchanged below the refit cap, memory linear in units and pre-periods,
and a seeded random subset of placebo units, with its Monte Carlo error, past the cap.

The pinned values (tests/data/sdid_before_issue22.json) are what the code before issue 22 gave on the same panels
(``n x T0^2`` outer products, every assignment's weights kept).
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from evallib import SyntheticDiD, simulate_panel
from evallib.methods.synth import sdid_fits, simplex
from evallib.methods.synth import synthetic_did as sd

PINS = json.loads((Path(__file__).parent / "data" / "sdid_before_issue22.json").read_text())
CASES = {
    "one_treated_log": (
        {"n_units": 40, "n_periods": 72, "treated": 1, "start_period": 48, "effect": 0.05, "seed": 3},
        {"transform": "log"},
    ),
    "three_treated": (
        {"n_units": 25, "n_periods": 48, "treated": 3, "start_period": 36, "effect": 0.0, "seed": 5},
        {"n_draws": 59, "seed": 7},
    ),
    "over_one_chunk": (
        {"n_units": 140, "n_periods": 36, "treated": 1, "start_period": 24, "effect": 0.1, "seed": 11},
        {"transform": "log"},
    ),
    "long_pre_period": (
        {"n_units": 30, "n_periods": 130, "treated": 1, "start_period": 110, "effect": 0.0, "seed": 13},
        {},
    ),
}


def _close(got: object, want: object) -> None:
    g, w = np.asarray(got, float), np.asarray(want, float)
    assert g.shape == w.shape
    np.testing.assert_allclose(g, w, rtol=0, atol=1e-11 * (1.0 + np.abs(w).max()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_results_below_the_cap_are_those_before_issue_22(case: str) -> None:
    panel, model = CASES[case]
    d = simulate_panel(**panel)
    m = SyntheticDiD(**model)
    r = m.fit(d)
    pin = PINS[case]
    h = r.headline
    assert h.p_value == pin["p_value"] and r.min_p_value == pin["min_p"]  # the same assignments, the same ranks
    for key in ("estimate", "std_error", "ci_low", "ci_high"):
        _close(getattr(h, key), pin[key])
    _close(r.placebo_estimates, pin["placebos"])
    _close(r.unit_weights.to_numpy(), pin["omega"])
    _close(r.time_weights.to_numpy(), pin["lam"])
    assert r.p_value_mc_error == 0.0 if panel["treated"] == 1 else r.p_value_mc_error > 0
    if "loo" in pin:
        _close(m.leave_one_out(d).to_numpy(), pin["loo"])


def test_results_do_not_depend_on_the_batch_size_or_the_large_panel_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    panel, model = CASES["over_one_chunk"]
    d = simulate_panel(**panel)
    whole = SyntheticDiD(**model).fit(d)
    # One problem a batch, Gram matrices by downdating, the Newton Hessian from the smaller side of the support.
    monkeypatch.setattr(sdid_fits, "WORK_BYTES", 1)
    monkeypatch.setattr(simplex, "DENSE_HESSIAN_DONORS", 0)
    assert sd.batch_rows(140, 24) == 1
    single = SyntheticDiD(**model).fit(d)
    _close(single.placebo_estimates, whole.placebo_estimates)
    assert single.p_value == whole.p_value
    _close(single.unit_weights.to_numpy(), whole.unit_weights.to_numpy())


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 MiB work budget, so that the modest panels here are past it (every unit's outer product not held)."""
    monkeypatch.setattr(sdid_fits, "WORK_BYTES", 4 * 2**20)


def _peak_bytes(n_units: int, n_periods: int, n_assign: int = 10) -> int:
    """tracemalloc's peak over one ``sdid_batch`` call (one treated unit, ``n_assign`` assignments)."""
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(n_units, n_periods)).cumsum(axis=1)
    post = np.arange(n_periods) >= n_periods - 12
    real = np.zeros(n_units, bool)
    real[0] = True
    assign = np.eye(n_units, dtype=bool)[:n_assign]
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    sd.sdid_batch(Y, post, assign, real)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


@pytest.mark.usefixtures("small_budget")
def test_memory_grows_linearly_in_pre_periods() -> None:
    # Before issue 22 every unit's T0 x T0 outer product was held at once: 4x the memory for 2x the pre-periods.
    small, large = _peak_bytes(800, 52), _peak_bytes(800, 92)  # 40 and 80 pre-periods
    assert large < 2.5 * small, (small, large)


@pytest.mark.usefixtures("small_budget")
def test_memory_grows_linearly_in_units() -> None:
    small, large = _peak_bytes(600, 40), _peak_bytes(1200, 40)
    assert large < 2.5 * small, (small, large)


@pytest.mark.usefixtures("small_budget")
def test_fit_memory_grows_linearly_in_units_past_the_cap() -> None:
    # Exhaustive refits kept an assignments x units weight matrix (n x n); capped, the refits stay at n_draws + 1.
    def peak(n: int) -> int:
        d = simulate_panel(n, 30, treated=1, start_period=20, seed=2)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        SyntheticDiD(n_draws=39, exhaustive_units=100).fit(d)
        out = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return out

    small, large = peak(700), peak(1400)
    assert large < 2.5 * small, (small, large)


def test_placebo_units_past_the_cap_are_a_seeded_subset_with_the_real_one() -> None:
    real = np.zeros(50, bool)
    real[7] = True
    a = sd.placebo_assignments(real, 9, seed=3, exhaustive_units=20)
    assert a.shape == (10, 50) and (a.sum(axis=1) == 1).all()
    rows = np.flatnonzero(a.any(axis=0))
    assert len(rows) == 10 and 7 in rows  # distinct units, the real one among them
    np.testing.assert_array_equal(a, sd.placebo_assignments(real, 9, seed=3, exhaustive_units=20))
    assert not np.array_equal(a, sd.placebo_assignments(real, 9, seed=4, exhaustive_units=20))
    np.testing.assert_array_equal(sd.placebo_assignments(real, 9, seed=3, exhaustive_units=50), np.eye(50, dtype=bool))
    np.testing.assert_array_equal(sd.placebo_assignments(real, 49, seed=3, exhaustive_units=20), np.eye(50, dtype=bool))


def test_the_default_cap_is_500_units() -> None:
    assert SyntheticDiD().exhaustive_units == sd.EXHAUSTIVE_UNITS == 500


def test_capped_p_value_is_within_its_stated_monte_carlo_error_of_the_exhaustive_one() -> None:
    d = simulate_panel(241, 36, treated=1, start_period=24, effect=0.03, seed=21)
    full = SyntheticDiD(transform="log").fit(d)
    capped = SyntheticDiD(transform="log", n_draws=79, exhaustive_units=100).fit(d)
    assert len(full.placebo_estimates) == 241 and full.p_value_mc_error == 0.0
    assert len(capped.placebo_estimates) == 80 and capped.min_p_value == 1 / 80
    assert capped.estimate == pytest.approx(full.estimate, abs=1e-12)  # the real fit is the same fit
    se = capped.p_value_mc_error
    want = np.sqrt(capped.p_value * (1 - capped.p_value) / 79 * (240 - 79) / 239)  # 79 of the 240 other units
    assert se == pytest.approx(want) and se > 0
    assert abs(capped.p_value - full.p_value) <= 3 * se + 1 / 80
    assert "Monte Carlo error" in capped.summary() and "Monte Carlo" not in full.summary()
    # The capped placebo estimates are the exhaustive ones for the units drawn.
    drawn = sd.placebo_assignments(np.arange(241) == 0, 79, 2015, 100).argmax(axis=1)
    _close(capped.placebo_estimates, full.placebo_estimates[drawn])


def test_p_value_mc_error() -> None:
    """The old name for permutation.mc_error: 499 draws beside the real assignment, of 7,000 others or independent."""
    assert sd.p_value_mc_error(0.05, 500, 500) == 0.0
    assert sd.p_value_mc_error(0.05, 500, None) == pytest.approx(np.sqrt(0.05 * 0.95 / 499))
    assert sd.p_value_mc_error(0.05, 500, 7001) == pytest.approx(np.sqrt(0.05 * 0.95 / 499 * 6501 / 6999))


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_unit_weight_newton_hessian_from_the_smaller_side_of_the_support(share: float) -> None:
    from evallib.methods.synth.simplex import _support_hessian

    rng = np.random.default_rng(1)
    A = rng.normal(size=(7, 60))
    s = rng.random((5, 60)) < share
    s[:, 0] = True  # no empty support
    dense = A[None] * s[:, None, :]
    u = dense.sum(axis=2)
    want = dense @ A.T - u[:, :, None] * u[:, None, :] / s.sum(1)[:, None, None]
    np.testing.assert_allclose(_support_hessian(A, s, A @ A.T), want, rtol=1e-12, atol=1e-10)


def test_small_panels_are_fitted_as_before_and_large_ones_in_power_of_two_batches_within_the_budget() -> None:
    assert sdid_fits.as_before(200, 66) and sdid_fits.batch_rows(200, 66) == sdid_fits.CHUNK
    assert sdid_fits.as_before(500, 60) and sdid_fits.batch_rows(500, 60) == sdid_fits.CHUNK
    assert not sdid_fits.as_before(600, 48)  # past 512 donors the Newton steps differ in rounding anyway
    for n, t0 in ((7000, 48), (7000, 192), (500, 192), (3000, 48)):
        rows = sdid_fits.batch_rows(n, t0)
        assert not sdid_fits.as_before(n, t0)
        assert rows & (rows - 1) == 0 and sdid_fits.CHUNK % rows == 0  # a power of two: never straddles a block
        assert rows == 1 or rows * sdid_fits._problem_bytes(n, t0) <= sdid_fits.WORK_BYTES
