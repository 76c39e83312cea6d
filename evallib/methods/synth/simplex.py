"""Batched exact solvers for ridge-penalised least squares on the probability simplex.

Synthetic difference-in-differences needs, for every placebo assignment, unit weights
(hundreds of donors, a strong ridge) and time weights (tens of periods, an
infinitesimal ridge). Solving them one at a time in Python would cost seconds, so both
solvers here work on a stack of problems at once with array operations:

* :func:`simplex_ridge_dual` solves ``min ||A w - b||^2 + eta ||w||^2`` over the simplex
  by semi-smooth Newton on the dual, whose dimension is the number of rows of ``A``
  (pre-periods) however many donors there are. It suits the unit weights.
* :func:`simplex_qp_active_set` solves ``min w'Qw - 2c'w`` over the simplex from the Gram
  matrix by a primal active-set method (Lawson-Hanson style). It suits the time weights,
  whose ridge is too small for the dual to be well conditioned, and whose solutions are
  sparse.

Both stop at the exact optimum (up to rounding): once the support is right, the last
step solves the optimality conditions as a linear system.
"""

from __future__ import annotations

import numpy as np

#: Up to this many donors the unit-weight Newton Hessian is the dense product (as cheap there, and the results of
#: earlier versions bit for bit); past it, from the smaller side of the support (:func:`_support_hessian`).
DENSE_HESSIAN_DONORS = 512


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``v`` onto the probability simplex.

    Entries equal to ``-inf`` stay at zero (used to exclude donors).
    """
    u = -np.sort(-v, axis=1)
    finite = np.isfinite(u)
    css = np.cumsum(np.where(finite, u, 0.0), axis=1) - 1.0
    k = np.arange(1, v.shape[1] + 1)
    cond = finite & (u - css / k > 0)
    rho = v.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)  # last index where cond holds
    theta = css[np.arange(len(v)), rho] / (rho + 1)
    return np.maximum(v - theta[:, None], 0.0)


def simplex_ridge_dual(
    A: np.ndarray,
    B: np.ndarray,
    eta: np.ndarray,
    allowed: np.ndarray,
    *,
    tol: float = 1e-11,
    max_iter: int = 100,
    scale: float | None = None,
) -> np.ndarray:
    """Solve ``min_w ||A w - b_a||^2 + eta_a ||w||^2`` over the simplex, for many ``a`` at once.

    Parameters
    ----------
    A : (m, n) array
        Shared design (columns are candidate donors).
    B : (n_problems, m) array
        One target per problem.
    eta : (n_problems,) array
        Ridge penalty per problem (positive).
    allowed : (n_problems, n) bool array
        Donors each problem may use (the others get weight zero).
    scale : float, optional
        Size of the data the stopping rule ``|gradient| <= tol scale`` is relative to (default
        ``1 + max |B| + max |A|``); pass it when a stack is solved in parts so that each part stops alike.

    Returns
    -------
    (n_problems, n) array of weights.

    Notes
    -----
    With ``y`` the dual variable of the residual ``r = A w - b``, the optimal weights are
    ``w(y) = P(-A'y / eta)`` (``P`` the projection onto the simplex) and the dual
    ``D(y) = -|y|^2/2 - b'y + eta/2 (|w|^2 - 2 w'v)`` is concave with a piecewise-linear
    gradient ``A w(y) - b - y``. Newton steps use its generalised Hessian
    ``-(I + A P_S A' / eta)``, ``P_S`` the projection onto the sum-zero directions of the
    current support, with backtracking; at the right support one step is exact.
    """
    m = A.shape[0]
    n_p = B.shape[0]
    eta = np.asarray(eta, float).reshape(n_p)
    scale = 1.0 + np.abs(B).max() + np.abs(A).max() if scale is None else scale
    w = np.where(allowed, 1.0, 0.0)
    w /= w.sum(axis=1, keepdims=True)
    y = w @ A.T - B  # the residual of equal weights: a good start

    def weights(y: np.ndarray, allowed: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = -(y @ A) / eta[:, None]
        return project_simplex(np.where(allowed, v, -np.inf)), np.where(allowed, v, 0.0)

    def dual(y: np.ndarray, B: np.ndarray, eta: np.ndarray, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        return -0.5 * (y * y).sum(1) - (B * y).sum(1) + 0.5 * eta * ((w * w).sum(1) - 2 * (w * v).sum(1))

    w, v = weights(y, allowed, eta)
    val = dual(y, B, eta, w, v)
    eye = np.eye(m)
    gram = A @ A.T if A.shape[1] > DENSE_HESSIAN_DONORS else None
    for _ in range(max_iter):
        grad = w @ A.T - B - y
        idx = np.flatnonzero(np.abs(grad).max(axis=1) > tol * scale)  # only those not yet optimal
        if idx.size == 0:
            break
        g, yi, bi, ei, al = grad[idx], y[idx], B[idx], eta[idx], allowed[idx]
        s = w[idx] > 0
        if gram is None:
            a_s = A[None, :, :] * s[:, None, :]
            u = a_s.sum(axis=2)
            h = a_s @ A.T - u[:, :, None] * u[:, None, :] / s.sum(1)[:, None, None]
        else:
            h = _support_hessian(A, s, gram)
        step = np.linalg.solve(eye + h / ei[:, None, None], g[:, :, None])[:, :, 0]
        slope = (g * step).sum(1)
        t = np.ones(len(idx))
        for _ in range(40):  # backtracking (Armijo) on the concave dual
            y_new = yi + t[:, None] * step
            w_new, v_new = weights(y_new, al, ei)
            val_new = dual(y_new, bi, ei, w_new, v_new)
            ok = val_new >= val[idx] + 1e-4 * t * slope - 1e-14 * np.abs(val[idx])
            if ok.all():
                break
            t = np.where(ok, t, t / 2)
        y[idx], w[idx], val[idx] = y_new, w_new, val_new
    return w


def _support_hessian(A: np.ndarray, s: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """``A P_S A'`` for each row of ``s`` (bool supports), ``P_S`` the centring projection on the support.

    From the support's own columns when it is at most half the donors, otherwise as ``A A'`` less the columns
    off the support: either way the work is ``rows x m^2 x min(|S|, n - |S|)``, not ``rows x m^2 x n``, and the
    work array ``rows x min(|S|, n - |S|) x m``.
    """
    n = A.shape[1]
    size = s.sum(axis=1)
    on = int(size.max()) <= n - int(size.min())
    pick = s if on else ~s
    width = int(pick.sum(axis=1).max())
    cols = np.argsort(~pick, axis=1, kind="stable")[:, :width]  # the picked donors first
    a_p = A.T[cols] * np.take_along_axis(pick, cols, axis=1)[:, :, None]  # rows x width x m
    prod = a_p.transpose(0, 2, 1) @ a_p
    u = a_p.sum(axis=1)
    if not on:
        prod = gram - prod
        u = A.sum(axis=1) - u
    return prod - u[:, :, None] * u[:, None, :] / size[:, None, None]


def simplex_qp_active_set(
    Q: np.ndarray, c: np.ndarray, *, start: np.ndarray | None = None, max_iter: int | None = None
) -> np.ndarray:
    """Solve ``min_w w'Q_a w - 2 c_a'w`` over the simplex for a stack of problems.

    ``Q`` is ``(n_problems, d, d)`` positive (semi)definite, ``c`` is ``(n_problems, d)``;
    ``start`` (bool, ``d``) is a support to start from (e.g. that of a similar problem).

    Notes
    -----
    Lawson-Hanson style: start from the best vertex (or equal weights on ``start``); solve
    the problem restricted to the
    current support with the sum constraint (a bordered linear system); if some weight
    would turn negative, step back to the boundary and drop it; otherwise add the
    coordinate whose gradient most undercuts the support's common gradient, until none
    does (the KKT conditions of the simplex).
    """
    n_p, d, _ = Q.shape
    max_iter = max_iter or 6 * d + 20
    diag = np.einsum("aii->ai", Q)
    scale = 1.0 + np.abs(diag).max(axis=1)
    tol = 1e-12 * scale
    if start is not None and start.any():
        w = np.tile(start / start.sum(), (n_p, 1)).astype(float)  # feasible: equal weights on the support
    else:
        w = np.zeros((n_p, d))
        w[np.arange(n_p), np.argmin(diag - 2 * c, axis=1)] = 1.0  # the best vertex
    support = w > 0
    done = np.zeros(n_p, bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(~done)  # only problems still moving are solved again
        if idx.size == 0:
            break
        q, sup, wi, ci = Q[idx], support[idx], w[idx], c[idx]
        # Equality-constrained solve on the support, [Q_SS 1; 1' 0] [z; mu] = [c_S; 1], on the
        # support's coordinates only (padded to the largest support with identity rows).
        n_a, r = len(idx), np.arange(len(idx))
        size = sup.sum(axis=1)
        s_max = int(size.max())
        pos = np.argsort(~sup, axis=1, kind="stable")[:, :s_max]  # support coordinates first
        valid = np.arange(s_max)[None, :] < size[:, None]
        both = valid[:, :, None] & valid[:, None, :]
        kkt = np.zeros((n_a, s_max + 1, s_max + 1))
        kkt[:, :s_max, :s_max] = np.where(both, q[r[:, None, None], pos[:, :, None], pos[:, None, :]], 0.0)
        kkt[:, :s_max, :s_max] += np.eye(s_max) * ~valid[:, None, :]
        kkt[:, :s_max, s_max] = valid
        kkt[:, s_max, :s_max] = valid
        rhs = np.concatenate([np.where(valid, ci[r[:, None], pos], 0.0), np.ones((n_a, 1))], axis=1)
        sol = np.linalg.solve(kkt, rhs[:, :, None])[:, :s_max, 0]
        z = np.zeros_like(wi)
        z[r[:, None], pos] = np.where(valid, sol, 0.0)
        feasible = np.asarray((np.where(sup, z, 1.0) > 0).all(axis=1))
        # Infeasible: move towards z until the first weight hits zero, and drop it.
        shrink = np.where(sup & (z <= 0), wi / np.maximum(wi - z, 1e-300), np.inf)
        alpha = np.clip(shrink.min(axis=1), 0.0, 1.0)
        w_back = wi + alpha[:, None] * (z - wi)
        drop = sup & (w_back <= 1e-14) & ~feasible[:, None]
        wi = np.where(feasible[:, None], z, np.where(drop, 0.0, w_back))
        sup = sup & ~drop
        # Feasible: check optimality and add the coordinate that most undercuts the support.
        grad = np.einsum("aij,aj->ai", q, wi) - ci
        common = (grad * sup).sum(1) / sup.sum(1)
        viol = np.where(sup, np.inf, grad - common[:, None])
        j = np.argmin(viol, axis=1)
        add = feasible & (viol[r, j] < -tol[idx])
        sup[r[add], j[add]] = True
        w[idx], support[idx] = wi, sup
        done[idx[feasible & ~add]] = True
    return w / w.sum(axis=1, keepdims=True)


#: :func:`screened_simplex_nnls` solves on a working set of columns past this many (below it, on all at once).
SCREEN_COLUMNS = 512


def screened_simplex_nnls(
    A: np.ndarray, b: np.ndarray, lam: float, maxiter: int, *, start_size: int | None = None
) -> np.ndarray:
    """``argmin ||A x - b||^2 + (lam (sum(x) - 1))^2`` over ``x >= 0`` (SciPy's NNLS on ``A`` with a row of ``lam``).

    Up to :data:`SCREEN_COLUMNS` columns, SciPy's ``nnls`` on all of them. Past it (a synthetic control with
    many donors: at most about one nonzero weight per pre-period), NNLS on a working set, the ``start_size``
    (default ``4 (rows + 1)``) columns whose gradient at the equal-weight point is most negative, then the
    optimality conditions checked on every column: a column left out must have a gradient
    ``A_j'(A x - b) + lam^2 (sum(x) - 1)`` at least 0. The last term is the same for every column and equals
    minus the rest of the gradient on the working set's support (the weights there are optimal), so it is taken
    from there rather than from ``sum(x) - 1``, which cancels. Violators (the ``rows + 1`` worst at a time) join
    the set and it is solved again. The problem is convex, so once none violates them the working set's solution
    is the whole problem's optimum: NNLS on every column up to rounding, for a few products with ``A`` (linear in
    the columns) rather than NNLS's passes over all of them.
    """
    from scipy.optimize import nnls

    m, n = A.shape
    A_aug = np.vstack([A, np.full((1, n), lam)])
    b_aug = np.append(b, lam)
    if n <= SCREEN_COLUMNS:
        return nnls(A_aug, b_aug, maxiter=maxiter)[0]
    start = A.T @ (A.mean(axis=1) - b)
    size = min(n, start_size or 4 * (m + 1))
    work = np.sort(np.argpartition(start, size - 1)[:size])
    x = np.zeros(n)
    while True:
        x[:] = 0.0
        x[work] = nnls(A_aug[:, work], b_aug, maxiter=maxiter)[0]
        grad = A.T @ (A[:, work] @ x[work] - b)
        support = work[x[work] > 0]
        level = float(np.median(grad[support])) if len(support) else 0.0
        tol = 1e-9 * (1.0 + float(np.abs(grad).max()))
        reduced = grad - level
        reduced[work] = np.inf  # the working set's own conditions are NNLS's
        bad = np.flatnonzero(reduced < -tol)
        if len(bad) == 0 or len(work) == n:
            return x
        work = np.union1d(work, bad[np.argsort(reduced[bad], kind="stable")[: m + 1]])
