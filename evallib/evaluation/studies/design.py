"""The design step: what an evaluation could detect, read from the data before its planned start only.

For the protocol's candidate estimators (the plain and studentized placebo DiD, and synthetic DiD), candidate
comparison pools (the protocol's whole pool, the units nearest the site before the start, the site's NHS region)
and follow-up lengths (12, 24, 36 months and the protocol's own; weekly data: 52, 104, 156 weeks), the step gives the minimum detectable effect at
80% power and 5% size, the expected width of the 95% interval, a power curve against effect size, and whether,
and after how long, the effect the evaluator hopes for can be detected. It uses the inference the report uses:
placebo in space, at every fake start date in the history before the start (the last ``L`` months of each
window act as the follow-up), so that drift between units over the follow-up is in the numbers.

Nothing from the planned start on is read: the data are taken through the protocol's windows moved to end at
``pre_period_end`` (:func:`design_history`), so the follow-up's values cannot change any number here.
"""

from __future__ import annotations

import math

import numpy as np

from evallib.errors import DataError
from evallib.evaluation.studies.placebo_cells import Cell, fake_windows, placebo_cell, scaled
from evallib.evaluation.studies.pre_start import History, answer_estimator, design_history, nearest_sets
from evallib.evaluation.studies.site_design import ALPHA, SiteDesign, build_site_design, power_columns
from evallib.evaluation.studies.site_design import POOL_MARGIN as POOL_MARGIN
from evallib.evaluation.studies.site_design import POWER as POWER
from evallib.evaluation.studies.site_design import TABLE_COLUMNS as TABLE_COLUMNS
from evallib.evaluation.studies.site_design import as_percent as as_percent
from evallib.methods.inference.fake_starts import FakeStartTests, critical_values, spread_at, spread_model
from evallib.protocol.params import SiteProtocol
from evallib.sources.panel import Panel

# ``POOL_MARGIN``, ``POWER``, ``TABLE_COLUMNS`` and ``as_percent`` are named here too, where the design step's
# callers have found them: the design's result and its table are defined with the builders both design steps
# share, in :mod:`~evallib.evaluation.studies.site_design`.

#: Follow-up lengths (months) the design step tries besides the protocol's own.
FOLLOW_UPS: tuple[int, ...] = (12, 24, 36)
#: The same for weekly data, in weeks (one, two and three years of ISO weeks): weekly sites count follow-up in weeks.
WEEKLY_FOLLOW_UPS: tuple[int, ...] = (52, 104, 156)
#: Estimators the design step sizes: the report's placebo tests (its primary estimator among them).
DESIGN_ESTIMATORS: tuple[str, ...] = ("did", "did_studentized", "synthetic_did")
#: Candidate comparison pools, in the order they are shown.
POOLS: tuple[str, ...] = ("protocol", "nearest", "same_region")
#: The effect (percent, in the protocol's expected direction) the design step asks about when none is given.
DEFAULT_HOPED_FOR = 5.0


def area_effect(percent: float, share: float, direction: str, scale: str = "log") -> float:
    """The area-level effect (signed, on the analysis scale) of a ``percent`` change on a sub-population.

    A multiplicative effect of ``percent`` on a group that makes up ``share`` of the area's outcome changes the
    area's total by ``percent x share`` (the rest is unchanged); on the log scale that is
    ``log(1 -/+ percent x share / 100)``. For a percentage (points) the change is taken as ``points x share``.
    """
    if not 0 < share <= 1:
        raise DataError(f"design: the sub-population's share must be above 0 and at most 1 (got {share})")
    if not 0 < percent < 100:
        raise DataError(f"design: the hoped-for effect must be a percentage above 0 and below 100 (got {percent})")
    sign = -1.0 if direction == "decrease" else 1.0
    if scale != "log":
        return sign * percent * share
    return math.log1p(sign * percent * share / 100)


