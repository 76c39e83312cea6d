"""Poisson regression with unit and period fixed effects: the solvers behind :class:`~evallib.methods.did.rate_ratio.PoissonDiD`.

:func:`fit_poisson_fe` is IRLS with weighted demeaning (any panel); :func:`poisson_fe_assignments`
fits the model for many treatment assignments and many null values at once from the data's
sufficient statistics (unit totals, period totals, unit post-period totals), with matrix products
only, which is what makes inverting the rate ratio's placebo test affordable.
:func:`fit_poisson_fe_balanced` is the earlier vectorised solver, kept for comparison.
"""

from __future__ import annotations

import numpy as np


def _weighted_demean(
    x: np.ndarray, w: np.ndarray, unit: np.ndarray, time: np.ndarray, n_u: int, n_t: int, tol: float = 1e-11
) -> np.ndarray:
    """Remove weighted unit and period means from the columns of ``x`` (alternating projections)."""
    x = x.copy()
    wu = np.bincount(unit, weights=w, minlength=n_u)
    wt = np.bincount(time, weights=w, minlength=n_t)
    for _ in range(10_000):
        change = 0.0
        for codes, tot, n in ((unit, wu, n_u), (time, wt, n_t)):
            for j in range(x.shape[1]):
                m = np.bincount(codes, weights=w * x[:, j], minlength=n) / tot
                x[:, j] -= m[codes]
                change = max(change, float(np.abs(m).max()))
        if change < tol:
            break
    return x


