"""Test inversion: every effect size a test does not reject, so that the interval and the p-value agree.

:class:`PlaceboCount` and :func:`invert_linear` invert placebo tests whose statistics move linearly with the
null effect (exactly, by sorting the points where an assignment starts or stops counting);
:func:`invert_by_search` inverts tests whose statistics do not (the Poisson rate ratio, synthetic DiD
refits), by bracketing and narrowing each end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import overload

import numpy as np

from evallib.methods.inference.decision import rejects

__all__ = ["PlaceboCount", "invert_by_search", "invert_linear"]


class PlaceboCount:
    """The p-value of a placebo test as a function of the null effect ``tau``, for linear statistics.

    Under the null "effect = tau" each placebo assignment's statistic is ``est - tau c`` and
    the observed one ``obs - tau c_obs``; an assignment counts when its statistic is at least
    the observed one in absolute value. That holds on a closed interval of tau, on two closed
    half-lines, or everywhere (a quadratic inequality in tau), so ``p(tau)`` is a count of
    intervals containing tau: two sorted arrays and binary search, memory linear in the number
    of assignments. ``n_real`` assignments that treat exactly the real units always count.
    """

    def __init__(self, est: np.ndarray, c: np.ndarray, obs: float, *, c_obs: float = 1.0, n_real: int = 1) -> None:
        if not np.isfinite(c_obs) or c_obs == 0:
            raise ValueError("the observed statistic must move with the effect (c_obs != 0)")
        e = np.asarray(est, float) / c_obs
        g = np.asarray(c, float) / c_obs
        o = float(obs) / c_obs
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (e - o) / (g - 1)  # where est - tau c = obs - tau
            t2 = (e + o) / (g + 1)  # where est - tau c = -(obs - tau)
        a, b = np.fmin(t1, t2), np.fmax(t1, t2)
        inner = np.abs(g) < 1  # (g^2 - 1) tau^2 + ... >= 0 with a negative leading term: [a, b]
        outer = (np.abs(g) > 1) & (a < b)  # positive leading term: (-inf, a] and [b, inf)
        always = int(n_real) + int(np.sum((np.abs(g) > 1) & (a >= b)))
        # |g| = 1: the inequality is linear in tau, a half-line (or everything when the sides coincide).
        # Sides equal up to rounding (a repeat of the real assignment, or its complement when half
        # the units are treated) tie for every tau, as they do in exact arithmetic.
        tie = 1e-12 * (1 + abs(o))
        up, down = g == 1, g == -1
        up_tie, down_tie = up & (np.abs(e - o) <= tie), down & (np.abs(e + o) <= tie)
        always += int(np.sum(up_tie)) + int(np.sum(down_tie))
        up, down = up & ~up_tie, down & ~down_tie
        left_up, right_up = up & (e > o), up & (e < o)  # tau <= (e+o)/2, tau >= (e+o)/2
        left_dn, right_dn = down & (e + o < 0), down & (e + o > 0)  # tau <= (o-e)/2, tau >= (o-e)/2
        # Only the multisets of starts and ends matter: count(tau) = #{starts <= tau} - #{ends < tau}.
        n_inf = int(outer.sum() + left_up.sum() + left_dn.sum())
        lo = np.concatenate([a[inner], b[outer], t2[right_up], t1[right_dn], np.full(n_inf, -np.inf)])
        n_inf = int(outer.sum() + right_up.sum() + right_dn.sum())
        hi = np.concatenate([b[inner], a[outer], t2[left_up], t1[left_dn], np.full(n_inf, np.inf)])
        self._lo, self._hi = np.sort(lo), np.sort(hi)
        self.n_always = always
        self.n_total = len(e) + int(n_real)

    def count(self, tau: float | np.ndarray) -> np.ndarray:
        """Assignments whose statistic is at least the observed one under the null ``tau``."""
        t = np.asarray(tau, float)
        inside = np.searchsorted(self._lo, t, side="right") - np.searchsorted(self._hi, t, side="left")
        return self.n_always + inside

    @overload
    def p_value(self, tau: float = 0.0) -> float: ...
    @overload
    def p_value(self, tau: np.ndarray) -> np.ndarray: ...
    def p_value(self, tau: float | np.ndarray = 0.0) -> float | np.ndarray:
        """Share of assignments at least as extreme as the observed one under the null ``tau``."""
        p = self.count(tau) / self.n_total
        return float(p) if np.ndim(p) == 0 else p

    def interval(self, alpha: float) -> tuple[float, float]:
        """Every tau the test does not reject at ``alpha``: ``{tau: not rejects(p(tau), alpha)}``, i.e. ``p(tau) > alpha``.

        ``p`` only changes at the interval ends, so it is evaluated there and between
        neighbouring ends; exact up to floating point. Returns the hull of the accepted
        set (it is one interval whenever every placebo moves less than the observed
        statistic, ``|c| <= |c_obs|``, because every assignment counts at ``tau = obs``),
        ``(nan, nan)`` if nothing is accepted, infinite ends where acceptance never stops.
        """
        cuts = np.concatenate([self._lo, self._hi])
        cuts = np.unique(cuts[np.isfinite(cuts)])
        if cuts.size == 0:
            return (
                (-np.inf, np.inf) if not rejects(self.n_always / self.n_total, alpha) else (float("nan"), float("nan"))
            )
        mids = (cuts[:-1] + cuts[1:]) / 2
        cand = np.concatenate([cuts, mids, [cuts[0] - 1.0, cuts[-1] + 1.0]])
        ok = cand[~rejects(self.count(cand) / self.n_total, alpha)]
        if ok.size == 0:
            return float("nan"), float("nan")
        outer = ~rejects(self.count(cand[-2:]) / self.n_total, alpha)  # beyond every end the verdict no longer changes
        return (-np.inf if outer[0] else float(ok.min())), (np.inf if outer[1] else float(ok.max()))


def invert_linear(
    est: np.ndarray, c: np.ndarray, obs: float, alpha: float, *, c_obs: float = 1.0
) -> tuple[float, float]:
    """Exact interval {tau: p(tau) > alpha} of a permutation test, memory linear in the assignments.

    p(tau) counts assignments (the real one among them, ``c == c_obs`` with ``est == obs``)
    with ``|est - tau c| >= |obs - tau c_obs|``; see :class:`PlaceboCount`.
    """
    est, c = np.asarray(est, float), np.asarray(c, float)
    real = (c == c_obs) & (np.abs(est - obs) <= 1e-12 * (1 + abs(obs)))
    return PlaceboCount(est[~real], c[~real], obs, c_obs=c_obs, n_real=int(real.sum())).interval(alpha)


def invert_by_search(
    p_of: Callable[[np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]],
    center: float,
    step: float,
    alpha: float,
    *,
    known: dict[float, float] | None = None,
    rel_tol: float = 1e-3,
    max_doublings: int = 10,
    guesses: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Interval ``{tau: p(tau) > alpha}`` of a test whose statistic is not linear in tau.

    ``p_of`` maps an array of null values to their p-values (one call per round, both
    sides at once), or to ``(p, margin)`` with ``margin`` a continuous function that is
    at most 0 exactly where the test accepts (e.g. the observed statistic minus the
    critical placebo statistic). From ``center`` (the estimate, where the test accepts)
    each side is bracketed by doubling steps from ``step`` (beyond
    ``step * 2**max_doublings`` the end is infinite), then narrowed until the bracket is
    shorter than ``rel_tol * step``: by false position on the margin when there is one
    (with bisection whenever a step fails to halve the bracket), else by bisection.
    The reported end is the last accepted value, so the interval holds only values the
    test accepts. ``known`` p-values (e.g. ``{0.0: p}``, the reported p-value) join the
    brackets, so a null value with a known p-value above ``alpha`` lies inside the interval
    and one at or below it outside, whenever the accepted set is an interval.
    Returns ``(nan, nan)`` when the test rejects at ``center`` itself.

    ``guesses`` (with a margin): predicted ends, e.g. from the test at one null value, tried instead of
    ``center +- step``. Each side's end is then re-predicted by the secant of the margin between ``center`` and
    its guess, and the two points ``tol / 3`` either side of that prediction are tried: a margin close to linear
    in tau (the rate ratio's) closes each bracket there, in 4 null values after the first round, instead of
    doubling from ``step`` and narrowing a bracket ``step`` wide. Where they do not close it, bracketing and
    narrowing go on as without guesses from every point tried. A guess beyond ``step * 2**max_doublings`` is not
    tried (that end stays infinite, as without guesses). Either way each end is within ``tol`` of where the test
    starts to reject (when the accepted set is an interval), on the accepted side.
    """
    pts = dict(known or {})
    marg: dict[float, float] = {}
    tol = rel_tol * step

    def evaluate(taus: list[float]) -> None:
        out = p_of(np.array(taus, float))
        p, m = out if isinstance(out, tuple) else (out, np.full(len(taus), np.nan))
        pts.update(zip(taus, np.asarray(p, float).tolist(), strict=True))
        marg.update(zip(taus, np.asarray(m, float).tolist(), strict=True))

    reach = step * 2.0**max_doublings
    guessed = [] if guesses is None else [g for g in guesses if np.isfinite(g) and 0 < abs(g - center) <= reach]
    evaluate(([] if center in pts else [center]) + (guessed or [center - step, center + step]))
    if rejects(pts[center], alpha):
        return float("nan"), float("nan")
    for g in guessed:  # the secant of the margin between the center and the guess, then tol / 3 either side of it
        side, m_c, m_g = (1 if g > center else -1), marg.get(center, np.nan), marg.get(g, np.nan)
        if np.isfinite(m_c) and np.isfinite(m_g) and m_g != m_c:
            root = center + (g - center) * (-m_c) / (m_g - m_c)
            if tol < side * (root - center) <= reach:  # one side per call: no more null values at once than before
                evaluate([root - side * tol / 3, root + side * tol / 3])

    def bracket(side: int) -> tuple[float, float | None]:
        """The farthest accepted point before the nearest rejected one, and that rejected point."""
        ts = sorted((t for t in pts if side * (t - center) > 0), key=lambda t: side * (t - center))
        rejected = next((t for t in ts if rejects(pts[t], alpha)), None)
        accepted = [
            t
            for t in ts
            if np.isfinite(pts[t]) and not rejects(pts[t], alpha) and (rejected is None or side * (t - rejected) < 0)
        ]
        return (accepted[-1] if accepted else center), rejected

    ends = {s: bracket(s) for s in (-1, 1)}
    for k in range(1, max_doublings + 1):
        todo = [center + s * step * 2.0**k for s in (-1, 1) if ends[s][1] is None]
        if not todo:
            break
        # A known accepted point farther out already stands for this doubling.
        todo = [t for t in todo if abs(t - center) > abs(ends[1 if t > center else -1][0] - center)]
        if todo:
            evaluate(todo)
        ends = {s: bracket(s) for s in (-1, 1)}
    last_width = {s: np.inf for s in (-1, 1)}
    while True:
        todo = []
        for side, (inner, outer) in ends.items():
            if outer is None or abs(outer - inner) <= tol:
                continue
            width = abs(outer - inner)
            x = (inner + outer) / 2
            m_in, m_out = marg.get(inner, np.nan), marg.get(outer, np.nan)
            if width <= last_width[side] / 2 and np.isfinite(m_in) and np.isfinite(m_out) and m_in <= 0 < m_out:
                x = inner + (outer - inner) * (-m_in) / (m_out - m_in)  # false position
            # Keep tol / 2 from both ends, so a good guess closes the bracket at the next step.
            lo_x, hi_x = sorted((inner + side * tol / 2, outer - side * tol / 2))
            todo.append(float(min(max(x, lo_x), hi_x)))
            last_width[side] = width
        if not todo:
            break
        evaluate(todo)
        ends = {s: bracket(s) for s in (-1, 1)}
    lo = -np.inf if ends[-1][1] is None else ends[-1][0]
    hi = np.inf if ends[1][1] is None else ends[1][0]
    return float(lo), float(hi)
