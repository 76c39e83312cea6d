"""A site whose treated units started at different dates: Callaway-Sant'Anna per cohort and overall.

The params file gives each treated unit its own start (``intervention_start`` as a mapping, protocol/staggered.py).
The site's units and comparison pool are the common analysis's (:func:`~evallib.evaluation.site.coverage.analysis_frame`:
the same windows, pool rules and data-quality screens); each cohort is compared only with units not yet started
(never-treated ones and later cohorts before their start), and the placebo test re-assigns the cohorts' start
dates to other units (:class:`~evallib.methods.did.rollout.StaggeredPlacebo`). The site's answer is the
overall effect; the common-start estimates, which count later units' months before their start as follow-up, are
shown beside it for contrast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from evallib.errors import NotEvaluable
from evallib.evaluation.site.answer import Answer, View, conclusion, sampled_placebo
from evallib.evaluation.site.coverage import analysis_frame, unit_kind
from evallib.evaluation.site.outcome import OutcomeAnalysis, outcome_design
from evallib.evaluation.site.robustness import FIT_ERRORS, Robustness
from evallib.evaluation.site.rollout_checks import check_staggered_robustness
from evallib.evaluation.site.sampling import sampled
from evallib.evaluation.site.units import area_data
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.rollout import StaggeredPlacebo, StaggeredPlaceboResult
from evallib.methods.did.stacked import StackedDiD, StackedDiDResult
from evallib.methods.inference.power import placebo_mde
from evallib.protocol.params import AnalysisSpec, SiteProtocol
from evallib.protocol.windows import period_label, period_text
from evallib.sources.bundled import RATE_OUTCOMES
from evallib.sources.files import FileSource
from evallib.sources.panel import Panel
from evallib.vocabulary import outcome_label, plural, unit_plural

#: The answer's estimator, in results.json (``answer.estimator``) and in words.
ESTIMATOR = "callaway_santanna"
LABEL = "Callaway-Sant'Anna (each cohort against units not yet started)"


@dataclass(frozen=True)
class StaggeredAnalysis:
    """Callaway-Sant'Anna effects of a staggered site on its primary outcome: overall and per cohort.

    ``starts`` maps each analysed unit of the site to its start; ``result`` holds the estimates with their
    placebo tests (rows: ``overall``, then ``cohort_<YYYY-MM>``); ``n_comparators`` counts the never-treated units.
    """

    outcome: str
    label: str
    result: StaggeredPlaceboResult = field(repr=False)
    starts: tuple[tuple[str, pd.Timestamp], ...]
    units: str
    n_comparators: int
    is_proportion: bool = False
    #: The same estimator on the data before the first start, every start moved back by one shift (None: too
    #: few periods before the first start for it).
    placebo_in_time: Estimate | None = None
    #: The placebo test ranks estimates scaled by pre-period swing (a volatile site).
    studentized: bool = False
    #: Cohorts whose follow-up is shorter than the protocol's ``min_post_periods``: (start, periods, word).
    short_cohorts: tuple[tuple[pd.Timestamp, int, str], ...] = ()
    #: The answer's robustness checks: re-fits of the Callaway-Sant'Anna estimator itself (None: not run).
    robustness: Robustness | None = None
    #: The stacked DiD beside it (one sub-experiment per cohort, clean comparisons; None when it cannot be fitted).
    stacked: StackedDiDResult | None = None
    #: Periods after each unit's own start left out of its effect (``post_period_start`` after the first start).
    phase_in: int = 0
    #: One period in words (``month``), for the phase-in's words.
    period_word: str = "month"

    @property
    def rows(self) -> tuple[Estimate, ...]:
        """The overall effect, each cohort's, the placebo in time when it ran, then the stacked DiD's (tidy rows)."""
        return (
            self.result.rows
            + (() if self.placebo_in_time is None else (self.placebo_in_time,))
            + (() if self.stacked is None else self.stacked.rows)
        )

    @property
    def overall(self) -> Estimate:
        """The overall effect (cohorts weighted by their size)."""
        return self.result.overall

    @property
    def mde(self) -> float:
        """Smallest overall effect (log scale, or points) the placebo test detects with 80% power."""
        return placebo_mde(self.result.placebo_estimates, direction="either")

    def cohort_members(self) -> list[tuple[pd.Timestamp, list[str]]]:
        """Each cohort's start with its units, in start order."""
        by: dict[pd.Timestamp, list[str]] = {}
        for unit, start in self.starts:
            by.setdefault(start, []).append(unit)
        return sorted(by.items())

    @property
    def frequency(self) -> str:
        """The data's frequency, from its period word (``weekly`` for weeks, else ``monthly``: dated by months)."""
        return "weekly" if self.period_word == "week" else "monthly"

    def when(self, ts: pd.Timestamp) -> str:
        """A start in words: ``Apr 2016``, or for weekly data its Monday, ``1 Jan 2018``."""
        return period_text(ts, self.frequency)

    def flag(self, first: str) -> str:
        """The caution every staggered report carries, in words (with any cohort whose follow-up is short)."""
        when = self.when
        cohorts = "; ".join(f"{', '.join(u)} from {when(s)}" for s, u in self.cohort_members())
        short = "".join(
            f" The cohort starting {when(s)} has only {plural(n, word)} of follow-up: its effect is imprecise."
            for s, n, word in self.short_cohorts
        )
        phase = (
            f" Each {self.units.removesuffix('s')}'s first {plural(self.phase_in, self.period_word)} from its own start are a "
            "phase-in, left out of its effect (post_period_start)."
            if self.phase_in
            else ""
        )
        return (
            f"The site's {self.units} started at different dates ({cohorts}). The answer compares each cohort only "
            f"with {self.units} not yet started (Callaway-Sant'Anna); the other estimates assume every one started in "
            f"{when(pd.Timestamp(first))}, so they count later {self.units}' {self.period_word}s before their start as "
            "follow-up, "
            "and are shown for contrast only; the robustness checks re-fit Callaway-Sant'Anna itself."
            + (
                f" The site is noisier than most {self.units}, so its placebo test scales each estimate by the "
                "pre-period swing of the units it treats (studentized)."
                if self.studentized
                else ""
            )
            + short
            + phase
        )


