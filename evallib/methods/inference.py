"""Design-based inference for one or a few treated units: placebo-in-space permutation tests
(with exact test-inversion intervals) and the restricted wild cluster bootstrap.

Every function works on per-unit statistics or demeaned arrays, so each estimator
that reduces to "treated mean minus comparison mean" gets its placebo distribution
from one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


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


def permutation_estimates(unit_values: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Mean of ``unit_values`` over each assignment's treated units minus the rest's.

    One matrix product gives every placebo estimate at once.
    """
    a = assign.astype(float)
    k = a[0].sum()
    return a @ unit_values / k - (1 - a) @ unit_values / (a.shape[1] - k)


@dataclass(frozen=True)
class PermutationTest:
    """Placebo-in-space results for one or more statistics (columns)."""

    estimate: np.ndarray
    std_error: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    placebo: np.ndarray  # assignments x statistics


def _invert(est: np.ndarray, c: np.ndarray, obs: float, alpha: float) -> tuple[float, float]:
    """Exact interval {tau: p(tau) > alpha} of a permutation test.

    p(tau) counts assignments with ``|est - tau c| >= |obs - tau|``; it only changes
    where the two sides are equal, at ``tau = (est -+ obs) / (c -+ 1)``, so evaluating
    it at those breakpoints and between them gives the interval exactly.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        cuts = np.concatenate([(est - obs) / (c - 1), (est + obs) / (c + 1)])
    cuts = np.unique(cuts[np.isfinite(cuts)])
    if cuts.size == 0:
        return -np.inf, np.inf
    mids = (cuts[:-1] + cuts[1:]) / 2
    cand = np.concatenate([cuts, mids, [cuts[0] - 1.0, cuts[-1] + 1.0]])
    tol = 1e-12 * (1 + np.abs(cand))
    p = np.mean(np.abs(est[None, :] - cand[:, None] * c[None, :]) >= np.abs(obs - cand)[:, None] - tol[:, None], axis=1)
    ok = cand[p > alpha]
    if ok.size == 0:
        return float("nan"), float("nan")
    outer = p[-2:] > alpha  # beyond every breakpoint the verdict no longer changes
    lo = -np.inf if outer[0] else float(ok.min())
    hi = np.inf if outer[1] else float(ok.max())
    return lo, hi


def permutation_test(
    unit_values: np.ndarray, is_treated: np.ndarray, *, n_draws: int, seed: int, alpha: float
) -> PermutationTest:
    """Placebo-in-space inference for treated-minus-comparison means of per-unit values.

    ``unit_values`` is ``(n_units,)`` or ``(n_units, k)``: e.g. each unit's mean
    post-minus-pre change (DiD), or its change relative to a reference period for
    each event time. Each statistic is the treated units' mean minus the others'.

    Notes
    -----
    Under the sharp null of no effect, which units were treated is exchangeable, so
    the observed statistic is ranked among its values under every placebo assignment
    (p-value = share at least as large in absolute value, the real assignment
    included). Under the null "effect = tau", the treated units' values shift by tau
    and each assignment's statistic moves by ``tau * c`` with ``c`` the share of real
    treated units it holds; the interval is every tau not rejected at ``alpha``.
    """
    values = np.asarray(unit_values, float)
    values = values[:, None] if values.ndim == 1 else values
    is_treated = np.asarray(is_treated, bool)
    n, k = len(is_treated), int(is_treated.sum())
    assign = treatment_assignments(is_treated, n_draws, seed)
    a = assign.astype(float)
    est = permutation_estimates(values, assign)  # assignments x stats
    obs = values[is_treated].mean(axis=0) - values[~is_treated].mean(axis=0)
    p = np.mean(np.abs(est) >= np.abs(obs)[None, :] - 1e-12, axis=0)
    m = a @ is_treated.astype(float)
    c = m / k - (k - m) / (n - k)
    sd = est.std(axis=0, ddof=1)
    lo, hi = np.full(len(obs), -np.inf), np.full(len(obs), np.inf)
    for j in range(len(obs)):
        lo[j], hi[j] = _invert(est[:, j], c, obs[j], alpha)
    est.setflags(write=False)
    return PermutationTest(obs, sd, lo, hi, p, est)


_RADEMACHER = np.array([-1.0, 1.0])
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


def wild_cluster_bootstrap(
    d_w: np.ndarray,
    y_w: np.ndarray,
    *,
    k_params: int,
    n_draws: int,
    seed: int,
    alpha: float,
    weights: Literal["rademacher", "webb"] = "webb",
) -> tuple[float, float, float]:
    """Restricted wild cluster bootstrap-t (WCR) for the DiD coefficient, clustered by unit.

    ``d_w`` and ``y_w`` are the within-transformed regressor and outcome of a balanced
    panel as ``(units, periods)`` arrays. Returns the p-value and the interval (by test
    inversion over a grid).

    Notes
    -----
    For a moderate number of treated clusters, where placebo inference has few distinct
    assignments and CR1 over-rejects (MacKinnon, Nielsen & Webb 2023). Bootstrap samples
    are ``y* = b0 d + v_g u``, with ``u`` the residuals under the null ``beta = b0`` and
    ``v_g`` one Rademacher (+-1) or Webb six-point weight per unit. Each bootstrap
    regression is solved exactly in closed form: the coefficient is ``d'y*/d'd`` and its
    residuals need the period means of ``v_g u`` removed again (period effects are not
    nested in the clusters). Everything is matrix products over units, so 999 draws cost
    a few milliseconds.
    """
    g, _ = d_w.shape
    n = d_w.size
    rng = np.random.default_rng(seed)
    v = rng.choice(_RADEMACHER if weights == "rademacher" else _WEBB, size=(n_draws, g))
    sxx = float((d_w * d_w).sum())
    q = (d_w * d_w).sum(axis=1)
    factor = g / (g - 1) * (n - 1) / (n - k_params)
    beta = float((d_w * y_w).sum() / sxx)

    def cr1_se(resid: np.ndarray) -> float:
        score = (d_w * resid).sum(axis=1)
        return float(np.sqrt(score @ score / sxx**2 * factor))

    se_hat = cr1_se(y_w - beta * d_w)

    def p_value(b0: float) -> float:
        u = y_w - b0 * d_w  # restricted residuals
        s = (d_w * u).sum(axis=1)
        db = v @ s / sxx  # beta* - b0 for each draw
        corr = v @ (u @ d_w.T) / g  # d'(period means of v u), per cluster
        score = v * s[None, :] - corr - db[:, None] * q[None, :]
        se = np.sqrt((score**2).sum(axis=1) / sxx**2 * factor)
        t_obs = (beta - b0) / se_hat
        return float(np.mean(np.abs(db / se) >= abs(t_obs) - 1e-12))

    p = p_value(0.0)
    grid = beta + np.linspace(-8, 8, 161) * se_hat
    p_grid = np.array([p_value(b) for b in grid])
    kept = grid[p_grid > alpha]
    if kept.size == 0 or p_grid[0] > alpha or p_grid[-1] > alpha:
        return p, -np.inf, np.inf
    return p, float(kept.min()), float(kept.max())
