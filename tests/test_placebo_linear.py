"""Placebo inference linear in the number of units (issue 22): the index-array assignments give the same
placebo estimates, p-values and intervals as the n x n matrix formulas they replace, no n x n array is formed,
and the estimators that refit every assignment draw a seeded random subset past a documented size, with the
p-value's Monte Carlo error stated."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.inference import permutation as perm_mod
from evallib.methods.inference.inversion import PlaceboCount
from evallib.methods.inference.permutation import (
    EXHAUSTIVE_MAX_UNITS,
    PermutationTest,
    permutation_test,
    placebo_sets,
    real_sets,
    set_estimates,
    sets_are_sampled,
    sets_to_matrix,
    treatment_assignments,
)
from evallib.methods.its.controlled import ControlledITS
from evallib.methods.simulate import simulate_nhs_panel, simulate_panel
from evallib.methods.synth.control import SyntheticControl

pytestmark = pytest.mark.unit


# The formulas as they stood before issue 22 (n x n matrices for one treated unit), kept here as the reference.
def _old_assignments(is_treated: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    n, k = len(is_treated), int(np.sum(is_treated))
    if k == 1:
        return np.eye(n, dtype=bool)
    rng = np.random.default_rng(seed)
    idx = np.argpartition(rng.random((n_draws, n)), k - 1, axis=1)[:, :k]
    assign = np.zeros((n_draws, n), bool)
    np.put_along_axis(assign, idx, True, axis=1)
    return np.vstack([np.asarray(is_treated, bool), assign])


def _old_estimates(unit_values: np.ndarray, assign: np.ndarray) -> np.ndarray:
    a = assign.astype(float)
    k = a[0].sum()
    return a @ unit_values / k - (1 - a) @ unit_values / (a.shape[1] - k)


def _old_test(
    values: np.ndarray, is_treated: np.ndarray, n_draws: int, seed: int, alpha: float, unit_scale: np.ndarray | None
) -> PermutationTest:
    values = values[:, None] if values.ndim == 1 else values
    n, k = len(is_treated), int(is_treated.sum())
    assign = _old_assignments(is_treated, n_draws, seed)
    a = assign.astype(float)
    real = a @ is_treated.astype(float) == k
    est = _old_estimates(values, assign)
    diff = values[is_treated].mean(axis=0) - values[~is_treated].mean(axis=0)
    w = np.ones(n) if unit_scale is None else 1.0 / unit_scale
    delta = is_treated.astype(float)
    if unit_scale is None:
        z = values
    else:
        delta = delta - k / n
        z = (values - values.mean(axis=0)) * w[:, None]
    stat_est = est if unit_scale is None else _old_estimates(z, assign)
    obs = z[is_treated].mean(axis=0) - z[~is_treated].mean(axis=0)
    wd = w * delta
    held = a @ wd
    c = held / k - (wd.sum() - held) / (n - k)
    c_obs = wd[is_treated].sum() / k - wd[~is_treated].sum() / (n - k)
    p = np.empty(len(obs))
    lo, hi = np.full(len(obs), -np.inf), np.full(len(obs), np.inf)
    for j in range(len(obs)):
        count = PlaceboCount(stat_est[~real, j], c[~real], obs[j], c_obs=c_obs, n_real=int(real.sum()))
        p[j] = count.p_value(0.0)
        lo[j], hi[j] = count.interval(alpha)
    return PermutationTest(diff, est.std(axis=0, ddof=1), lo, hi, p, est, real, obs, stat_est, float(c_obs))


def _treated(n: int, k: int, seed: int) -> np.ndarray:
    is_t = np.zeros(n, bool)
    is_t[np.random.default_rng(seed).choice(n, k, replace=False)] = True
    return is_t


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("n", [7, 60, 301])
def test_placebo_sets_are_the_old_assignment_matrix(n: int, k: int) -> None:
    is_t = _treated(n, k, seed=n + k)
    sets = placebo_sets(is_t, 199, seed=11)
    if k > 1 and not sets_are_sampled(n, k, 199):  # few distinct sets (7 units): each once, the real one first
        assert len(sets) == math.comb(n, k) and len({tuple(s) for s in sets.tolist()}) == len(sets)
        assert real_sets(sets, is_t).tolist() == [True] + [False] * (len(sets) - 1)
        return
    np.testing.assert_array_equal(sets_to_matrix(sets, n), _old_assignments(is_t, 199, 11))
    np.testing.assert_array_equal(treatment_assignments(is_t, 199, 11), _old_assignments(is_t, 199, 11))
    np.testing.assert_array_equal(real_sets(sets, is_t), _old_assignments(is_t, 199, 11).astype(float) @ is_t == k)


def test_random_sets_drawn_in_chunks_are_the_draws_of_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    is_t = _treated(50, 3, seed=1)
    whole = placebo_sets(is_t, 999, seed=5)
    monkeypatch.setattr(perm_mod, "_DRAW_CHUNK", 50 * 7)  # seven rows at a time
    np.testing.assert_array_equal(placebo_sets(is_t, 999, seed=5), whole)


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("n", [12, 97, 350])
@pytest.mark.parametrize("n_stats", [1, 6])
def test_set_estimates_equal_the_matrix_product(n: int, k: int, n_stats: int) -> None:
    rng = np.random.default_rng(n * k + n_stats)
    values = rng.normal(size=(n, n_stats)) * rng.lognormal(size=n)[:, None]
    is_t = _treated(n, k, seed=n)
    sets = placebo_sets(is_t, 299, seed=3)
    np.testing.assert_allclose(
        set_estimates(values, sets), _old_estimates(values, _old_assignments(is_t, 299, 3)), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("studentized", [False, True])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("n", [16, 120, 400])  # C(16, 3) = 560 > 499 draws: sampled
def test_permutation_test_equals_the_matrix_formulas(n: int, k: int, studentized: bool) -> None:
    """Estimates, placebo distribution, SD and interval to rounding; p-values and the real assignments exactly."""
    rng = np.random.default_rng(100 * n + 10 * k + studentized)
    values = rng.normal(size=(n, 3)) + 0.4 * rng.normal()
    is_t = _treated(n, k, seed=n + 1)
    scale = rng.lognormal(size=n) if studentized else None
    new = permutation_test(values, is_t, n_draws=499, seed=8, alpha=0.05, unit_scale=scale)
    old = _old_test(values, is_t, 499, 8, 0.05, scale)
    np.testing.assert_array_equal(new.p_value, old.p_value)
    np.testing.assert_array_equal(new.is_real, old.is_real)
    for name in ("estimate", "std_error", "ci_low", "ci_high", "placebo"):
        np.testing.assert_allclose(getattr(new, name), getattr(old, name), rtol=1e-10, atol=1e-12, err_msg=name)
    if studentized:
        np.testing.assert_allclose(new.placebo_statistic, old.placebo_statistic, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(new.statistic, old.statistic, rtol=1e-12, atol=1e-14)
        assert new.statistic_per_effect == pytest.approx(old.statistic_per_effect, rel=1e-12)


def test_one_treated_unit_closed_form() -> None:
    """estimate_i = v_i - (S - v_i) / (n - 1) for every unit i, the real one first among equals."""
    v = np.random.default_rng(2).normal(size=40)
    est = set_estimates(v, placebo_sets(np.arange(40) == 7, 999, 1))
    np.testing.assert_allclose(est, v - (v.sum() - v) / 39, rtol=1e-13)


def test_one_treated_unit_forms_no_n_by_n_array() -> None:
    """12,000 units: an n x n float matrix alone would be 1.15 GB; the whole test stays under 40 MB."""
    n = 12_000
    rng = np.random.default_rng(0)
    values, is_t = rng.normal(size=(n, 2)), np.arange(n) == 5
    tracemalloc.start()
    try:
        permutation_test(values, is_t, n_draws=999, seed=1, alpha=0.05, unit_scale=rng.lognormal(size=n))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, peak


def test_controlled_its_fake_sites_are_the_old_assignments() -> None:
    model = ControlledITS(start=None, n_draws=250, seed=9)
    one = model._fake_sites(80, 1)
    np.testing.assert_array_equal(sets_to_matrix(one, 80), np.eye(80, dtype=bool))
    several = model._fake_sites(80, 3)
    rng = np.random.default_rng(9)
    idx = np.argpartition(rng.random((250, 80)), 2, axis=1)[:, :3]
    old = np.zeros((250, 80), bool)
    np.put_along_axis(old, idx, True, axis=1)
    np.testing.assert_array_equal(sets_to_matrix(several, 80), old)


ROLES = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}


def test_rate_ratio_samples_assignments_past_its_cap_and_states_the_monte_carlo_error() -> None:
    d = simulate_nhs_panel(60, 30, n_treated=1, start_period=20, effect=-0.1, seed=3)
    kw = {**ROLES, "exposure": "population", "inference": "placebo_in_space", "n_draws": 39}
    full = PoissonDiD(**kw).fit(d)  # type: ignore[arg-type]
    assert full.placebo_draws == 0 and full.p_value_mc_error == 0.0
    assert len(full.placebo_estimates) == 60  # every unit, exhaustive below the cap
    capped = PoissonDiD(**kw, max_exhaustive=50).fit(d)  # type: ignore[arg-type]
    assert capped.placebo_draws == 39 and len(capped.placebo_estimates) == 40
    p = capped.p_value
    # 39 of the 59 other units, drawn without replacement: the finite-population correction (permutation.mc_error).
    assert capped.p_value_mc_error == pytest.approx(np.sqrt(p * (1 - p) / 39 * (59 - 39) / 58))
    assert capped.estimate == full.estimate
    # The sampled assignments' refits are the exhaustive ones for the same units (the real one first).
    sets = perm_mod.random_single_sets(np.arange(60) == 0, 39, 2015)[:, 0]
    np.testing.assert_allclose(capped.placebo_estimates, full.placebo_estimates[sets], rtol=1e-7, atol=1e-9)
    assert "Monte Carlo error" in capped.summary()


def test_sampled_single_unit_assignments_never_repeat_the_real_one() -> None:
    """A repeat of the real unit would tie with it and raise the smallest attainable p-value (1/20 to 2/20)."""
    for seed in range(30):
        is_t = np.arange(130) == seed % 7
        sets = perm_mod.random_single_sets(is_t, 19, seed)[:, 0]
        assert sets[0] == seed % 7 and len(set(sets.tolist())) == 20
        assert real_sets(sets[:, None], is_t).sum() == 1


def test_rate_ratio_cap_is_the_documented_size() -> None:
    assert PoissonDiD().max_exhaustive == EXHAUSTIVE_MAX_UNITS == SyntheticControl().max_exhaustive == 500


def test_synthetic_control_samples_placebo_units_past_its_cap() -> None:
    d = simulate_panel(41, 36, treated=1, start_period=24, effect=0.05, seed=2)
    site = str(d["unit"].iloc[0])
    start = d.loc[d["post"] == 1, "period"].min()
    base = SyntheticControl(treated=site, start=start, transform="log", n_draws=15)
    full = base.fit(d)
    assert full.placebo_draws == 0 and full.p_value_mc_error == 0.0 and len(full.placebos) == 40
    capped = SyntheticControl(treated=site, start=start, transform="log", n_draws=15, max_exhaustive=30).fit(d)
    assert capped.placebo_draws == 15 and len(capped.placebos) == 15
    assert capped.min_p_value == pytest.approx(1 / 16)
    assert capped.estimate == full.estimate
    # Every placebo unit drawn is refitted exactly as in the exhaustive run.
    same = full.placebos.set_index("unit").loc[capped.placebos["unit"]]
    np.testing.assert_array_equal(same["mean_post_gap"].to_numpy(), capped.placebos["mean_post_gap"].to_numpy())
    stats = np.append(capped.placebos["mean_post_gap"].to_numpy(), capped.estimate)
    assert capped.p_value == pytest.approx(np.mean(np.abs(stats) >= abs(capped.estimate) - 1e-12))
    p = capped.p_value
    assert capped.p_value_mc_error == pytest.approx(np.sqrt(p * (1 - p) / 15 * (40 - 15) / 39))  # 15 of 40 donors


@pytest.mark.parametrize("inference", ["placebo_in_space", "cluster_cr1"])
@pytest.mark.parametrize("n_treated", [1, 3])
def test_event_study_balanced_path_equals_the_full_design(
    inference: str, n_treated: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The balanced panel's closed-form regression gives the estimates of the full (units x periods) design."""
    from evallib.methods.did import event_study

    d = simulate_panel(50, 40, treated=list(range(n_treated)), start_period=28, effect=0.05, seed=n_treated)
    start = d.loc[d["post"] == 1, "period"].min()
    model = event_study.EventStudy(start=start, transform="log", inference=inference, leads=6, lags=8)  # type: ignore[arg-type]
    fast = model.fit(d)
    monkeypatch.setattr(event_study, "_balanced_fit", lambda *a, **k: None)
    full = model.fit(d)
    a, b = fast.tidy(), full.tidy()
    for col in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-12, err_msg=col)
    assert fast.pretrend.estimate == pytest.approx(full.pretrend.estimate, rel=1e-9)
    assert fast.pretrend.p_value == pytest.approx(full.pretrend.p_value, rel=1e-12)