def design_site(
    protocol: SiteProtocol,
    *,
    panel: Panel | None = None,
    estimators: tuple[str, ...] = DESIGN_ESTIMATORS,
    follow_ups: tuple[int, ...] = FOLLOW_UPS,
    hoped_for_percent: float = DEFAULT_HOPED_FOR,
    share: float = 1.0,
    pools: tuple[str, ...] = POOLS,
    effects: np.ndarray | None = None,
) -> SiteDesign:
    """The design step for one site (data before ``pre_period_end`` + 1 only; see the module's notes).

    Parameters
    ----------
    protocol : SiteProtocol
        The site's protocol (its windows, pool rule, outcome, expected direction and placebo draws).
    panel : Panel, optional
        The data (default: the protocol's ``data_source``).
    estimators, follow_ups, pools : tuples
        What to size (follow-ups in months, or in weeks for weekly data, where the default is
        :data:`WEEKLY_FOLLOW_UPS`; the protocol's own follow-up is always added).
    hoped_for_percent, share : float
        The effect hoped for, in percent in the expected direction, on a group making up ``share`` of the
        area's outcome (1: the whole area).
    effects : array, optional
        Effect magnitudes for the power curves (default: 0 to 3 times the largest MDE, 41 points).
    """
    unknown = sorted(set(estimators) - set(DESIGN_ESTIMATORS))
    if unknown:
        word = "estimator" if len(unknown) == 1 else "estimators"
        raise DataError(f"design: unknown {word} {', '.join(unknown)}; use {', '.join(DESIGN_ESTIMATORS)}")
    w = protocol.windows
    weekly = getattr(protocol.data_source, "frequency", "monthly") == "weekly"
    if weekly:  # windows in weeks: the follow-ups tried, the protocol's own, each fake window's follow-up
        follow_ups = WEEKLY_FOLLOW_UPS if follow_ups == FOLLOW_UPS else follow_ups
        own = (w.post_end - w.post_start).days // 7 + 1
        longest = math.ceil(max((*follow_ups, own)) * 12 / 52)  # the history reaches back in months
    else:
        own = _follow_up_months(protocol)
        longest = max((*follow_ups, own))
    hist = design_history(protocol, panel, longest=longest)
    lengths = sorted({*follow_ups, own})
    step = 1 if weekly else 12 // hist.periods_per_year
    hoped = area_effect(hoped_for_percent, share, protocol.expected_direction, hist.scale)
    direction = protocol.expected_direction
    answer = answer_estimator(protocol, hist)
    rows, cells = [], {}
    fitted: dict[tuple[str, str, tuple[int, int]], Cell] = {}
    k = len(hist.treated)
    every = [*hist.treated, *hist.pools["protocol"]]
    Y_all = hist.values[every].to_numpy(dtype=float).T
    # How units drift apart is the whole pool's (a pool chosen on the history would look steadier than it stays).
    model = spread_model(Y_all) if Y_all.shape[1] < hist.pre_periods + max(lengths) // step else None
    for pool in [p for p in pools if p in hist.pools]:
        units = [*hist.treated, *hist.pools[pool]]
        Y = Y_all if pool == "nearest" else hist.values[units].to_numpy(dtype=float).T
        is_treated = np.arange(len(units)) < k
        for months in lengths:
            post = max(1, months // step)
            windows = fake_windows(Y.shape[1], hist.pre_periods, post)
            factor = 1.0
            if model is not None and windows != (hist.pre_periods, post):
                factor = math.sqrt(spread_at(model, hist.pre_periods, post) / spread_at(model, *windows))
            n_starts = Y.shape[1] - sum(windows) + 1
            sets = None
            if pool == "nearest" and not all((name, pool, windows) in fitted for name in estimators):
                sets = nearest_sets(Y, k, windows[0], n_starts, len(units) - k)
            for name in estimators:
                # Follow-ups whose fake windows are the same (a short history) share one fit, scaled by their factor.
                if (name, pool, windows) not in fitted:
                    fitted[(name, pool, windows)] = placebo_cell(
                        name,
                        Y,
                        is_treated,
                        windows,
                        1.0,
                        protocol.n_placebo_draws,
                        protocol.seed,
                        sets,
                        hist.pre_periods,
                    )
                cell = scaled(fitted[(name, pool, windows)], factor)
                cells[(name, pool, months)] = tests = FakeStartTests(cell.placebos, cell.coefficient, ALPHA)
                rows.append(_row(name, pool, months, len(units) - k, cell, tests, hist, hoped, direction))
    notes = hist.notes + (
        ("the site is noisier before the start than 90% of its placebos: its answer will be the studentized DiD",)
        if answer == "did_studentized" != protocol.primary_estimator
        else ()
    )
    return build_site_design(
        protocol,
        hist,
        primary_estimator=answer if answer in estimators else estimators[0],
        planned_start=w.post_start,
        follow_up=own,
        hoped_for_percent=hoped_for_percent,
        share=share,
        hoped=hoped,
        rows=rows,
        tests=[(name, pool, months, tests) for (name, pool, months), tests in cells.items()],
        notes=notes,
        weekly=weekly,
        effects=effects,
    )


def _follow_up_months(protocol: SiteProtocol) -> int:
    w = protocol.windows
    return (w.post_end.year - w.post_start.year) * 12 + w.post_end.month - w.post_start.month + 1


def _row(
    name: str,
    pool: str,
    months: int,
    n_comp: int,
    cell: Cell,
    tests: FakeStartTests,
    hist: History,
    hoped: float,
    direction: str,
) -> dict[str, object]:
    e, c = cell.placebos, cell.coefficient
    q = critical_values(e, ALPHA)
    width = float(np.mean(2 * q / np.abs(np.broadcast_to(np.asarray(c, float), q.shape))))
    own = np.abs(e[cell.real])
    p = (np.abs(e) >= own - 1e-12).mean(axis=0)
    rejection = float(np.mean(p < ALPHA))  # the report's rule: p below 5%
    return {
        "estimator": name,
        "pool": pool,
        "follow_up": months,
        "n_comparators": n_comp,
        "fake_pre": cell.windows[0],
        "fake_post": cell.windows[1],
        "spread_factor": cell.factor,
        "ci_width": width,
        **power_columns(tests, rejection, cell.n_starts, hist.scale, hoped, direction),
    }
