"""Synthetic DiD fits for many treatment assignments at once, in memory linear in units and pre-periods.

:func:`sdid_batch` refits the whole estimator (noise level, unit weights, time weights) under each
assignment, a batch of problems at a time (:mod:`evallib.methods.synth.simplex`). Nothing of size
units x pre-periods^2 or assignments x units is held: each time-weight Gram matrix is the all-unit one less
the few units the assignment leaves out, a batch's size follows a byte budget (:data:`WORK_BYTES`), and only
one assignment's unit weights are returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evallib.methods.synth.simplex import DENSE_HESSIAN_DONORS, simplex_qp_active_set, simplex_ridge_dual

#: Most problems solved together in one batch of array operations.
CHUNK = 128
#: Bytes of work arrays one batch may take (about): the batch is cut to fit, so that peak memory is this constant
#: plus arrays linear in units and in pre-periods (one problem needs about 8 (T0 (N + 8 T0) + 12 N) bytes).
WORK_BYTES = 48 * 2**20


def _problem_bytes(n_units: int, t0: int) -> int:
    # A unit-weight Newton step holds a pre-periods x units copy of each problem's support (T0 N); the time-weight
    # problem its T0 x T0 Gram matrix, a bordered system and a few copies (about 8 T0^2).
    return 8 * (t0 * (n_units + 8 * t0) + 12 * n_units)


def as_before(n_units: int, t0: int) -> bool:
    """Whether the panel is small enough to be fitted exactly as before issue 22 (the same results bit for bit).

    That is: every unit's ``T0 x T0`` outer product held at once, and batches of :data:`CHUNK` problems, while the
    outer products fit in :data:`WORK_BYTES` and such a batch in 4 times it, on at most 512 units (past that the
    unit weights' Newton steps differ in rounding anyway): every panel of up to 512 units and 110 pre-periods,
    up to 102 units at 150 pre-periods.
    """
    small = n_units <= DENSE_HESSIAN_DONORS  # past it the unit weights' Newton steps differ in rounding anyway
    return small and n_units * t0 * t0 * 8 <= WORK_BYTES and CHUNK * _problem_bytes(n_units, t0) <= 4 * WORK_BYTES


def batch_rows(n_units: int, t0: int) -> int:
    """Problems per batch: :data:`CHUNK` on panels fitted :func:`as_before`; otherwise the most that keep the work
    arrays within :data:`WORK_BYTES`, rounded down to a power of two (at least one).
    """
    if as_before(n_units, t0):
        return CHUNK
    fit = max(1, min(CHUNK, WORK_BYTES // _problem_bytes(n_units, t0)))
    return 1 << (fit.bit_length() - 1)  # a power of two, so that batches never straddle a block of CHUNK


@dataclass(frozen=True)
class _Batch:
    estimates: np.ndarray  # one per assignment
    coefficients: np.ndarray  # d estimate / d tau when the real treated units' post-period shifts by tau
    omega: np.ndarray  # unit weights of the assignment ``keep`` (units; zero for units it treats or leaves out)
    lam: np.ndarray  # assignments x pre-periods


def sdid_batch(
    Y: np.ndarray,
    post: np.ndarray,
    assign: np.ndarray,
    real: np.ndarray,
    comparison: np.ndarray | None = None,
    *,
    keep: int = 0,
) -> _Batch:
    """SDID estimate for each row of ``assign`` (bool, assignments x units) on a units x periods matrix.

    ``real`` marks the units really treated; the coefficient of each assignment is how its
    estimate moves when their post-period outcomes move by one. ``comparison`` (bool, like
    ``assign``) names each assignment's comparison units (default: every unit it does not
    treat); a unit in neither is left out of that fit, as if it were not in the panel.
    Only row ``keep``'s unit weights are returned (no assignments x units weight matrix is kept).
    """

    def comp(lo: int, hi: int) -> np.ndarray:
        return ~assign[lo:hi] if comparison is None else comparison[lo:hi]

    return sdid_rows(Y, post, len(assign), lambda lo, hi: assign[lo:hi], comp, real, keep=keep)


def sdid_rows(
    Y: np.ndarray,
    post: np.ndarray,
    n_rows: int,
    assign_rows: Callable[[int, int], np.ndarray],
    comparison_rows: Callable[[int, int], np.ndarray],
    real: np.ndarray,
    *,
    keep: int = 0,
) -> _Batch:
    """:func:`sdid_batch` on assignments made a batch at a time (``assign_rows(lo, hi)``), so none is held whole.

    Memory: the panel, a few units x pre-periods arrays and one pre-periods x pre-periods Gram matrix, then one
    batch's work arrays (:func:`batch_rows`: at most about :data:`WORK_BYTES`, or 4 times it on a panel fitted
    :func:`as_before`): linear in units and in pre-periods. The results do not depend on the batch size, nor on
    which way the Gram matrices are formed, beyond rounding.
    """
    Ypre, ybar_post = Y[:, ~post], Y[:, post].mean(axis=1)
    n_units, t0 = Ypre.shape
    t1 = int(post.sum())
    diffs = np.diff(Ypre, axis=1)
    s1, s2 = diffs.sum(axis=1), (diffs**2).sum(axis=1)
    del diffs
    a_cols = (Ypre - Ypre.mean(axis=1, keepdims=True)).T  # each unit's pre-path about its mean (intercept)
    # Time-weight Gram matrices are centred over each assignment's comparison units; taking the
    # all-unit means out first (which that centring removes anyway) avoids cancellation. The Gram
    # matrix of all units is formed once; each problem's is it less the few units the problem leaves out.
    xc, bc = Ypre - Ypre.mean(axis=0), ybar_post - ybar_post.mean()
    gram, cross = xc.T @ xc, xc * bc[:, None]
    # On a small panel (as_before) Gram matrices are sums of every unit's outer product, as before issue 22 (the
    # same results bit for bit); past it, the downdate below (equal to rounding), never held for every unit.
    outer = (xc[:, :, None] * xc[:, None, :]).reshape(n_units, t0 * t0) if as_before(n_units, t0) else None

    def time_problems(comp: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Pre-periods matched to the post-period mean across comparison units, with an
        # intercept (centred over units) and ridge zeta_lambda = 1e-6 sigma (scaled by N_co).
        compf = comp.astype(float)
        n_c = compf.sum(axis=1)
        xbar = compf @ xc / n_c[:, None]
        bbar = compf @ bc / n_c
        out = ~comp
        m = int(out.sum(axis=1).max())
        if outer is not None:
            Q = (compf @ outer).reshape(-1, t0, t0)
        elif m <= n_units - m:  # downdate: all units' Gram matrix less the outer products of the units left out
            first = np.argsort(comp, axis=1, kind="stable")[:, :m]  # the units left out first
            e = xc[first] * np.take_along_axis(out, first, axis=1)[:, :, None]
            Q = gram - e.transpose(0, 2, 1) @ e
        else:  # most units left out: the comparison units' own Gram matrix, one problem at a time
            Q = np.stack([xc[c].T @ xc[c] for c in comp])
        Q -= n_c[:, None, None] * xbar[:, :, None] * xbar[:, None, :]
        Q += (n_c * (1e-6 * sigma) ** 2)[:, None, None] * np.eye(t0)
        return Q, compf @ cross - n_c[:, None] * xbar * bbar[:, None]

    def noise(comp: np.ndarray) -> np.ndarray:
        # SD of the comparison units' first differences in the pre-period.
        compf = comp.astype(float)
        n_d = compf.sum(axis=1) * (t0 - 1)
        mean_d = compf @ s1 / n_d
        var = np.maximum((compf @ s2 - n_d * mean_d**2) / (n_d - 1), 0.0)
        return np.maximum(np.sqrt(var), 1e-10 * (1.0 + np.abs(Ypre).max()))  # flat series: keep the ridge positive

    # The real assignment's time-weight support starts every placebo's search: they differ little.
    comp_real = ~np.asarray(real, bool)[None, :]
    start = simplex_qp_active_set(*time_problems(comp_real, noise(comp_real)))[0] > 0
    step = batch_rows(n_units, t0)
    # The unit-weight solver's stopping scale over each block of CHUNK assignments (as when a batch was always
    # such a block), so that the batch size changes nothing.
    block_max = np.zeros((n_rows + CHUNK - 1) // CHUNK)
    for lo in range(0, n_rows, step):
        af = assign_rows(lo, min(lo + step, n_rows)).astype(float)
        b = lo // CHUNK
        block_max[b] = max(block_max[b], float(np.abs(af @ a_cols.T).max() / af[0].sum()))
    a_max = float(np.abs(a_cols).max())
    est, coef, lams = [], [], []
    omega_keep = np.zeros(n_units)
    for lo in range(0, n_rows, step):
        hi = min(lo + step, n_rows)
        a, allowed = assign_rows(lo, hi), comparison_rows(lo, hi)
        af = a.astype(float)
        k = int(a[0].sum())
        sigma = noise(allowed)
        # Unit weights: the comparison units' pre-paths matched to the treated mean path,
        # with ridge zeta_omega^2 = sqrt(k T1) sigma^2 (the objective is scaled by T0).
        target = (af @ a_cols.T) / k
        omega = simplex_ridge_dual(
            a_cols, target, t0 * np.sqrt(k * t1) * sigma**2, allowed, scale=1.0 + block_max[lo // CHUNK] + a_max
        )
        lam = simplex_qp_active_set(*time_problems(allowed, sigma), start=start)
        treated_part = (af @ ybar_post - ((af @ Ypre) * lam).sum(axis=1)) / k
        control_part = omega @ ybar_post - ((omega @ Ypre) * lam).sum(axis=1)
        est.append(treated_part - control_part)
        coef.append((a & real).sum(axis=1) / k - omega[:, real].sum(axis=1))
        lams.append(lam)
        if lo <= keep < hi:
            omega_keep = omega[keep - lo].copy()
    return _Batch(np.concatenate(est), np.concatenate(coef), omega_keep, np.vstack(lams))
