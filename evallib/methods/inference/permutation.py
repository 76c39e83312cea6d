"""Design-based inference for one or a few treated units: placebo-in-space permutation tests whose
intervals are exact inversions of the same test, plain or studentized.

Every function works on per-unit statistics, so each estimator that reduces to "treated mean minus
comparison mean" gets its placebo distribution from one matrix product, and its interval from one
sort of the points where an assignment starts or stops counting (memory linear in the draws).
Statistics that are not linear in the effect (the Poisson rate ratio) are inverted by
:func:`evallib.methods.inference.inversion.invert_by_search`. The wild cluster bootstrap lives in :mod:`evallib.methods.inference.wild_bootstrap`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evallib.methods.inference.inversion import PlaceboCount

__all__ = [
    "PermutationTest",
    "permutation_estimates",
    "permutation_test",
    "real_assignments",
    "treatment_assignments",
]


def treatment_assignments(is_treated: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """Boolean matrix (assignment x unit) of placebo treatment assignments.

    With one treated unit every unit takes the treatment once (exhaustive, the real
    assignment included). With ``k > 1`` the real assignment comes first, then
    ``n_draws`` seeded random sets of ``k`` units.
    """
    n, k = len(is_treated), int(np.sum(is_treated))
    if k == 1:
        return np.eye(n, dtype=bool)
    rng = np.random.default_rng(seed)
    idx = np.argpartition(rng.random((n_draws, n)), k - 1, axis=1)[:, :k]
    assign = np.zeros((n_draws, n), bool)
    np.put_along_axis(assign, idx, True, axis=1)
    return np.vstack([np.asarray(is_treated, bool), assign])


def real_assignments(assign: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
    """True for the assignments that treat exactly the real treated units (the real one, and any repeat of it)."""
    return assign.astype(float) @ np.asarray(is_treated, float) == int(np.sum(is_treated))


def permutation_estimates(unit_values: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Mean of ``unit_values`` over each assignment's treated units minus the rest's.

    One matrix product gives every placebo estimate at once.
    """
    a = assign.astype(float)
    k = a[0].sum()
    return a @ unit_values / k - (1 - a) @ unit_values / (a.shape[1] - k)


@dataclass(frozen=True)
class PermutationTest:
    """Placebo-in-space results for one or more statistics (columns).

    ``estimate`` and ``placebo`` (assignments x statistics, the real assignment included)
    are treated-minus-comparison differences of the unit values, on the effect's scale.
    For the studentized test ``statistic`` and ``placebo_statistic`` hold the studentized
    statistics that the p-value ranks; ``is_real`` marks the real assignment (and any repeat of it).
    """

    estimate: np.ndarray
    std_error: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    placebo: np.ndarray  # assignments x statistics
    is_real: np.ndarray | None = None
    statistic: np.ndarray | None = None
    placebo_statistic: np.ndarray | None = None
    statistic_per_effect: float | None = None


def permutation_test(
    unit_values: np.ndarray,
    is_treated: np.ndarray,
    *,
    n_draws: int,
    seed: int,
    alpha: float,
    unit_scale: np.ndarray | None = None,
) -> PermutationTest:
    """Placebo-in-space inference for treated-minus-comparison means of per-unit values.

    ``unit_values`` is ``(n_units,)`` or ``(n_units, k)``: e.g. each unit's mean
    post-minus-pre change (DiD), or its change relative to a reference period for
    each event time. Each statistic is the treated units' mean minus the others'.
    With ``unit_scale`` (one positive number per unit, e.g. its pre-period noise) the
    test is studentized: it ranks the same difference of each unit's deviation from the
    all-unit mean divided by its scale.

    Notes
    -----
    Under the sharp null of no effect, which units were treated is exchangeable, so
    the observed statistic is ranked among its values under every placebo assignment:
    the p-value is the share at least as large in absolute value, the real assignment
    counted explicitly (it always ties with itself). Under the null "effect = tau" the
    treated units' values shift by tau, so every statistic is linear in tau: an
    assignment's moves by ``tau c`` with ``c`` the (scale-weighted) share of real
    treated units it holds, the observed one by ``tau c_obs``; the interval is every
    tau not rejected at ``alpha`` (:class:`PlaceboCount`), so p-value and interval
    always agree. Studentizing keeps this exact when the scale uses pre-period data
    only (it does not move with tau); it makes the test valid when units differ by a
    scale factor, not only when they are exchangeable as they are.
    """
    values = np.asarray(unit_values, float)
    values = values[:, None] if values.ndim == 1 else values
    is_treated = np.asarray(is_treated, bool)
    n, k = len(is_treated), int(is_treated.sum())
    assign = treatment_assignments(is_treated, n_draws, seed)
    a = assign.astype(float)
    real = real_assignments(assign, is_treated)
    est = permutation_estimates(values, assign)  # assignments x stats, effect scale
    diff = values[is_treated].mean(axis=0) - values[~is_treated].mean(axis=0)
    w = np.ones(n) if unit_scale is None else 1.0 / np.asarray(unit_scale, float)
    if unit_scale is not None and not (np.all(np.isfinite(w)) and np.all(w > 0)):
        raise ValueError("unit_scale must be positive and finite for every unit")
    # Under "effect = tau" the treated units' values shift by tau: shift = tau * delta.
    delta = is_treated.astype(float)
    if unit_scale is None:
        z = values
    else:
        # Scale each unit's deviation from the all-unit mean: a change every unit shares (a
        # national trend) must not be divided by each unit's own noise. The mean moves by
        # tau k / n under the shifted null, so the statistic stays linear in tau.
        delta = delta - k / n
        z = (values - values.mean(axis=0)) * w[:, None]
    stat_est = est if unit_scale is None else permutation_estimates(z, assign)
    obs = z[is_treated].mean(axis=0) - z[~is_treated].mean(axis=0)
    wd = w * delta
    held = a @ wd
    c = held / k - (wd.sum() - held) / (n - k)  # how each assignment's statistic moves per unit of tau
    c_obs = wd[is_treated].sum() / k - wd[~is_treated].sum() / (n - k)
    p = np.empty(len(obs))
    lo, hi = np.full(len(obs), -np.inf), np.full(len(obs), np.inf)
    for j in range(len(obs)):
        count = PlaceboCount(stat_est[~real, j], c[~real], obs[j], c_obs=c_obs, n_real=int(real.sum()))
        p[j] = count.p_value(0.0)
        lo[j], hi[j] = count.interval(alpha)
    sd = est.std(axis=0, ddof=1)
    est.setflags(write=False)
    if unit_scale is None:
        return PermutationTest(diff, sd, lo, hi, p, est, real)
    stat_est.setflags(write=False)
    return PermutationTest(diff, sd, lo, hi, p, est, real, obs, stat_est, float(c_obs))
