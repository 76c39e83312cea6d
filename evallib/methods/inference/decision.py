"""The one rule for "clear": when a p-value rejects "no effect", the same everywhere.

A test rejects the null at level ``alpha`` when ``p <= alpha``. For a rank (placebo) test whose p-value is a
share ``k / n`` of ``n`` assignments this is the exact-size rule: under the null the chance of ``p <= alpha`` is
``floor(alpha n) / n``, never above ``alpha``. Every interval in :mod:`evallib.methods.inference.inversion` is the
inversion of this rule, ``{tau: not rejects(p(tau))}``, so an interval holds the null value exactly when its
p-value does not reject. The conclusions, the verdict, the words, the calibration study's size and the Monte Carlo
suite all call :func:`rejects` (or :func:`rejection_rate`), never a comparison of their own.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np

__all__ = [
    "ALPHA",
    "at_edge",
    "fewest_to_accept",
    "holds_null",
    "most_others_to_reject",
    "null_value",
    "rank_critical_value",
    "rejection_rate",
    "rejects",
]

#: The level of every test a report reads: 5%, two-sided.
ALPHA = 0.05


@overload
def rejects(p: float, alpha: float = ALPHA) -> bool: ...
@overload
def rejects(p: np.ndarray, alpha: float = ALPHA) -> np.ndarray: ...
def rejects(p: float | np.ndarray, alpha: float = ALPHA) -> bool | np.ndarray:
    """Whether a p-value rejects "no effect" at ``alpha``: ``p <= alpha`` (False for a missing, NaN, p-value).

    Works elementwise on an array of p-values (a boolean array back).
    """
    if isinstance(p, np.ndarray):
        return np.asarray(p, float) <= alpha  # NaN compares False: no p-value, no rejection
    return bool(p is not None and math.isfinite(p) and p <= alpha)


def rejection_rate(p_values: np.ndarray | list[float], alpha: float = ALPHA) -> float:
    """Share of p-values that reject at ``alpha`` (the size under a true null, the power under an effect)."""
    p = np.asarray(p_values, float)
    return float(np.mean(rejects(p, alpha))) if p.size else float("nan")


def fewest_to_accept(n_total: int, alpha: float = ALPHA) -> int:
    """The fewest assignments at least as extreme, of ``n_total``, whose share ``k / n_total`` does not reject.

    A rank test's interval keeps a null value exactly when at least this many assignments (the real one included)
    reach the observed statistic; ``n_total + 1`` when even all of them would reject.
    """
    return next((k for k in range(1, n_total + 1) if not rejects(k / n_total, alpha)), n_total + 1)


def most_others_to_reject(n_total: int, alpha: float = ALPHA) -> int:
    """The most other assignments, of ``n_total`` (the real one included), that may be at least as extreme as the
    real one for its p-value ``(1 + c) / n_total`` still to reject; ``-1`` when none may (the test cannot reject).
    """
    return fewest_to_accept(n_total, alpha) - 2


def rank_critical_value(magnitudes: np.ndarray, n_total: int | None = None, alpha: float = ALPHA) -> float | np.ndarray:
    """The rank test's exact critical value: a statistic rejects "no effect" (:func:`rejects`, ``p <= alpha``)
    exactly when its magnitude is strictly above it.

    Parameters
    ----------
    magnitudes : array (others,) or (others, columns)
        The statistic under the other assignments (signs ignored), one test per column.
    n_total : int, optional
        Assignments in the test, the real one included (default: the others plus one).
    alpha : float
        The test's level.

    Returns
    -------
    float or (columns,) array
        The ``(c + 1)``-th largest magnitude, ``c`` = :func:`most_others_to_reject`: with ``p = (1 + #{others at
        least as large}) / n_total``, a magnitude above it has at most ``c`` others as large (rejects), one equal to
        or below it at least ``c + 1`` (does not). ``inf`` when the test can never reject with ``n_total``
        assignments. With 40 assignments that is the second largest of the others; with 154, the seventh.
    """
    a = np.abs(np.asarray(magnitudes, float))
    total = a.shape[0] + 1 if n_total is None else int(n_total)
    c = most_others_to_reject(total, alpha)
    if c < 0:
        out = np.full(a.shape[1:], np.inf)
    elif c >= a.shape[0]:  # fewer others than may be as large: every statistic rejects
        out = np.full(a.shape[1:], -np.inf)
    else:
        out = -np.partition(-a, c, axis=0)[c]
    return float(out) if a.ndim == 1 else out


def at_edge(p: float, n_assignments: int | None, alpha: float = ALPHA) -> bool:
    """Whether a rank test's conclusion would change with one assignment more or fewer as extreme as the real one.

    ``p = k / n`` for ``k`` assignments (the real one included) at least as extreme among ``n``: the conclusion is at
    the edge when ``(k + 1) / n`` would not reject where ``p`` does, or ``(k - 1) / n`` would where ``p`` does not;
    that is ``alpha - 1/n < p <= alpha + 1/n``. False when the test is not a rank test (``n_assignments`` None) or
    there is no p-value.
    """
    if not n_assignments or not (p is not None and math.isfinite(p)):
        return False
    n = int(n_assignments)
    k = round(p * n)
    if rejects(p, alpha):
        return not rejects((k + 1) / n, alpha)
    return k >= 2 and rejects((k - 1) / n, alpha)  # the real assignment always counts: k never falls below 1


def null_value(scale: str) -> float:
    """The value "no effect" takes on a scale: 1 for a ratio, 0 for a difference."""
    return 1.0 if scale == "rate_ratio" else 0.0


def holds_null(ci_low: float | None, ci_high: float | None, scale: str) -> bool:
    """Whether an interval holds "no effect"; a missing (None or NaN) end is unbounded."""
    lo = -math.inf if ci_low is None or math.isnan(ci_low) else ci_low
    hi = math.inf if ci_high is None or math.isnan(ci_high) else ci_high
    return lo <= null_value(scale) <= hi
