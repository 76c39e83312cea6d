"""Design-based inference for one or a few treated units: placebo-in-space permutation tests whose
intervals are exact inversions of the same test, plain or studentized.

Every function works on per-unit statistics, so each estimator that reduces to "treated mean minus
comparison mean" gets its placebo distribution from each assignment's treated units alone (an assignment is
the index array of its ``k`` treated units, :func:`placebo_sets`): with one treated unit the placebo
estimates have the closed form ``v_i - (S - v_i) / (n - 1)``, time and memory linear in the units, no
``n x n`` array anywhere. Its interval comes from one sort of the points where an assignment starts or stops
counting (memory linear in the draws).
Statistics that are not linear in the effect (the Poisson rate ratio) are inverted by
:func:`evallib.methods.inference.inversion.invert_by_search`. The wild cluster bootstrap lives in :mod:`evallib.methods.inference.wild_bootstrap`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from evallib.methods.inference.inversion import PlaceboCount

__all__ = [
    "EXHAUSTIVE_MAX_UNITS",
    "PermutationTest",
    "mc_error",
    "permutation_estimates",
    "permutation_test",
    "placebo_sets",
    "random_sets",
    "random_single_sets",
    "real_assignments",
    "real_sets",
    "set_estimates",
    "sets_are_sampled",
    "sets_to_matrix",
    "treatment_assignments",
]

#: Units beyond which estimators that refit every assignment (the rate ratio, synthetic control) draw a seeded
#: random subset of single-unit placebo assignments instead of trying every unit: each refit costs time linear in
#: the units, so trying all of them would be quadratic. Closed-form placebo tests stay exhaustive at any size.
EXHAUSTIVE_MAX_UNITS = 500

#: Floats of the uniform draws held at once while drawing random sets (about 32 MB).
_DRAW_CHUNK = 2**22


def random_sets(n: int, k: int, n_draws: int, seed: int) -> np.ndarray:
    """``n_draws`` seeded random sets of ``k`` distinct units out of ``n`` (``(n_draws, k)`` unit indices).

    Each row is an independent uniform draw (the ``k`` smallest of ``n`` uniforms); drawn in chunks of rows so that
    memory stays at a few tens of MB whatever ``n``, with the same draws as one ``(n_draws, n)`` block.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n_draws, k), np.intp)
    rows = max(1, _DRAW_CHUNK // max(n, 1))
    for s in range(0, n_draws, rows):
        m = min(rows, n_draws - s)
        out[s : s + m] = np.argpartition(rng.random((m, n)), k - 1, axis=1)[:, :k]
    return out


def placebo_sets(is_treated: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """The placebo assignments as index arrays of their treated units (``(assignments, k)``).

    With one treated unit every unit takes the treatment once (``n`` rows, exhaustive, the real one
    included). With ``k > 1`` the real assignment comes first, then ``n_draws`` seeded random sets of
    ``k`` units: the same assignments, in the same order, as :func:`treatment_assignments`.
    """
    t = np.flatnonzero(np.asarray(is_treated, bool))
    n, k = len(is_treated), len(t)
    if k == 1:
        return np.arange(n)[:, None]
    if not sets_are_sampled(n, k, n_draws):
        # Few distinct sets: each once (exact), the real one first. Random draws would repeat them and report a
        # Monte Carlo error for a test that could have been exhaustive.
        every = np.array(list(itertools.combinations(range(n), k)), np.intp)
        return np.vstack([t[None], every[~(every == t).all(axis=1)]])
    return np.vstack([t[None], random_sets(n, k, n_draws, seed)])


def sets_are_sampled(n: int, k: int, n_draws: int) -> bool:
    """Whether :func:`placebo_sets` draws random sets (several treated units and more distinct sets than draws)."""
    return k > 1 and math.comb(n, k) > n_draws


def random_single_sets(is_treated: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """The real treated unit, then ``n_draws`` other units drawn at random without replacement (``(1 + n_draws, 1)``).

    The one sampler of single-unit placebo assignments, for one treated unit when refits are too costly to try every
    unit (the rate ratio, synthetic control and synthetic DiD all draw with it, so the same seed gives them the same
    placebo units). Drawn from the other units only, so no draw repeats the real assignment (a repeat would tie with
    it and raise the smallest attainable p-value); the real unit's rank among a uniformly random subset of the others
    is uniform under the null, so the test stays exact. The drawn units follow the real one in unit order; with
    ``n_draws`` at least the other units, every unit is used once.
    """
    is_t = np.asarray(is_treated, bool)
    if int(is_t.sum()) != 1:
        raise ValueError("random_single_sets is for one treated unit")
    others = np.flatnonzero(~is_t)
    pick = np.sort(np.random.default_rng(seed).choice(len(others), min(n_draws, len(others)), replace=False))
    return np.concatenate([np.flatnonzero(is_t), others[pick]])[:, None]


def sets_to_matrix(sets: np.ndarray, n: int) -> np.ndarray:
    """Boolean matrix (assignment x unit) of index-array assignments (memory ``assignments x n``)."""
    assign = np.zeros((len(sets), n), bool)
    np.put_along_axis(assign, np.asarray(sets), True, axis=1)
    return assign


def real_sets(sets: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
    """True for the index-array assignments that treat exactly the real treated units."""
    return np.asarray(is_treated, bool)[sets].all(axis=1)


def set_estimates(unit_values: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """Mean of ``unit_values`` over each assignment's treated units (``sets``) minus the rest's.

    The rest's mean is the total less the treated units' sum, so each assignment costs ``k`` additions:
    time and memory ``assignments x k`` (``n`` for one treated unit), never ``assignments x n``.
    """
    v = np.asarray(unit_values, float)
    n, k = v.shape[0], sets.shape[1]
    held = v[sets[:, 0]].copy()
    for j in range(1, k):  # column by column: never an (assignments, k, statistics) block
        held += v[sets[:, j]]
    return held / k - (v.sum(axis=0) - held) / (n - k)


def mc_error(p: float, n_draws: int, n_candidates: int | None = None) -> float:
    """Monte Carlo standard error of a placebo p-value ranked among ``n_draws`` random assignments.

    The one formula every estimator that samples its placebo assignments reports (``p_value_mc_error``).

    Parameters
    ----------
    p : float
        The sampled p-value.
    n_draws : int
        Random placebo assignments drawn (D), the real one not counted; 0 for an exhaustive test (error 0).
    n_candidates : int, optional
        How many assignments the draws were taken from without replacement (M: the other units, for one treated
        unit); None when they are independent draws (several treated units: random sets, repeats possible).

    Notes
    -----
    The sampled p-value estimates the exhaustive one (every possible assignment ranked). The number of drawn
    assignments at least as extreme as the real one is binomial (independent draws) or hypergeometric (draws
    without replacement from M), so the p-value's standard error is ``sqrt(p (1 - p) / D)``, times the
    finite-population correction ``sqrt((M - D) / (M - 1))`` when drawn without replacement (0 once every candidate
    is drawn), with the sampled p in place of the exhaustive one. Sampling changes the test's precision, not its
    size: the real assignment is exchangeable with the drawn ones under the null, so the sampled test stays exact.
    """
    if n_draws <= 0 or (n_candidates is not None and n_draws >= n_candidates):
        return 0.0
    fpc = 1.0 if n_candidates is None else (n_candidates - n_draws) / max(n_candidates - 1, 1)
    return float(np.sqrt(p * (1.0 - p) / n_draws * fpc))


def treatment_assignments(is_treated: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """Boolean matrix (assignment x unit) of placebo treatment assignments.

    With one treated unit every unit takes the treatment once (exhaustive, the real
    assignment included). With ``k > 1`` the real assignment comes first, then
    ``n_draws`` seeded random sets of ``k`` units.

    Kept for callers that want the matrix; :func:`placebo_sets` gives the same assignments as
    index arrays without the ``n x n`` matrix of the one-treated-unit case.
    """
    return sets_to_matrix(placebo_sets(is_treated, n_draws, seed), len(is_treated))


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
    ``placebo_draws`` is how many random assignments the p-values rank the real one among when they were sampled
    (several treated units), 0 when every assignment was tried; :attr:`p_value_mc_error` their Monte Carlo errors.
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
    placebo_draws: int = 0

    @property
    def p_value_mc_error(self) -> np.ndarray:
        """Each p-value's Monte Carlo standard error (:func:`mc_error`; zeros when every assignment was tried)."""
        return np.array([mc_error(float(p), self.placebo_draws) for p in self.p_value])


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

    With one treated unit every placebo estimate has the closed form ``v_i - (S - v_i) / (n - 1)``
    (``S`` the sum over units), so the test costs time and memory linear in the units, and every unit is tried.
    With several treated units the ``n_draws`` assignments are random sets when the possible sets outnumber them
    (every distinct set once otherwise): the p-values then estimate the exhaustive test's, with
    :attr:`PermutationTest.p_value_mc_error`.
    """
    values = np.asarray(unit_values, float)
    values = values[:, None] if values.ndim == 1 else values
    is_treated = np.asarray(is_treated, bool)
    n, k = len(is_treated), int(is_treated.sum())
    sets = placebo_sets(is_treated, n_draws, seed)  # (assignments, k): linear in n, never n x n
    real = real_sets(sets, is_treated)
    est = set_estimates(values, sets)  # assignments x stats, effect scale
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
    stat_est = est if unit_scale is None else set_estimates(z, sets)
    obs = z[is_treated].mean(axis=0) - z[~is_treated].mean(axis=0)
    wd = w * delta
    held = wd[sets].sum(axis=1)
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
    draws = len(sets) - 1 if sets_are_sampled(n, k, n_draws) else 0  # random sets, the real one first
    if unit_scale is None:
        return PermutationTest(diff, sd, lo, hi, p, est, real, placebo_draws=draws)
    stat_est.setflags(write=False)
    return PermutationTest(diff, sd, lo, hi, p, est, real, obs, stat_est, float(c_obs), draws)
