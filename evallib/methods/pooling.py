"""Random-effects pooling of site estimates for the programme view.

The between-site variance is estimated by restricted maximum likelihood (REML) and the
interval uses the Hartung-Knapp-Sidik-Jonkman (HKSJ) variance with a t distribution on
``k - 1`` degrees of freedom, which keeps its coverage with the 5-13 sites of a care
model, where the usual normal interval around a DerSimonian-Laird estimate is too narrow.
DerSimonian-Laird and the normal interval remain available for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

from evallib.errors import DataError

Tau2Method = Literal["reml", "dl"]
Interval = Literal["hartung_knapp", "normal"]


@dataclass(frozen=True)
class PooledEstimate:
    """A random-effects pooled estimate with its heterogeneity statistics.

    ``std_error`` is the one the interval uses (HKSJ or the usual ``1/sqrt(sum w)``);
    ``dof`` the t degrees of freedom (``inf`` for the normal interval); ``i2`` the share
    of the total variance that is between sites, ``tau2 / (tau2 + s2)`` with ``s2`` the
    typical within-site variance (equal to ``(Q - (k-1)) / Q`` with DerSimonian-Laird).
    """

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    q: float
    k: int
    tau2_method: str = "reml"
    interval: str = "hartung_knapp"
    dof: float = float("inf")


def _tau2_dl(y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / v
    fixed = w @ y / w.sum()
    q = w @ (y - fixed) ** 2
    return max(0.0, (q - (len(y) - 1)) / (w.sum() - (w**2).sum() / w.sum()))


def _neg_restricted_loglik(t2: float | np.ndarray, y: np.ndarray, v: np.ndarray) -> float | np.ndarray:
    """Minus the restricted log-likelihood (up to a constant); ``t2`` may be an array of values."""
    t2 = np.asarray(t2, float)[..., None]
    w = 1 / (v + t2)
    mu = (w * y).sum(-1, keepdims=True) / w.sum(-1, keepdims=True)
    out = 0.5 * (np.log(v + t2).sum(-1) + np.log(w.sum(-1)) + (w * (y - mu) ** 2).sum(-1))
    return float(out) if out.ndim == 0 else out


def _fisher_scoring(t2: float, y: np.ndarray, v: np.ndarray, tol: float, max_iter: int) -> float | None:
    for _ in range(max_iter):
        w = 1 / (v + t2)
        p = np.diag(w) - np.outer(w, w) / w.sum()
        py = p @ y
        new = max(0.0, t2 + (py @ py - np.trace(p)) / np.sum(p * p.T))
        if abs(new - t2) <= tol * (1 + t2):
            return new
        t2 = new
    return None


def _tau2_reml(y: np.ndarray, v: np.ndarray, tol: float = 1e-12, max_iter: int = 1000) -> float:
    """REML estimate of tau^2: the global maximum of the restricted likelihood on ``tau2 >= 0``.

    Fisher scoring, ``tau2 += (y'P P y - tr P) / tr(P P)`` with ``P = W - W 1 1'W / 1'W 1``
    and ``W = diag(1 / (v + tau2))`` (Viechtbauer 2005, as metafor), truncated at zero. With
    very unequal SEs the restricted likelihood can have two maxima, and where the scoring
    lands depends on its start; so it starts from DerSimonian-Laird and from the best point
    of a grid, and the higher likelihood wins.
    """
    upper = 10 * (np.var(y) + v.max())
    grid = np.concatenate([[0.0], np.geomspace(1e-6 * upper, upper, 200)])
    nll = _neg_restricted_loglik(grid, y, v)
    starts = [_tau2_dl(y, v), float(grid[np.argmin(nll)])]
    found = [t for t in (_fisher_scoring(s, y, v, tol, max_iter) for s in starts) if t is not None]
    if not found:  # scoring did not converge: maximise the likelihood directly around the grid's best
        i = int(np.argmin(nll))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = optimize.minimize_scalar(_neg_restricted_loglik, bounds=(lo, hi), args=(y, v), method="bounded")
        found = [float(res.x)]
    return float(min(found, key=lambda t: _neg_restricted_loglik(t, y, v)))


def random_effects(
    estimates: np.ndarray,
    std_errors: np.ndarray,
    alpha: float = 0.05,
    *,
    tau2_method: Tau2Method = "reml",
    interval: Interval = "hartung_knapp",
) -> PooledEstimate:
    """Random-effects meta-analysis of independent site estimates.

    Parameters
    ----------
    estimates, std_errors : array
        One estimate and standard error per site; sites without a finite estimate and a
        positive finite SE are left out.
    alpha : float
        1 - confidence level.
    tau2_method : {"reml", "dl"}
        Between-site variance by restricted maximum likelihood or DerSimonian-Laird.
    interval : {"hartung_knapp", "normal"}
        ``hartung_knapp``: variance ``sum w (y - mu)^2 / ((k - 1) sum w)`` and a t interval
        on ``k - 1`` degrees of freedom (as metafor's ``test="knha"``); ``normal``: the
        usual ``1 / sum w`` and a normal interval. With one site the normal interval of
        its own SE is returned.

    Notes
    -----
    Estimand: the mean of the distribution of true site effects. Each site's estimate is
    weighted by ``w = 1 / (se^2 + tau^2)``. Assumes the site estimates are independent
    (approximate where sites share comparison trusts) and roughly normal with known
    SEs; the HKSJ interval accounts for the SEs and ``tau^2`` being estimated, which is
    what keeps its coverage near nominal with few sites (IntHout et al. 2014).
    """
    if tau2_method not in ("reml", "dl"):
        raise DataError(f"random_effects: tau2_method {tau2_method!r}; use 'reml' or 'dl'")
    if interval not in ("hartung_knapp", "normal"):
        raise DataError(f"random_effects: interval {interval!r}; use 'hartung_knapp' or 'normal'")
    y = np.asarray(estimates, float)
    se = np.asarray(std_errors, float)
    ok = np.isfinite(y) & np.isfinite(se) & (se > 0)
    y, v = y[ok], se[ok] ** 2
    k = len(y)
    if k == 0:
        raise DataError("random_effects: no site has a finite estimate and standard error")
    w0 = 1 / v
    q = float(w0 @ (y - w0 @ y / w0.sum()) ** 2)
    tau2 = 0.0 if k == 1 else (_tau2_reml(y, v) if tau2_method == "reml" else _tau2_dl(y, v))
    s2 = (k - 1) * w0.sum() / (w0.sum() ** 2 - (w0**2).sum()) if k > 1 else float(v[0])
    i2 = tau2 / (tau2 + s2) if tau2 > 0 else 0.0
    w = 1 / (v + tau2)
    est = float(w @ y / w.sum())
    if interval == "hartung_knapp" and k > 1:
        se_re = float(np.sqrt(w @ (y - est) ** 2 / ((k - 1) * w.sum())))
        dof = float(k - 1)
        crit = stats.t.ppf(1 - alpha / 2, dof)
        p = float(2 * stats.t.sf(abs(est / se_re), dof)) if se_re > 0 else float("nan")
    else:
        interval = "normal"
        se_re = float(np.sqrt(1 / w.sum()))
        dof = float("inf")
        crit = stats.norm.ppf(1 - alpha / 2)
        p = float(2 * stats.norm.sf(abs(est / se_re)))
    return PooledEstimate(
        estimate=est,
        std_error=se_re,
        ci_low=est - crit * se_re,
        ci_high=est + crit * se_re,
        p_value=p,
        tau2=float(tau2),
        i2=float(i2),
        q=q,
        k=k,
        tau2_method=tau2_method,
        interval=interval,
        dof=dof,
    )