def _measure(spec: AnalysisSpec, has_denominator: bool) -> tuple[str, int]:
    """As the common analysis reads the outcome: a count, or the declared (or bundled) rate or proportion."""
    if not has_denominator:
        return "count", 1
    if isinstance(spec.data_source, FileSource):
        return spec.data_source.kind, spec.data_source.per
    if spec.outcome in RATE_OUTCOMES:
        return "rate", RATE_OUTCOMES[spec.outcome]
    return "proportion", 1


def staggered_analysis(
    protocol: SiteProtocol,
    panel: Panel,
    spec: AnalysisSpec,
    *,
    studentized: bool = False,
    pretrend: Estimate | None = None,
    pretrend_draws: int = 0,
) -> StaggeredAnalysis:
    """Callaway-Sant'Anna of the site's primary outcome (``panel``: its data) with each unit's own start;
    raises NotEvaluable. ``studentized`` for a volatile site (the common analysis's rule): the placebo test
    then ranks each assignment's estimate scaled by its units' pre-period swing. ``pretrend`` is the pre-trend
    test of the data before the first start (the common analysis's, whose start is the first start), read by
    the robustness checks (``pretrend_draws``: the random placebo assignments its p-value ranks among, 0 when
    exhaustive); the stacked DiD is fitted beside the answer.
    """
    # Every month from the pre-period to the end (a phase-in's months are other cohorts' comparisons).
    whole = replace(protocol, post_period_start="")
    values, denom, cov = analysis_frame(whole, panel, spec)
    measure, per = _measure(spec, denom is not None)
    design = outcome_design(spec.outcome, values, denom, cov, whole.windows.post_start, measure, per)
    w = protocol.windows
    # post_period_start after the first start: the same phase-in after every unit's own start, in periods.
    lag = int(((design.periods >= whole.windows.post_start) & (design.periods < w.post_start)).sum())
    areas = area_data(panel, spec.outcome, spec.treated_units, *w.span)
    start_of: dict[str, pd.Timestamp] = {}
    for code, month in protocol.unit_starts:
        for area in areas.areas_for([code]) | {code}:
            start = pd.Timestamp(month)
            start_of[area.upper()] = min(start_of.get(area.upper(), start), start)
    starts = {u: start_of.get(u.upper()) for u in cov.treated_used}
    lost = [u for u, s in starts.items() if s is None]
    if lost:
        word = "unit" if len(lost) == 1 else "units"
        raise NotEvaluable(f"no start could be matched to the site's {word} {', '.join(lost)} in the data")
    periods = set(design.periods)
    outside = [u for u, s in starts.items() if s not in periods]
    if outside:
        raise NotEvaluable(
            f"the start of {', '.join(outside)} is not a period of the analysed data (check intervention_start)"
        )
    design = replace(design, unit_starts=tuple(starts.get(u) for u in design.units))
    is_prop = measure == "proportion"
    estimator = StaggeredPlacebo(
        transform="identity" if is_prop else "log",
        n_draws=protocol.n_placebo_draws,
        seed=protocol.seed,
        studentized=studentized,
        phase_in=lag,
    )
    result = estimator.fit(design)
    fake = fake_start_design(design)
    in_time = None
    if fake is not None:
        try:
            row = estimator.fit(fake).overall
        except FIT_ERRORS:  # a phase-in longer than the fake follow-up: the check is "not run"
            row = None
        if row is not None:
            term = f"placebo_in_time_{period_label(fake.start, panel.frequency)}"
            in_time = replace(row, method=f"{row.method}_placebo_in_time", term=term)
    stacked = None
    why_no_stacked = ""
    try:
        stacked = StackedDiD(
            transform=estimator.transform,
            n_draws=estimator.n_draws,
            seed=estimator.seed,
            studentized=studentized,
            phase_in=lag,
        ).fit(design)
    except FIT_ERRORS as e:  # no cohort with a clean comparison over the window: the check is "not run"
        why_no_stacked = f"the stacked DiD could not be fitted ({e})"
    robust = check_staggered_robustness(
        estimator,
        design,
        result,
        placebo_in_time=in_time,
        pretrend=pretrend,
        estimator_name=ESTIMATOR,
        estimator_label=LABEL,
        is_proportion=is_prop,
        stacked=None if stacked is None else stacked.overall,
        why_no_stacked=why_no_stacked,
        stacked_draws=0 if stacked is None else stacked.placebo_draws,
        pretrend_draws=pretrend_draws,
    )
    return StaggeredAnalysis(
        outcome=spec.outcome,
        label=outcome_label(spec.outcome),
        result=result,
        starts=tuple((u, s) for u, s in starts.items() if s is not None),
        units=cov.units,
        n_comparators=cov.n_comparators,
        is_proportion=is_prop,
        placebo_in_time=in_time,
        studentized=studentized,
        short_cohorts=tuple(
            (s, n, cov.period_word)
            for s in sorted({x for x in starts.values() if x is not None})
            if (n := int((design.periods >= s).sum()) - lag) < protocol.min_post_periods
        ),
        phase_in=lag,
        period_word=cov.period_word,
        robustness=robust,
        stacked=stacked,
    )


