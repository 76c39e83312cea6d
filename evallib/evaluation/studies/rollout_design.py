"""The design step for a staggered site: the Callaway-Sant'Anna placebo test's MDE, from data before the first start.

A staggered site's answer is Callaway-Sant'Anna's overall effect with its own placebo test (start dates re-assigned
to random units, :class:`~evallib.methods.did.rollout.StaggeredPlacebo`), not a common-start DiD, so its detectable
effect is sized with that estimator: on the history before the first start (:func:`~.pre_start.design_history`:
nothing from the first start on is read), every cohort's start is moved back into the history by the same number of
periods, keeping the cohorts' spacing and the last cohort's follow-up, as the staggered placebo in time does
(:func:`evallib.evaluation.site.staggered_site.fake_start_design`), and the estimator is fitted there with its placebo
test, at up to :data:`FAKE_STARTS` fake starts spread over the history. The MDE at 80% power (5% size) is read from
the placebo estimates of every fake start together, for each candidate pool; the pool is chosen by the same rule as
a common-start site's (:meth:`~.design.SiteDesign.recommended`, :data:`~evallib.protocol.generator.POOL_MARGIN`).

When the history is shorter than the pre-period, the cohorts' span and the last cohort's follow-up, the fake
pre-period is shortened first (to half the history after the cohorts' span at least), then the fake follow-up; the MDE is then that of the
shorter follow-up, unscaled, and a note says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evallib.errors import DataError, NotEvaluable
from evallib.evaluation.studies.design import area_effect
from evallib.evaluation.studies.pre_start import History, answer_estimator, design_history, nearest_sets
from evallib.evaluation.studies.site_design import ALPHA, SiteDesign, build_site_design, power_columns
from evallib.methods.base.design import Design
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.inference.fake_starts import FakeStartTests, critical_values
from evallib.protocol.params import SiteProtocol
from evallib.sources.panel import Panel

#: The staggered answer's estimator, as ``results.json`` names it (``answer.estimator``).
STAGGERED_ESTIMATOR = "callaway_santanna"
#: Fake starts (each a full placebo fit) spread over the history; their placebo estimates are pooled.
FAKE_STARTS = 3


def _offset(a: pd.Timestamp, b: pd.Timestamp, weekly: bool, step: int) -> int:
    """Periods from ``a`` to ``b`` (weeks, or months over the data's step)."""
    if weekly:
        return (b - a).days // 7
    return ((b.year - a.year) * 12 + b.month - a.month) // step


def fake_layout(history: int, pre: int, span: int, follow: int) -> tuple[int, int, list[int]]:
    """Where the fake first starts go in a history of ``history`` periods: ``(fake_pre, fake_follow, positions)``.

    The cohorts keep their spacing (``span`` periods from the first start to the last) and the last cohort its
    ``follow`` periods of follow-up when the history allows; otherwise the pre-period is shortened first (to half
    the history after the cohorts' span at least), then the follow-up. Positions are the fake first starts, up to :data:`FAKE_STARTS` of
    them, evenly spread from the earliest (``fake_pre`` periods before it) to the latest.
    """
    fake_pre = min(pre, max(history - span - follow, 2, (history - span) // 2))
    fake_follow = min(follow, history - span - fake_pre)
    if fake_follow < 1:
        raise NotEvaluable(
            f"the history before the first start ({history} periods) cannot hold the cohorts' spacing ({span} "
            "periods) with a fake follow-up after it: the staggered design step needs a longer history"
        )
    first, last = fake_pre, history - span - fake_follow
    n = min(FAKE_STARTS, last - first + 1)
    return fake_pre, fake_follow, sorted({int(round(x)) for x in np.linspace(first, last, n)})


def staggered_design(
    protocol: SiteProtocol,
    *,
    panel: Panel | None = None,
    hoped_for_percent: float = 5.0,
    share: float = 1.0,
) -> SiteDesign:
    """The design step for a staggered site: one row per candidate pool at the protocol's follow-up.

    ``follow_up`` counts periods from the first start to ``post_period_end`` (months, or weeks for weekly data);
    ``fake_post`` is the last cohort's fake follow-up and ``fake_starts`` the fake first starts fitted. The
    estimator is :data:`STAGGERED_ESTIMATOR` (studentized when the volatile-site rule fires on the pre-period, as
    the report's is). Raises NotEvaluable when a treated unit's start cannot be matched or the history is too short.

    Notes
    -----
    The estimand sized is the overall Callaway-Sant'Anna effect (cohorts weighted by size, each cohort's mean effect
    over its follow-up against units not yet started); the placebo test assumes the start dates could have gone to
    any units. Nothing from the first start on is read.
    """
    if not protocol.staggered:
        raise DataError(f"site {protocol.site_id}: not a staggered site (one intervention_start)")
    w = protocol.windows
    weekly = getattr(protocol.data_source, "frequency", "monthly") == "weekly"
    first_start = pd.Timestamp(protocol.intervention_start)  # the first unit's start
    months = (w.post_end.year - first_start.year) * 12 + w.post_end.month - first_start.month + 1
    own = (w.post_end - first_start).days // 7 + 1 if weekly else months
    hist = design_history(protocol, panel, longest=math.ceil(own * 12 / 52) if weekly else own)
    step = 1 if weekly else 12 // hist.periods_per_year
    if not weekly:
        own = max(1, own // step)
    starts = {code.upper(): pd.Timestamp(s) for code, s in protocol.unit_starts}
    lost = [u for u in hist.treated if u.upper() not in starts]
    if lost:
        raise NotEvaluable(f"no start could be matched to the site's units {', '.join(lost)} in the data")
    offsets = {u: _offset(first_start, starts[u.upper()], weekly, step) for u in hist.treated}
    span = max(offsets.values())
    lag = _offset(first_start, w.post_start, weekly, step)  # a phase-in after each unit's own start
    H = len(hist.values)
    fake_pre, fake_follow, positions = fake_layout(H, hist.pre_periods, span, own - span)
    studentized = answer_estimator(protocol, hist) == "did_studentized"
    estimator = StaggeredPlacebo(
        transform="identity",  # the history is already on the analysis scale (logs, or points)
        n_draws=protocol.n_placebo_draws,
        seed=protocol.seed,
        studentized=studentized,
        phase_in=lag,
    )
    hoped = area_effect(hoped_for_percent, share, protocol.expected_direction, hist.scale)
    rows, curves = [], []
    for pool in hist.pools:
        placebos, reals = _fit_pool(estimator, hist, pool, offsets, positions, fake_pre, fake_follow, span)
        tests = FakeStartTests(placebos, 1.0, ALPHA)
        rows.append(
            _row(
                pool,
                own,
                len(hist.pools[pool]),
                placebos,
                reals,
                tests,
                fake_pre,
                fake_follow,
                hist,
                hoped,
                protocol.expected_direction,
            )
        )
        curves.append((pool, tests))
    notes = [*hist.notes]
    word = "week" if weekly else ("month" if step == 1 else "period")
    if fake_follow < own - span:
        notes.append(
            f"the history holds a fake follow-up of {fake_follow} {word}s for the last cohort, not its "
            f"{own - span}: the MDE shown is for the shorter follow-up"
        )
    notes.append(
        "a staggered site: sized with Callaway-Sant'Anna's placebo test, every cohort's start moved back into the history"
    )
    return build_site_design(
        protocol,
        hist,
        primary_estimator=STAGGERED_ESTIMATOR,
        planned_start=first_start,
        follow_up=own,
        hoped_for_percent=hoped_for_percent,
        share=share,
        hoped=hoped,
        rows=rows,
        tests=[(STAGGERED_ESTIMATOR, pool, own, tests) for pool, tests in curves],
        notes=tuple(notes),
        weekly=weekly,
    )


def _fit_pool(
    estimator: StaggeredPlacebo,
    hist: History,
    pool: str,
    offsets: dict[str, int],
    positions: list[int],
    fake_pre: int,
    fake_follow: int,
    span: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Placebo estimates (assignments x fake starts, the real one first) and the site's own at each fake start."""
    k = len(hist.treated)
    comps = list(hist.pools["protocol"] if pool == "nearest" else hist.pools[pool])
    units = [*hist.treated, *comps]
    Y = hist.values[units].to_numpy(dtype=float).T
    periods = hist.values.index
    cols, reals = [], []
    for first in positions:
        lo, hi = first - fake_pre, first + span + fake_follow
        rows = np.arange(len(units))
        if pool == "nearest":  # chosen at each fake start from its own pre-period, as it will be before the start
            n_near = len(hist.pools["nearest"])
            rows = nearest_sets(Y[:, lo:first], k, fake_pre, 1, n_near)[0]
        y = Y[rows][:, lo:hi]
        p = periods[lo:hi]
        names = tuple(units[i] for i in rows)
        design = Design(
            values=y,
            units=names,
            periods=p,
            treated=np.arange(len(rows)) < k,
            start=p[fake_pre],
            unit_starts=tuple(p[fake_pre + offsets[u]] if i < k else None for i, u in enumerate(names)),
            periods_per_year=hist.periods_per_year,
            outcome=hist.outcome,
        )
        result = estimator.fit(design)
        cols.append(result.placebo[:, 0])
        reals.append(float(result.overall.p_value))
    n = min(len(c) for c in cols)
    return np.column_stack([c[:n] for c in cols]), np.asarray(reals)


def _row(
    pool: str,
    own: int,
    n_comp: int,
    e: np.ndarray,
    p_values: np.ndarray,
    tests: FakeStartTests,
    fake_pre: int,
    fake_follow: int,
    hist: History,
    hoped: float,
    direction: str,
) -> dict[str, object]:
    q = critical_values(e, ALPHA)
    rejection = float(np.mean(p_values <= ALPHA))  # the site itself at each fake start, by the report's rule
    return {
        "estimator": STAGGERED_ESTIMATOR,
        "pool": pool,
        "follow_up": own,
        "n_comparators": n_comp,
        "fake_pre": fake_pre,
        "fake_post": fake_follow,
        "spread_factor": 1.0,
        "ci_width": float(np.mean(2 * q)),
        **power_columns(tests, rejection, len(p_values), hist.scale, hoped, direction),
    }
