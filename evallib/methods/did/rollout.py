"""Staggered adoption with a handful of treated units: Callaway-Sant'Anna effects with placebo-in-space inference.

:class:`~evallib.methods.did.staggered.CallawaySantAnna` gives analytic (influence-function) standard errors,
which assume many treated units. An evaluation of a service rolled out area by area has three or four treated
areas, so here the same estimates (not-yet-treated comparisons, each cohort's mean effect over its follow-up,
and their cohort-size-weighted mean) are ranked among placebo assignments: each draw gives the real start dates,
cohort sizes kept, to randomly chosen units, and re-estimates everything. Every estimate is linear in the data and
every comparison set depends only on the cohort sizes, so each draw's estimate is a dot product of its assignment
with one vector per cohort and segment: all draws in a few matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from evallib.errors import DataError
from evallib.methods.base.arrays import Transform
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.inference.inversion import PlaceboCount
from evallib.methods.inference.permutation import mc_error
from evallib.methods.inference.volatility import pre_period_swing

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["StaggeredPlacebo", "StaggeredPlaceboResult", "placebo_assignments", "placebo_row", "unit_cohorts"]

METHOD = "did_callaway_santanna_not_yet_treated"
OVERALL = "overall"


def cohort_term(start: object, periods_per_year: int = 12) -> str:
    """The tidy term of one cohort's effect: ``cohort_2019-04``, or for weekly data (52 periods a year) the
    Monday, ``cohort_2019-04-01`` (two cohorts may start in one month); a period that is not a date as it prints.
    """
    fmt = "%Y-%m-%d" if periods_per_year == 52 else "%Y-%m"
    text = start.strftime(fmt) if hasattr(start, "strftime") else str(start)
    return f"cohort_{text}"


@dataclass(frozen=True)
class StaggeredPlaceboResult(EstimatorResult):
    """The overall effect (the headline) and one effect per cohort, each with its placebo test and interval.

    ``placebo`` holds the estimates under every assignment (rows; the real one first), columns the overall
    effect then the cohorts in start order; ``cohort_starts`` and ``cohort_sizes`` describe the cohorts.
    """

    overall: Estimate
    cohorts: tuple[Estimate, ...]
    cohort_starts: tuple[object, ...]
    cohort_sizes: tuple[int, ...]
    placebo: np.ndarray = field(repr=False)
    #: Random placebo assignments the p-values rank the real one among (the assignments are always sampled).
    placebo_draws: int = 0

    @property
    def p_value_mc_error(self) -> float:
        """Monte Carlo standard error of the overall effect's sampled p-value (0 when nothing was drawn)."""
        return mc_error(self.overall.p_value, self.placebo_draws)

    @property
    def rows(self) -> tuple[Estimate, ...]:  # type: ignore[override]
        """The overall effect, then each cohort's."""
        return (self.overall, *self.cohorts)

    @property
    def placebo_estimates(self) -> np.ndarray:
        """The overall effect under every assignment (the real one first), for the minimum detectable effect."""
        return self.placebo[:, 0]

    def plot(self, *, ax: Axes | None = None, title: str = "") -> Figure:
        """Each cohort's effect and the overall effect with their 95% intervals, on ``ax``."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 2.6)) if ax is None else ax.figure
        target = fig.add_subplot() if ax is None else ax
        rows = self.rows
        y = np.arange(len(rows))[::-1]
        est = np.array([r.estimate for r in rows])
        lo = np.array([r.ci_low for r in rows])
        hi = np.array([r.ci_high for r in rows])
        finite = np.isfinite(lo) & np.isfinite(hi)
        target.errorbar(
            est[finite], y[finite], xerr=[est[finite] - lo[finite], hi[finite] - est[finite]], fmt="o", capsize=3
        )
        target.plot(est[~finite], y[~finite], "o")
        target.axvline(0, color="grey", lw=0.8)
        target.set_yticks(y, [r.term.replace("_", " ") for r in rows])
        target.set_xlabel(f"effect ({rows[0].scale})")
        if title:
            target.set_title(title)
        return fig  # type: ignore[return-value]


@dataclass(frozen=True)
class StaggeredPlacebo:
    """Callaway-Sant'Anna effects of a staggered roll-out with not-yet-treated comparisons and placebo inference.

    Parameters
    ----------
    transform : {"log", "identity"}
        ``log`` for counts and rates (effects are differences in logs: percent changes), ``identity`` for
        percentages and levels.
    n_draws : int
        Placebo assignments besides the real one.
    seed : int
        Seed of the assignments (results are reproducible).
    alpha : float
        Level of the tests; intervals are ``1 - alpha``.
    studentized : bool
        Rank each assignment's estimate divided by the pre-period swing of the units it treats (root mean square
        of :func:`~evallib.methods.inference.volatility.pre_period_swing` before the first start), the scale the
        studentized DiD divides by: for a site noisier (or quieter) than the units it is ranked among.
    phase_in : int
        Periods from each cohort's own start left out of its effect (a phase-in: ATT(g,t) for t >= g +
        phase_in only); the comparisons are unchanged (units not yet started by t).

    Notes
    -----
    Estimand: ATT(g,t), the average effect in period t on the units that started in period g, under parallel
    trends between them and the units not yet started by t (never-treated units and later cohorts before their
    own start) and no anticipation. ATT(g,t) compares the change from g - 1 to t of cohort g with that of its
    not-yet-treated units (R ``did``'s ``control_group = "notyettreated"``); a cohort's effect is the mean of
    its ATT(g,t) over its follow-up (``aggte(type = "group")``), and the overall effect their mean weighted by
    cohort size. Periods in which no unit is left to compare with are left out (the last cohort needs
    never-treated units).

    Inference: a placebo-in-space test. Each assignment gives the real start dates, cohort sizes kept, to
    randomly chosen units (the real treated ones among them; the others are not treated) and re-estimates every
    effect; the p-value is the share of assignments whose estimate is at least the real one in absolute value.
    It is exact when the treated units could have been any of the units (random assignment), and otherwise
    assumes the units are exchangeable before the start, which the pre-period checks of the common-start
    analysis speak to. The interval is every constant effect (on the estimate's scale, in every treated unit's
    follow-up) the same test does not reject, found exactly because each estimate moves linearly with it; so
    p > alpha exactly when 0 is inside. With few units, few distinct assignments exist and the test may be
    unable to reject (the interval is then unbounded). The studentized test ranks ``estimate / scale`` with the
    scale from data before the first start only, so the statistic still moves linearly with the effect and the
    inversion stays exact; it assumes units differ by a scale factor (the studentized DiD's assumption).
    """

    transform: Transform = "log"
    n_draws: int = 999
    seed: int = 2015
    alpha: float = 0.05
    studentized: bool = False
    phase_in: int = 0

    def fit(self, design: Design) -> StaggeredPlaceboResult:
        """Every effect of ``design`` (its units' own starts, or one common start) with its placebo test."""
        y, pos, cohort_pos, real, sizes = unit_cohorts(design, self.transform)
        n = len(y)
        weights = _cohort_weights(y, cohort_pos, sizes, self.phase_in)
        if not weights:
            raise DataError("staggered design: no cohort has a unit left to compare with; add never-treated units")
        treated_cells = np.zeros_like(y)
        for u in np.flatnonzero(pos >= 0):
            treated_cells[u, pos[u] :] = 1.0
        shift = _cohort_weights(treated_cells, cohort_pos, sizes, self.phase_in)
        assign = np.vstack([real, placebo_assignments(real, self.n_draws, self.seed)])
        est = _estimates(assign, weights, sizes, n)  # assignments x (overall, cohorts with an estimate)
        move = _estimates(assign, shift, sizes, n)
        labels = [g for g in range(1, len(cohort_pos) + 1) if g in weights]
        scale = np.ones((len(assign), len(labels) + 1))
        if self.studentized:
            scale = studentizing_scale(y, assign, cohort_pos[0], np.asarray(design.units), labels)
        rows = [
            self._row(design, OVERALL, est[:, 0], move[:, 0], scale[:, 0], int(sizes.sum()), n - int(sizes.sum())),
            *(
                self._row(
                    design,
                    cohort_term(design.periods[cohort_pos[g - 1]], design.periods_per_year),
                    est[:, k + 1],
                    move[:, k + 1],
                    scale[:, k + 1],
                    int(sizes[g - 1]),
                    n - int(sizes.sum()),
                )
                for k, g in enumerate(labels)
            ),
        ]
        return StaggeredPlaceboResult(
            overall=rows[0],
            cohorts=tuple(rows[1:]),
            cohort_starts=tuple(design.periods[cohort_pos[g - 1]] for g in labels),
            cohort_sizes=tuple(int(sizes[g - 1]) for g in labels),
            placebo=est,
            placebo_draws=self.n_draws,
        )

    def _row(
        self,
        design: Design,
        term: str,
        est: np.ndarray,
        move: np.ndarray,
        scale: np.ndarray,
        n_treated: int,
        n_control: int,
    ) -> Estimate:
        return placebo_row(
            design,
            term,
            est,
            move,
            scale,
            n_treated,
            n_control,
            method=METHOD,
            transform=self.transform,
            alpha=self.alpha,
            studentized=self.studentized,
        )

    def point_estimates(self, design: Design) -> np.ndarray:
        """The overall effect then each cohort's with an estimate, for the real assignment only (no placebo test):
        what the leave-one-out check re-fits, cheaply.
        """
        y, _, cohort_pos, real, sizes = unit_cohorts(design, self.transform)
        weights = _cohort_weights(y, cohort_pos, sizes, self.phase_in)
        if not weights:
            raise DataError("staggered design: no cohort has a unit left to compare with; add never-treated units")
        return _estimates(real[None, :], weights, sizes, len(y))[0]


def unit_cohorts(
    design: Design, transform: Transform
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The outcome on the analysis scale, each unit's start position (-1: never), the cohorts' start positions,
    each unit's cohort number (1..G; 0 for comparison units) and the cohorts' sizes; raises DataError.
    """
    y = np.asarray(design.values, float)
    if transform == "log":
        if (y <= 0).any():
            raise DataError(f"{design.outcome or 'outcome'}: a log scale needs positive values in every period")
        y = np.log(y)
    starts = design.unit_starts or tuple(design.start if t else None for t in design.treated)
    position = {p: i for i, p in enumerate(design.periods)}
    pos = np.array([-1 if s is None else position.get(s, -2) for s in starts])
    if (pos == -2).any():
        raise DataError("staggered design: every start must be a period of the data")
    if ((pos >= 0) & (pos < 1)).any():
        raise DataError("staggered design: a unit starts in the first period, so it has no period before it")
    cohort_pos = np.array(sorted(set(pos[pos >= 0])))
    real = np.searchsorted(cohort_pos, pos) + 1  # cohort number 1..G of each unit, 0 for comparison units
    real[pos < 0] = 0
    sizes = np.array([(real == g).sum() for g in range(1, len(cohort_pos) + 1)])
    return y, pos, cohort_pos, real, sizes


def studentizing_scale(
    y: np.ndarray, assign: np.ndarray, first: int, units: np.ndarray, labels: list[int]
) -> np.ndarray:
    """Assignments x (overall, each cohort in ``labels``): the root mean square pre-period swing of the units
    each assignment treats (:func:`~evallib.methods.inference.volatility.pre_period_swing`, the studentized DiD's
    scale), from the periods before the first start ``first`` only, so it does not move with the effect.
    """
    post = np.arange(y.shape[1]) >= first
    swing2 = pre_period_swing(y, post, units) ** 2
    scale = np.ones((len(assign), len(labels) + 1))
    for k, members in enumerate([assign > 0, *[assign == g for g in labels]]):
        scale[:, k] = np.sqrt(members.astype(float) @ swing2 / members.sum(axis=1))
    return scale


def placebo_row(
    design: Design,
    term: str,
    est: np.ndarray,
    move: np.ndarray,
    scale: np.ndarray,
    n_treated: int,
    n_control: int,
    *,
    method: str,
    transform: Transform,
    alpha: float,
    studentized: bool,
) -> Estimate:
    """One tidy row from an estimate under every assignment (the real one first): its placebo p-value and the
    interval inverting the same test. ``move`` is how each assignment's estimate moves with a constant effect in
    the real treated units' follow-up; ``scale`` each assignment's studentizing scale (ones when plain).
    """
    obs = float(est[0])
    tie = 1e-12 * (1 + abs(obs))
    real = (np.abs(move - move[0]) <= 1e-12) & (np.abs(est - obs) <= tie) & (np.abs(scale - scale[0]) <= 1e-12)
    real[0] = True
    # Statistics est / scale move with the effect tau as (est - tau move) / scale: still linear in tau.
    s = scale / scale[0]
    count = PlaceboCount(
        est[~real] / s[~real], move[~real] / s[~real], obs, c_obs=float(move[0]), n_real=int(real.sum())
    )
    lo, hi = count.interval(alpha)
    units = "log" if transform == "log" else "percentage_points" if design.measure == "proportion" else "level"
    return Estimate(
        outcome=design.outcome,
        term=term,
        estimate=obs,
        std_error=float(np.std(est[1:], ddof=1)) if len(est) > 2 else float("nan"),
        ci_low=lo,
        ci_high=hi,
        p_value=count.p_value(0.0),
        method=method,
        inference="placebo_studentized" if studentized else "placebo_in_space",
        scale=units,
        n_treated=n_treated,
        n_control=n_control,
    )


#: Per cohort g (1..G): (treated vector, [(segment h, control vector)]) such that the cohort's effect under an
#: assignment ``a`` is ``(a == g) @ treated - sum_h (a == 0 or a > h) @ control_h``.
_Weights = dict[int, tuple[np.ndarray, list[tuple[int, np.ndarray]]]]


def _cohort_weights(y: np.ndarray, cohort_pos: np.ndarray, sizes: np.ndarray, phase_in: int = 0) -> _Weights:
    """Each cohort's effect as weights on the units, given only the cohorts' starts and sizes.

    Periods from cohort h's start to the next cohort's form segment h; there the not-yet-treated units are
    those of later cohorts and the never treated, ``n - sizes[:h].sum()`` of them whoever they are. A cohort's
    first ``phase_in`` periods from its own start are left out of its effect (its units are still treated then).
    """
    n, t_all = y.shape
    bounds = [*cohort_pos.tolist(), t_all]
    out: _Weights = {}
    for g in range(1, len(cohort_pos) + 1):
        base = y[:, cohort_pos[g - 1] - 1]
        first = cohort_pos[g - 1] + phase_in
        segments = []
        treated = np.zeros(n)
        n_periods = 0
        for h in range(g, len(cohort_pos) + 1):
            left = n - int(sizes[:h].sum())
            lo = max(bounds[h - 1], first)
            if left == 0 or bounds[h] <= lo:
                continue
            change = (y[:, lo : bounds[h]] - base[:, None]).sum(axis=1)
            segments.append((h, change / left))
            treated += change  # the treated side averages the same periods the comparisons cover
            n_periods += bounds[h] - lo
        if not n_periods:
            continue  # no period with a unit to compare with: no estimate (R did leaves the cohort out too)
        out[g] = (treated / (sizes[g - 1] * n_periods), [(h, v / n_periods) for h, v in segments])
    return out


def _estimates(assign: np.ndarray, weights: _Weights, sizes: np.ndarray, n: int) -> np.ndarray:
    """Assignments x (overall effect, each cohort's effect) from the cohort weights."""
    cols = []
    for g, (treated, segments) in weights.items():
        eff = (assign == g).astype(float) @ treated
        for h, control in segments:
            eff -= ((assign == 0) | (assign > h)).astype(float) @ control
        cols.append(eff)
    by_cohort = np.column_stack(cols)
    share = np.array([sizes[g - 1] for g in weights], float)
    overall = by_cohort @ (share / share.sum())
    return np.column_stack([overall, by_cohort])


def placebo_assignments(real: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """``n_draws`` assignments: the real cohort numbers given to randomly chosen units (sizes kept)."""
    rng = np.random.default_rng(seed)
    labels = real[real > 0]
    k, n = len(labels), len(real)
    chosen = np.argsort(rng.random((n_draws, n)), axis=1)[:, :k]
    out = np.zeros((n_draws, n), int)
    np.put_along_axis(out, chosen, np.broadcast_to(labels, (n_draws, k)), axis=1)
    return out