def fake_start_design(design: Design) -> Design | None:
    """The data before the first start with every start moved back by one shift, keeping the cohorts' spacing:
    the last fake cohort gets up to a year of fake follow-up before the real first start. None when the periods
    before the first start cannot hold the shifted cohorts with at least two periods before the first of them.
    """
    assert design.unit_starts is not None
    pos = {p: i for i, p in enumerate(design.periods)}
    real = sorted({pos[s] for s in design.unit_starts if s is not None})
    first, span = real[0], real[-1] - real[0]
    follow = min(design.periods_per_year, (first - span) // 2)
    shift = span + follow
    if follow < 1 or first - shift < 2:
        return None
    keep = np.arange(design.n_periods) < first

    def cut(m: np.ndarray | None) -> np.ndarray | None:
        return None if m is None else m[:, keep]

    periods = design.periods[keep]
    return replace(
        design,
        values=design.values[:, keep],
        periods=periods,
        start=periods[first - shift],
        unit_starts=tuple(None if s is None else periods[pos[s] - shift] for s in design.unit_starts),
        counts=cut(design.counts),
        exposure=cut(design.exposure),
    )


def staggered_answer(st: StaggeredAnalysis, common: OutcomeAnalysis, expected_direction: str) -> Answer:
    """The site's answer from the overall Callaway-Sant'Anna effect; the common-start estimates for contrast."""
    row = st.overall
    main = conclusion(row)
    direction = (
        ("hoped for" if main == expected_direction else "opposite") if main in ("decrease", "increase") else "unclear"
    )
    why = (
        f"it assumes every unit started at the first start, so later units' {st.period_word}s before their own start "
        "count as follow-up"
    )
    others = []
    for name, h in common.headline.items():
        c = conclusion(h.row)
        agrees = c == main or c == "unknown"
        label = f"{h.label} (one common start)"
        others.append(View(name, label, h.row, c, agrees, "" if agrees else why, **sampled_placebo(h)))
    draws, error = sampled(row, st.result)  # (0, 0.0) when every assignment was tried: no field is written
    return Answer(
        estimator=ESTIMATOR,
        label=LABEL,
        row=row,
        conclusion=main,
        direction=direction,
        others=tuple(others),
        mde=st.mde,
        # The start dates go to random units: the p-value is sampled, and the answer says so (as results.json does).
        placebo_draws=draws,
        p_value_mc_error=error,
        # Judged by re-fits of this estimator itself (rollout_checks.py), by the common-start sites' rule.
        verdict=st.robustness.verdict
        if st.robustness is not None
        else ("no clear effect" if main == "no clear effect" else "not confirmed"),
    )


def staggered_data_problem(protocol: SiteProtocol, periods: pd.Index, units: set[str]) -> str:
    """What the data reveal about a staggered protocol, before any kernel starts (empty string when nothing).

    Every start must be a period of the data after its first one (a period before it to compare with), and
    some unit outside the site must remain, or the last cohort has nothing to compare with and the placebo
    test no unit to give a start to. The pool is the analysis's: the include or exclude lists, then only the
    units of ``design_pool`` when the params file fixes one (it can only narrow the pool).
    """
    if not protocol.staggered:
        return ""
    known = set(pd.DatetimeIndex(periods)) if len(periods) else set()
    first = min(known) if known else None
    bad = [c for c, month in protocol.unit_starts if pd.Timestamp(month) not in known or pd.Timestamp(month) == first]
    if bad:
        freq = getattr(protocol.data_source, "frequency", "monthly")
        span = f"{period_label(min(known), freq)} to {period_label(max(known), freq)}" if known else "no periods"
        return (
            f"field 'intervention_start' (site {protocol.site_id}) gives {', '.join(bad)} a start outside the data (its periods run {span}, "
            "and a start needs a period of the data before it). Check the start or the data source."
        )
    upper = {u.upper() for u in units}
    treated = set(protocol.treated_units)
    if protocol.comparison_include:
        pool = {c for c in protocol.comparison_include if c in upper} - treated
    else:
        pool = upper - treated - set(protocol.comparison_exclude)
    if protocol.design_pool and pool:
        # The analysis keeps only the pool chosen at design time (coverage.py): the same restriction, never a widening.
        kept = pool & {c.upper() for c in protocol.design_pool}
        kind = unit_kind(protocol.data_source)
        if len(kept) < min(len(pool), max(1, len(protocol.unit_starts))):
            return (
                f"field 'design_pool' (site {protocol.site_id}) leaves {plural(len(kept), kind)} that never "
                f"started to compare with (of {len(pool)} in the data outside the site and its exclusions); "
                + (
                    "no cohort has a comparison"
                    if not kept
                    else f"the placebo test gives the {len(protocol.unit_starts)} starts to other units, so it needs "
                    "at least as many"
                )
                + ". Re-run `evallib design` for the site, or remove design_pool to use the protocol's whole pool."
            )
        pool = kept
    if not pool:
        last = max(s for _, s in protocol.unit_starts)
        late = ", ".join(c for c, s in protocol.unit_starts if s == last)
        return (
            f"field 'intervention_start' (site {protocol.site_id}) leaves the cohort starting {last} ({late}) no comparison: every other "
            f"{unit_kind(protocol.data_source)} in the data is treated, so none is not yet treated after {last}. "
            "Add units that never received the intervention to the data (or comparison_include)."
        )
    if len(pool) < len(protocol.unit_starts):
        return (
            f"field 'treated_units' (site {protocol.site_id}) lists {len(protocol.unit_starts)} units with their own starts but only "
            f"{len(pool)} {unit_plural(unit_kind(protocol.data_source))} could compare with them; the placebo test "
            "gives the starts to other units, so it needs at least as many. Add never-treated units to the data."
        )
    return ""
