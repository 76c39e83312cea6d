"""Stacked difference-in-differences for a staggered roll-out with a handful of treated units.

One sub-experiment per cohort: its treated units and the clean comparison units (never treated, or not treated
before the end of the cohort's event window), over an event window of the same length around each cohort's start;
each cohort's effect is its 2x2 difference-in-differences within the window, and the overall effect their mean
weighted by cohort size. Inference is :mod:`evallib.methods.did.rollout`'s placebo re-assignment of the start
dates: every estimate is linear in the data and every clean comparison set depends only on the cohort labels, so
all draws are a few matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evallib.errors import DataError
from evallib.methods.base.arrays import Transform
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.rollout import (
    OVERALL,
    StaggeredPlaceboResult,
    cohort_term,
    placebo_assignments,
    placebo_row,
    studentizing_scale,
    unit_cohorts,
)

__all__ = ["StackedDiD", "StackedDiDResult"]

METHOD = "did_stacked"


@dataclass(frozen=True)
class StackedDiDResult(StaggeredPlaceboResult):
    """The overall effect (the headline) and one effect per cohort kept in the stack, each with its placebo test.

    As :class:`~evallib.methods.did.rollout.StaggeredPlaceboResult`, with the event window: ``pre_periods``
    before and ``post_periods`` from each cohort's start (after ``phase_in`` periods left out).
    """

    pre_periods: int = 0
    post_periods: int = 0
    phase_in: int = 0


@dataclass(frozen=True)
class StackedDiD:
    """Stacked difference-in-differences of a staggered roll-out, with placebo re-assignment of the start dates.

    Parameters
    ----------
    transform : {"log", "identity"}
        ``log`` for counts and rates (effects are differences in logs), ``identity`` for percentages and levels.
    pre_periods, post_periods : int, optional
        The event window: periods before and from each cohort's start. By default every period before the
        first start, and the shortest follow-up of any cohort (so no cohort is trimmed). A cohort without the
        whole window in the data is left out of the stack (trimmed).
    n_draws, seed, alpha, studentized
        As :class:`~evallib.methods.did.rollout.StaggeredPlacebo`.
    phase_in : int
        Periods from each cohort's start left out (a phase-in): its post window starts ``phase_in`` periods after
        its start, and clean comparisons must not start before that window ends.

    Notes
    -----
    Estimand: the trimmed aggregate ATT of Wing, Freedman and Hollingsworth (2024, "Stacked
    difference-in-differences", NBER w32054): for each cohort g, ATT_g is the average effect on g's units over
    the ``post_periods`` from their start, identified by the 2x2 difference-in-differences of the window's means
    (after minus before) against the clean comparison units of sub-experiment g, those with no start before the
    window ends (never-treated units, and later cohorts starting after it); the overall effect is
    sum_g (N_g / N) ATT_g, N_g the cohort's size. It is what their weighted stacked regression (sub-experiment
    by unit and by event-time fixed effects, corrective sample-share weights) estimates. Assumptions: parallel
    trends between each cohort and its clean comparisons over the window, and no anticipation within it. Unlike
    Callaway-Sant'Anna (:class:`~evallib.methods.did.rollout.StaggeredPlacebo`), which compares with the last
    period before the start, the stack compares with the mean of the whole pre-window, so with noisy monthly
    or weekly data it is often more precise; and later cohorts serve as comparisons only when they start after the window.

    Inference: each assignment gives the real start dates, cohort sizes kept, to randomly chosen units and
    re-builds every sub-experiment (treated units and clean comparisons from the assignment's labels); the
    p-value ranks the real estimate's absolute value among them, and the interval inverts the same test
    exactly (each estimate moves linearly with a constant effect in the real treated units' follow-up). Exact
    under random assignment of the units; otherwise it assumes units exchangeable before the start. The
    studentized test divides by the treated units' pre-period swing, as the staggered placebo test does.
    """

    transform: Transform = "log"
    pre_periods: int | None = None
    post_periods: int | None = None
    n_draws: int = 999
    seed: int = 2015
    alpha: float = 0.05
    studentized: bool = False
    phase_in: int = 0

    def fit(self, design: Design) -> StackedDiDResult:
        """Every cohort's effect in the stack and the overall effect of ``design``, with their placebo tests."""
        y, pos, cohort_pos, real, sizes = unit_cohorts(design, self.transform)
        n, t_all = y.shape
        pre = int(cohort_pos[0]) if self.pre_periods is None else int(self.pre_periods)
        lag = int(self.phase_in)
        post = int(t_all - cohort_pos[-1] - lag) if self.post_periods is None else int(self.post_periods)
        if pre < 1 or post < 1:
            raise DataError("stacked design: the event window needs at least one period before and one from the start")
        kept = [
            g
            for g in range(1, len(cohort_pos) + 1)
            if cohort_pos[g - 1] - pre >= 0 and cohort_pos[g - 1] + lag + post <= t_all
        ]
        if not kept:
            raise DataError(
                f"stacked design: no cohort has {pre} periods before and {post} from its start in the data; "
                "shorten the event window"
            )
        treated_cells = np.zeros_like(y)
        for u in np.flatnonzero(pos >= 0):
            treated_cells[u, pos[u] :] = 1.0
        clean = self._clean(cohort_pos, sizes, lag + post, n, kept)
        assign = np.vstack([real, placebo_assignments(real, self.n_draws, self.seed)])
        est = self._estimates(assign, y, cohort_pos, sizes, pre, (lag, post), kept, clean)
        move = self._estimates(assign, treated_cells, cohort_pos, sizes, pre, (lag, post), kept, clean)
        scale = np.ones_like(est)
        if self.studentized:
            scale = studentizing_scale(y, assign, int(cohort_pos[0]), np.asarray(design.units), kept)
        n_treated = int(sizes[[g - 1 for g in kept]].sum())

        def row(term: str, k: int, n_tr: int, n_co: int) -> Estimate:
            return placebo_row(
                design,
                term,
                est[:, k],
                move[:, k],
                scale[:, k],
                n_tr,
                n_co,
                method=METHOD,
                transform=self.transform,
                alpha=self.alpha,
                studentized=self.studentized,
            )

        never = int((real == 0).sum())
        rows = [row(OVERALL, 0, n_treated, never)]
        for k, g in enumerate(kept):
            rows.append(
                row(
                    cohort_term(design.periods[cohort_pos[g - 1]], design.periods_per_year),
                    k + 1,
                    int(sizes[g - 1]),
                    clean[g][1],
                )
            )
        return StackedDiDResult(
            overall=rows[0],
            cohorts=tuple(rows[1:]),
            cohort_starts=tuple(design.periods[cohort_pos[g - 1]] for g in kept),
            cohort_sizes=tuple(int(sizes[g - 1]) for g in kept),
            placebo=est,
            placebo_draws=self.n_draws,
            pre_periods=pre,
            post_periods=post,
            phase_in=lag,
        )

    @staticmethod
    def _clean(
        cohort_pos: np.ndarray, sizes: np.ndarray, post: int, n: int, kept: list[int]
    ) -> dict[int, tuple[np.ndarray, int]]:
        """Per kept cohort g: the cohort labels whose units are clean comparisons (0 and cohorts starting after
        g's window) and how many units carry them, the same under every assignment (sizes are kept).
        """
        out: dict[int, tuple[np.ndarray, int]] = {}
        for g in kept:
            ok = [0] + [h for h in range(1, len(cohort_pos) + 1) if cohort_pos[h - 1] >= cohort_pos[g - 1] + post]
            # At least the never-treated units (a Design always has a comparison unit).
            out[g] = (np.array(ok), n - int(sizes.sum()) + int(sum(sizes[h - 1] for h in ok if h)))
        return out

    @staticmethod
    def _estimates(
        assign: np.ndarray,
        y: np.ndarray,
        cohort_pos: np.ndarray,
        sizes: np.ndarray,
        pre: int,
        window: tuple[int, int],
        kept: list[int],
        clean: dict[int, tuple[np.ndarray, int]],
    ) -> np.ndarray:
        """Assignments x (overall, each kept cohort): every sub-experiment's 2x2 DiD, as dot products."""
        lag, post = window
        cols = []
        for g in kept:
            s = int(cohort_pos[g - 1])
            # Each unit's change: its post window (after the phase-in) against its pre window.
            change = y[:, s + lag : s + lag + post].mean(axis=1) - y[:, s - pre : s].mean(axis=1)
            labels, count = clean[g]
            treated = (assign == g).astype(float) @ change / sizes[g - 1]
            control = np.isin(assign, labels).astype(float) @ change / count
            cols.append(treated - control)
        by_cohort = np.column_stack(cols)
        share = np.array([sizes[g - 1] for g in kept], float)
        return np.column_stack([by_cohort @ (share / share.sum()), by_cohort])
