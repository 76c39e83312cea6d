"""Placebo tests at fake start dates, all at once: what a design would detect, read off the data before its start.

A design step has only the data before the planned start. Every window of that history with ``pre`` periods
followed by ``post`` periods is a fake design in which no effect can exist; in each, every placebo assignment
of the treatment gives an estimate. Together they show the noise the placebo test will meet (placebo in
space) and how units drift apart over the follow-up (placebo in time). For the difference-in-differences both
are closed forms over cumulative sums, so every fake start and every assignment costs one matrix product.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from evallib.errors import DataError
from evallib.methods.inference.decision import most_others_to_reject, rank_critical_value
from evallib.methods.inference.permutation import set_estimates
from evallib.methods.inference.volatility import SWING_BLOCK, SWING_MIN_BLOCKS, pre_period_swing

__all__ = [
    "FakeStartTests",
    "critical_values",
    "detectable_effect",
    "fake_start_power",
    "rolling_changes",
    "rolling_noise",
    "rolling_swing",
    "spread_at",
    "spread_model",
    "studentized_coefficient",
    "studentized_placebos",
]

Direction = Literal["decrease", "increase", "either"]


def _cumsum0(y: np.ndarray) -> np.ndarray:
    out = np.zeros((y.shape[0], y.shape[1] + 1))
    np.cumsum(y, axis=1, out=out[:, 1:])
    return out


def rolling_changes(values: np.ndarray, pre: int, post: int) -> np.ndarray:
    """Each unit's mean over ``post`` periods minus its mean over the ``pre`` periods before, at every fake start.

    Parameters
    ----------
    values : (units, periods) array
        The outcome on the analysis scale (e.g. logs), periods in order, no gaps.
    pre, post : int
        Periods before and from each fake start.

    Returns
    -------
    (units, starts) array
        Column ``j`` is the fake start at period ``pre + j`` (the first of its ``post`` periods); there are
        ``periods - pre - post + 1`` of them (none when the history is too short).
    """
    y = np.asarray(values, float)
    n_starts = y.shape[1] - pre - post + 1
    if pre < 1 or post < 1 or n_starts < 1:
        return np.empty((y.shape[0], 0))
    c = _cumsum0(y)
    s = np.arange(pre, pre + n_starts)
    return (c[:, s + post] - c[:, s]) / post - (c[:, s] - c[:, s - pre]) / pre


def rolling_noise(values: np.ndarray, pre: int, n_starts: int) -> np.ndarray:
    """Each unit's pre-period noise in the ``pre`` periods before each of the first ``n_starts`` fake starts.

    The measure of :func:`evallib.methods.inference.volatility.pre_period_noise` (the SD of the unit's
    month-to-month changes after removing each period's mean across units), for every window at once.

    Returns
    -------
    (units, n_starts) array
    """
    y = np.asarray(values, float)
    steps = np.diff(y - y.mean(axis=0), axis=1)  # step t: period t to t + 1
    c1, c2 = _cumsum0(steps), _cumsum0(steps**2)
    m = pre - 1
    if m < 2:
        raise DataError("fake starts: the studentized test needs at least 3 pre-period observations")
    lo = np.arange(n_starts)  # the window of start pre + j covers steps j .. j + pre - 2
    s1 = c1[:, lo + m] - c1[:, lo]
    s2 = c2[:, lo + m] - c2[:, lo]
    var = np.maximum(s2 - s1**2 / m, 0.0) / (m - 1)
    return np.sqrt(var)


def rolling_swing(values: np.ndarray, pre: int, n_starts: int) -> np.ndarray:
    """Each unit's pre-period swing in the ``pre`` periods before each of the first ``n_starts`` fake starts.

    The scale of the studentized placebo test
    (:func:`evallib.methods.inference.volatility.pre_period_swing`: the SD of the unit's half-yearly means after
    removing each period's mean across units, blocks shorter in a short pre-period), window by window: each fake
    start's statistic is scaled by its own pre-period, as the real start's is, never by data after it.

    Returns
    -------
    (units, n_starts) array
    """
    y = np.asarray(values, float)
    if pre < 3:
        raise DataError("fake starts: the studentized test needs at least 3 pre-period observations")
    # pre_period_swing on each window, all at once: a period's mean across units is the same in every window
    # holding it, so each window's block means are read off one array of every block's mean.
    dev = y - y.mean(axis=0)
    block = max(1, min(SWING_BLOCK, pre // SWING_MIN_BLOCKS))
    n_blocks = pre // block
    block_means = np.lib.stride_tricks.sliding_window_view(dev, block, axis=1).mean(axis=2)
    first = np.arange(n_starts)[:, None] + (pre - n_blocks * block) + block * np.arange(n_blocks)[None, :]
    scale = block_means[:, first].std(axis=2, ddof=1)  # units x starts
    finite = np.isfinite(scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a window with no finite swing: refused below
        typical = np.where(finite.any(axis=0), np.nanmedian(scale, axis=0), 0.0)
    if not (finite & (scale > 1e-9 * typical)).all():  # pre_period_swing's refusal, naming the window's units
        return np.column_stack([pre_period_swing(y[:, t : t + pre], np.zeros(pre, bool)) for t in range(n_starts)])
    return scale


def studentized_placebos(changes: np.ndarray, scales: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """The studentized placebo statistic of every assignment at every fake start (assignments x starts).

    Each unit's deviation from the all-unit mean change, divided by its own noise, then treated minus the rest
    (as :func:`evallib.methods.inference.permutation.permutation_test` ranks it). ``sets`` are the assignments as
    index arrays of their treated units (:func:`~evallib.methods.inference.permutation.placebo_sets`), so the cost
    is linear in the units.
    """
    z = (changes - changes.mean(axis=0)) / np.maximum(scales, 1e-12)
    return set_estimates(z, sets)


def studentized_coefficient(scales: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
    """How the real assignment's studentized statistic moves per unit of effect, at every fake start (starts,)."""
    t = np.asarray(is_treated, bool)
    n, k = len(t), int(t.sum())
    w = 1.0 / np.maximum(scales, 1e-12)
    delta = t.astype(float) - k / n
    wd = w * delta[:, None]
    return wd[t].sum(axis=0) / k - wd[~t].sum(axis=0) / (n - k)


def _c_max(m: int, alpha: float) -> int:
    """How many other assignments may be at least as large for ``p = (1 + c) / m`` to reject (``p <= alpha``,
    :func:`evallib.methods.inference.decision.most_others_to_reject`); negative when none may.
    """
    return most_others_to_reject(m, alpha)


def critical_values(placebos: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """The rank test's critical value at each fake start (starts,): the statistic is rejected when its magnitude
    exceeds it; ``inf`` when the test can never reject with this many assignments.

    With ``m`` assignments the p-value is ``(1 + c) / m``, ``c`` the other assignments at least as large in
    magnitude, and "no effect" is rejected when ``p <= alpha`` (the report's rule,
    :func:`evallib.methods.inference.decision.rejects`, as :func:`evallib.methods.inference.power.placebo_mde`
    reads it): so at most ``floor(alpha m) - 1`` others may be as large, and the critical value is that many
    places from the top of the placebo magnitudes (with 40 units: the second largest; with 154: the seventh):
    :func:`evallib.methods.inference.decision.rank_critical_value`, the one rule both this and
    :func:`evallib.methods.inference.power.placebo_mde` use.
    """
    e = np.abs(np.asarray(placebos, float))
    # Each column's assignments all ranked together (a draw itself above it is handled by ``_thresholds``).
    return np.asarray(rank_critical_value(e, e.shape[0], alpha), float).reshape(e.shape[1])


def _thresholds(e: np.ndarray, alpha: float) -> np.ndarray | None:
    """Each draw's critical value (assignments x starts): a draw is ranked among the other draws, so for a draw
    itself above the critical value it is the next one down; ``None`` when the test can never reject.
    """
    q = critical_values(e, alpha)
    if not np.isfinite(q).all():
        return None
    a = np.abs(e)
    c_max = _c_max(e.shape[0], alpha)
    next_down = -np.partition(-a, c_max + 1, axis=0)[c_max + 1] if c_max + 1 < e.shape[0] else q
    return np.where(a >= q, next_down, q)


class FakeStartTests:
    """The placebo test at every fake start and draw, as the effects at which it rejects: built once (one sort),
    then the power at any effects and the detectable effect cost a binary search each.

    A draw ``e`` with critical value ``q`` (:func:`_thresholds`) and coefficient ``c`` rejects at effect ``tau``
    when ``|e + tau c| > q``: for ``tau`` above one point or below another (``(q - e) / c`` and
    ``(-q - e) / c``, which is which by the sign of ``c``); the power at ``tau`` is the share of draws whose
    points it passes, counted in the two sorted lists. Equal to shifting every draw (:func:`fake_start_power`'s
    definition) except at effects on a boundary to the last bit.
    """

    def __init__(self, placebos: np.ndarray, coefficient: np.ndarray | float = 1.0, alpha: float = 0.05) -> None:
        e = np.asarray(placebos, float)
        if e.ndim != 2 or e.shape[0] < 2 or e.shape[1] < 1:
            raise DataError("fake starts: need at least two placebo assignments and one fake start")
        self.placebos = e
        self.coefficient = coefficient
        self.n = e.size
        threshold = _thresholds(e, alpha)
        self.can_reject = threshold is not None
        if threshold is None:
            return
        c = np.broadcast_to(np.asarray(coefficient, float), (e.shape[1],))[None, :]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            up, down = (threshold - e) / c, (-threshold - e) / c
        pos, zero = c > 0, c == 0
        above = np.where(pos, up, down)  # rejects when tau is above this
        below = np.where(pos, down, up)  # ... or below this
        fixed = np.abs(e) > threshold  # no coefficient: the effect cannot move the draw
        above = np.where(zero, np.where(fixed, -np.inf, np.inf), above)
        below = np.where(zero, -np.inf, below)
        self._above = np.sort(np.where(np.isnan(above), np.inf, above), axis=None)
        self._below = np.sort(np.where(np.isnan(below), -np.inf, below), axis=None)

    def power(self, effects: np.ndarray) -> np.ndarray:
        """The share of draws (over assignments and fake starts) rejected at each of ``effects`` (signed)."""
        t = np.asarray(effects, float)
        if not self.can_reject:
            return np.zeros(t.shape)
        hits = np.searchsorted(self._above, t, "left") + (self.n - np.searchsorted(self._below, t, "right"))
        return hits / self.n

    def detectable(self, power: float = 0.8, direction: Direction = "either") -> float:
        """Smallest effect magnitude detected with probability ``power`` (see :func:`detectable_effect`)."""
        if not self.can_reject:
            return float("inf")
        if direction == "either":
            return max(self._bisect(power, d) for d in (-1.0, 1.0))
        return self._bisect(power, -1.0 if direction == "decrease" else 1.0)

    def _bisect(self, power: float, sign: float) -> float:
        c = float(np.median(np.abs(np.asarray(self.coefficient, float))))
        hi = 100.0 * (float(np.std(self.placebos)) + 1e-12) / max(c, 1e-12)
        if self.power(np.array(sign * hi)) < power:
            return float("inf")
        lo = 0.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if self.power(np.array(sign * mid)) >= power:
                hi = mid
            else:
                lo = mid
        return hi


def fake_start_power(
    placebos: np.ndarray,
    effects: np.ndarray,
    *,
    coefficient: np.ndarray | float = 1.0,
    alpha: float = 0.05,
) -> np.ndarray:
    """Probability that the placebo test rejects "no effect" when the true effect is each of ``effects``.

    Parameters
    ----------
    placebos : (assignments, starts) array
        The statistic under every placebo assignment at every fake start (no effect anywhere).
    effects : array
        True effects on the estimate's scale (signed).
    coefficient : float or (starts,) array
        How the real statistic moves per unit of effect (1 for a difference in means).
    alpha : float
        The test's level.

    Returns
    -------
    array like ``effects``

    Notes
    -----
    At each fake start the test rejects when the real statistic's magnitude exceeds the rank test's critical
    value there (:func:`critical_values`), each draw ranked among the other draws. Under the placebo test's own
    assumption (the real unit's noise is distributed as the placebo units'), the real statistic at a fake
    start is a placebo draw shifted by ``effect x coefficient``; the power is the share of draws that would
    then be rejected, averaged over the fake starts. Averaging over fake starts carries the drift between
    units over the follow-up into the power, which one window's placebo distribution cannot show.
    (:class:`FakeStartTests` computes it for many effects at once.)
    """
    return FakeStartTests(placebos, coefficient, alpha).power(effects)


def detectable_effect(
    placebos: np.ndarray,
    *,
    coefficient: np.ndarray | float = 1.0,
    alpha: float = 0.05,
    power: float = 0.8,
    direction: Direction = "either",
) -> float:
    """Smallest effect magnitude the placebo test detects with probability ``power`` (see :func:`fake_start_power`).

    Found by bisection on the power (which rises with the effect's size); ``inf`` when the test can never
    reject at ``alpha`` with this many assignments, or no effect up to 100 times the placebos' spread is
    detected that often. ``"either"`` gives the larger of the two directions' magnitudes.
    """
    return FakeStartTests(placebos, coefficient, alpha).detectable(power, direction)


#: How units' drift apart grows with the distance ``m`` between the windows' centres: ``m ** DRIFT_POWER``.
#: On the vanguards' CCG pool (24 months of history, 36 of follow-up, observed later) square-root growth
#: predicted the follow-up's spread within 2-7%; linear growth (a random walk) over-predicted it by 40-55%
#: and quadratic growth (each unit's own straight-line trend) by 145-160%: units drift, then partly revert.
DRIFT_POWER = 0.5


def spread_model(values: np.ndarray, *, step: int = 1, least: int = 3) -> np.ndarray:
    """Fit how the spread of units' changes grows with the windows: ``var(pre, post) = a (1/pre + 1/post) + b + c m^g``.

    ``m = (pre + post) / 2`` is the distance between the windows' centres. The variance of each unit's change
    about the all-unit mean is measured at every fake start for every ``pre`` and ``post`` (multiples of
    ``step``, at least ``least``) that fit in the history, and the three non-negative terms fitted by least
    squares: ``a`` month-to-month noise that averages out, ``b`` level shifts that persist, ``c`` drift
    that grows with the distance between the windows (``g`` = :data:`DRIFT_POWER`). Used only to carry the
    placebo distribution from the fake windows that fit in a short history to the protocol's longer ones.

    Returns
    -------
    array ``(a, b, c)``
    """
    from scipy.optimize import nnls

    y = np.asarray(values, float)
    T = y.shape[1]
    rows, target = [], []
    for pre in range(least, T, step):
        for post in range(least, T - pre + 1, step):
            ch = rolling_changes(y, pre, post)
            if ch.shape[1] == 0:
                continue
            var = float(np.mean(np.var(ch, axis=0, ddof=1)))
            m = (pre + post) / 2
            rows.append([1 / pre + 1 / post, 1.0, m**DRIFT_POWER])
            target.append(var)
    if len(rows) < 3:
        raise DataError("fake starts: the history is too short to see how units drift apart")
    coef, _ = nnls(np.asarray(rows), np.asarray(target))
    return np.asarray(coef)


def spread_at(coef: np.ndarray, pre: float, post: float) -> float:
    """The fitted variance of a unit's change (see :func:`spread_model`) for these window lengths."""
    a, b, c = coef
    m = (pre + post) / 2
    return float(a * (1 / pre + 1 / post) + b + c * m**DRIFT_POWER)