def fit_poisson_fe(
    y: np.ndarray,
    d: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    offset: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
    """IRLS for ``log E[y] = offset + unit + period + beta * d``.

    Returns ``beta``, fitted means, the weighted-demeaned regressor, the working
    weights and the number of iterations.
    """
    n_u, n_t = unit.max() + 1, time.max() + 1
    off = np.zeros_like(y, dtype=float) if offset is None else offset
    mu = (y + y.mean()) / 2
    eta = np.log(mu)
    beta = 0.0
    dev_old = np.inf
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        z = eta - off + (y - mu) / mu
        w = mu
        zd = _weighted_demean(np.column_stack([z, d]), w, unit, time, n_u, n_t)
        z_t, d_t = zd[:, 0], zd[:, 1]
        beta = float((w * d_t) @ z_t / ((w * d_t) @ d_t))
        eta = off + (z - (z_t - beta * d_t))
        mu = np.exp(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = 2 * np.sum(np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))
        if abs(dev - dev_old) / (0.1 + abs(dev)) < tol:
            break
        dev_old = dev
    d_t = _weighted_demean(d[:, None].astype(float), mu, unit, time, n_u, n_t)[:, 0]
    return beta, mu, d_t, mu, it


def fit_poisson_fe_balanced(
    y: np.ndarray, d: np.ndarray, offset: np.ndarray | None = None, *, tol: float = 1e-10, max_iter: int = 500
) -> np.ndarray:
    """Poisson two-way FE coefficients for many treatment indicators at once.

    ``y`` and ``offset`` are ``(units, periods)``; ``d`` is ``(assignments, units,
    periods)``. Unit and period effects have closed forms given the rest, so each
    iteration updates them exactly and takes a Newton step on ``beta`` (profiled
    information), for every assignment in one array operation. 0/1 indicators only.
    """
    off = np.zeros_like(y, dtype=float) if offset is None else offset
    a = d.shape[0]
    beta = np.zeros(a)
    alpha = np.log(y.sum(axis=1) / np.exp(off).sum(axis=1))[None, :, None]
    row, col = y.sum(axis=1)[None, :, None], y.sum(axis=0)[None, None, :]
    # mu is kept up to date multiplicatively: each update changes one set of effects.
    mu = np.exp(alpha + off[None]) * np.ones_like(d)
    for _ in range(max_iter):
        mu *= col / mu.sum(axis=1, keepdims=True)
        mu *= row / mu.sum(axis=2, keepdims=True)
        score = (d * (y[None] - mu)).sum(axis=(1, 2))
        # Information for beta with the unit effects profiled out (the period effects' share is
        # small and absorbed by the next sweep): sum mu d^2 - sum_i (sum_t mu d)^2 / sum_t mu.
        md = (mu * d).sum(axis=2)
        info = md.sum(axis=1) - (md**2 / mu.sum(axis=2)).sum(axis=1)  # d is 0/1, so d^2 = d
        step = score / np.maximum(info, 1e-300)
        beta = beta + step
        mu *= 1 + d * np.expm1(step)[:, None, None]
        if np.max(np.abs(step)) < tol:
            break
    return beta


def poisson_fe_assignments(
    unit_total: np.ndarray,
    period_total: np.ndarray,
    unit_post_total: np.ndarray,
    assign: np.ndarray,
    post: np.ndarray,
    exposure: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 2000,
) -> np.ndarray:
    """Poisson two-way FE coefficient of ``treated x post`` for every assignment and data set at once.

    Parameters
    ----------
    unit_total, unit_post_total : (G, n) arrays
        Each unit's total count, and its total over post periods, in each of ``G`` data sets
        (e.g. the data under several null values of the effect).
    period_total : (G, T) array
        Each period's total count.
    assign : (A, n) bool array
        Treated units of each assignment.
    post : (T,) bool array
        Post periods.
    exposure : (n, T) array
        Exposure of each cell (``exp(offset)``; ones without an offset, 0 for a missing cell).

    Returns
    -------
    (G, A) array of coefficients.

    Notes
    -----
    The model ``E[y_it] = u_i v_t e_it r^(a_i b_t)`` has first-order conditions in these totals
    only, so nothing of size ``G x A x n x T`` is formed. Each iteration updates the period
    effects and the unit effects exactly given the rest (two matrix products each) and takes a
    Newton step on ``log r`` with the assigned units' effects profiled out, as
    :func:`fit_poisson_fe_balanced` does cell by cell. Missing cells have zero exposure.
    """
    g_, a_ = unit_total.shape[0], assign.shape[0]
    a = assign.astype(float)[None]  # (1, A, n)
    e = np.asarray(exposure, float)
    n_units = e.shape[0]
    e_split = np.concatenate([(e * ~post).T, (e * post).T], axis=1)  # (T, 2n): pre and post exposures
    big_r = unit_total[:, None, :]  # (G, 1, n)
    big_c = period_total[:, None, :]
    held_post = unit_post_total @ a[0].T  # (G, A): post-period total of each assignment's units
    # Start from the model without treatment (shared by every assignment): a few exact sweeps.
    u = np.broadcast_to(big_r / np.maximum(e.sum(axis=1), 1e-300), (g_, a_, e.shape[0])).copy()
    r = np.ones((g_, a_))
    v = np.ones((g_, a_, e.shape[1]))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_iter):
            # Two matrix products per iteration (fewer, larger products suit a shared BLAS better).
            both = np.concatenate([u, u * a], axis=1).reshape(-1, u.shape[-1]) @ e
            both = both.reshape(g_, 2 * a_, -1)
            den_v = both[:, :a_] + (r[..., None] - 1) * both[:, a_:] * post
            v_new = np.where(den_v > 0, big_c / den_v, 0.0)
            change = float(np.nanmax(np.abs(v_new - v) / np.maximum(v_new, 1e-300)))
            v = v_new
            v_both = (v.reshape(-1, v.shape[-1]) @ e_split).reshape(g_, a_, -1)
            v_pre, v_post = v_both[..., :n_units], v_both[..., n_units:]
            den_u = v_pre + v_post * (1 + a * (r[..., None] - 1))
            u = np.where(den_u > 0, big_r / den_u, 0.0)
            md = r[..., None] * u * v_post * a  # fitted post-period counts of the assigned units
            fitted = u * den_u  # each unit's fitted total (its observed total after the update)
            score = held_post - md.sum(axis=2)
            info = md.sum(axis=2) - np.where(fitted > 0, md**2 / fitted, 0.0).sum(axis=2)
            step = np.where(info > 0, score / info, 0.0)
            r = r * np.exp(step)
            worst = max(float(np.max(np.abs(step))), change)
            if worst < tol or not np.isfinite(worst):
                break
        return np.log(r)  # an assignment whose post-period counts are all 0 gets -inf
