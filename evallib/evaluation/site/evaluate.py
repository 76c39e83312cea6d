"""Evaluate one site from its protocol: the whole analysis behind a site report.

:func:`evaluate_site` never crashes on a site the data cannot support: it returns
a :class:`SiteEvaluation` whose ``status`` is ``"not evaluable"`` and whose
``reason`` says why in words. Broken input (a bad file, an outcome the data
lacks) still raises :class:`~evallib.errors.DataError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from evallib.errors import NotEvaluable
from evallib.evaluation.site.answer import Answer, site_answer
from evallib.evaluation.site.coverage import load_source, unit_kind
from evallib.evaluation.site.outcome import OutcomeAnalysis, analyse_outcome
from evallib.evaluation.site.robustness import Robustness
from evallib.evaluation.site.sampling import distinct_sets, smallest_p_value
from evallib.evaluation.site.staggered_site import StaggeredAnalysis, staggered_analysis, staggered_answer
from evallib.evaluation.site.waves import CCG_ERA_START, ProgrammeWaves, programme_waves
from evallib.methods.base.results import TIDY_COLUMNS, Estimate, tidy_frame
from evallib.methods.inference.decision import ALPHA, rejects
from evallib.protocol.params import COVID_START, AnalysisSpec, SiteProtocol
from evallib.protocol.windows import period_label
from evallib.sources.panel import Panel
from evallib.vocabulary import be, estimator_label, outcome_label, plural

#: End of the COVID-19 disruption of hospital activity counted as an overlap (the 2021/22 recovery year).
COVID_END = pd.Timestamp("2022-04-01")
#: NHS Digital's small-number rule as :mod:`evallib.reporting.disclosure` applies it (counts of 1-7 suppressed,
#: others rounded to the nearest 5); a test checks the two agree.
SMALL_COUNT, COUNT_ROUNDING = 7, 5


@dataclass(frozen=True)
class SiteEvaluation:
    """The result of evaluating one site (read-only).

    ``status`` is ``"evaluated"`` or ``"not evaluable"``; ``flags`` are the
    cautions a reader must see (short follow-up, evidence of diverging pre-period trends, ...).
    """

    protocol: SiteProtocol
    status: str
    reason: str = ""
    analyses: tuple[OutcomeAnalysis, ...] = ()
    flags: tuple[str, ...] = ()
    skipped_outcomes: dict[str, str] = field(default_factory=dict)
    programme: ProgrammeWaves | None = None
    #: Callaway-Sant'Anna per cohort and overall, when the treated units started at different dates.
    staggered: StaggeredAnalysis | None = None

    @property
    def evaluable(self) -> bool:
        """Whether the site was evaluated (else its status says why not)."""
        return self.status == "evaluated"

    @property
    def primary(self) -> OutcomeAnalysis | None:
        """The analysis of the protocol's primary outcome (None when it was not analysed)."""
        for a in self.analyses:
            if a.outcome == self.protocol.primary_outcome:
                return a
        return None

    @property
    def answer(self) -> Answer | None:
        """The site's answer on its primary outcome (None when not evaluated)."""
        a = self.primary
        if a is not None and self.staggered is not None:  # the staggered estimate answers; the rest contrast
            return staggered_answer(self.staggered, a, self.protocol.expected_direction)
        return None if a is None else site_answer(a, self.protocol.expected_direction)

    @property
    def robustness(self) -> Robustness | None:
        """The robustness checks of the answer: re-fits of the estimator it comes from (the staggered one for a
        site whose units started at different dates), None when not evaluated.
        """
        if self.staggered is not None:
            return self.staggered.robustness
        a = self.primary
        return None if a is None else a.robustness

    @property
    def rows(self) -> tuple[Estimate, ...]:
        """Every estimate of every outcome (and the programme's rows, if any) as tidy rows."""
        rows = [r for a in self.analyses for r in a.rows]
        if self.staggered is not None:
            rows.extend(self.staggered.rows)
        if self.programme is not None:
            rows.extend(self.programme.rows)
        return tuple(rows)

    def tidy(self) -> pd.DataFrame:
        """Every estimate of every outcome in one tidy table."""
        return tidy_frame(list(self.rows))

    def _repr_html_(self) -> str:
        """In JupyterLab: the status and the primary answer in a line, then every estimate as a table."""
        p = self.protocol
        if not self.evaluable:
            return f"<p><strong>{escape(p.site_id)}</strong>: not evaluable: {escape(self.reason)}.</p>"
        a = self.answer
        head = (
            ""
            if a is None
            else f" Primary estimate ({escape(a.label)}): {escape(a.conclusion)}, {escape(a.direction)}."
        )
        table = self.tidy().to_html(index=False, float_format=lambda x: f"{x:.4g}")
        return f"<p><strong>{escape(p.site_id)}</strong>: evaluated.{head} <code>.tidy()</code> gives this table.</p>{table}"

    def plot(self, *, ax: Any = None, **kwargs: Any) -> Any:
        """The primary outcome's DiD estimate among its placebo estimates, on ``ax``; returns the Figure.

        Each result has its own ``plot`` (``evaluation.primary.event_study.plot()``, ``.its.plot()``, ...).
        """
        a = self.primary
        if a is not None:
            return a.did.plot(ax=ax, **kwargs)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.8, 1.0)) if ax is None else ax.figure
        target = fig.add_subplot() if ax is None else ax
        target.axis("off")
        target.text(0, 0.5, f"{self.protocol.site_id} was not evaluated: nothing to plot", fontsize=10, va="center")
        return fig

    def to_json_dict(self) -> dict[str, Any]:
        """The analysis part of ``results.json`` (documented in the README).

        The file itself (:func:`~evallib.evaluation.record.results_file.results_json`) adds the provenance:
        what was run on what, which the analysis knows nothing of.
        """
        p = self.protocol
        prim = self.primary
        staggered = {"unit_starts": dict(p.unit_starts)} if p.unit_starts else {}  # only then: others unchanged
        return {
            "site_id": p.site_id,
            "site_name": p.site_name,
            "site_type": p.site_type,
            "care_model": p.care_model,
            "status": self.status,
            "reason": self.reason,
            "primary_outcome": p.primary_outcome,
            "expected_direction": p.expected_direction,
            "intervention_start": p.intervention_start,
            **staggered,
            "membership_confidence": p.membership_confidence,
            "flags": list(self.flags),
            "skipped_outcomes": self.skipped_outcomes,
            "coverage": None
            if prim is None
            else {
                "pre_periods": prim.coverage.n_pre,
                "post_periods": prim.coverage.n_post,
                "treated_units": list(prim.coverage.treated_used),
                "n_comparators": prim.coverage.n_comparators,
                "window": None
                if prim.coverage.windows is None
                else {
                    "pre_start": period_label(prim.coverage.windows.pre_start, prim.coverage.frequency),
                    "post_end": period_label(prim.coverage.windows.post_end, prim.coverage.frequency),
                    "cut": prim.coverage.window_cut,
                },
            },
            "breaks": [b.to_json_dict() for a in self.analyses for b in a.coverage.breaks],
            "answer": None if self.answer is None else self.answer.to_json_dict(),
            "results": [r.as_dict() for r in self.rows],
            "robustness": None if self.robustness is None else self.robustness.to_json_dict(),
            "growth": None if prim is None else _growth(prim),
            "result_columns": list(TIDY_COLUMNS),
        }


def _growth(a: OutcomeAnalysis) -> dict[str, float | None] | None:
    """Growth of the site and its comparison pool: last 12 months of follow-up vs the baseline year.

    The NHS England style of comparison ("growth in the outcome since baseline"),
    from the summed series; None for percentages. The site's growth is rounded as
    :func:`published_growth_pct` says, so that it cannot undo the rounding of its totals.
    """
    if a.is_proportion:
        return None
    t = a.trends
    year = a.periods_per_year
    post = t.index >= t.index[a.coverage.n_pre] if a.coverage.n_pre < len(t) else np.zeros(len(t), bool)
    base = t[~post].iloc[-year:].mean()
    last = t[post].iloc[-year:].mean()
    out: dict[str, float | None] = {}
    for col in ("site", "comparison"):
        out[f"{col}_growth_pct"] = float(100 * (last[col] / base[col] - 1)) if len(t[post]) else None
    counts = a.site_counts
    if counts is not None and out["site_growth_pct"] is not None:
        totals = (float(counts[~post].iloc[-year:].sum()), float(counts[post].iloc[-year:].sum()))
        out["site_growth_pct"] = published_growth_pct(out["site_growth_pct"], *totals)
    # The key keeps its name (results.json format); its value is in months whatever the data's frequency.
    out["months_in_follow_up_window"] = int(round(min(year, int(np.sum(post))) * 12 / year))
    return out


def published_growth_pct(pct: float, base_total: float, last_total: float) -> float | None:
    """A growth percentage of a site's counts as published: withheld (None) when either total is a small count
    (or zero), else rounded to a step of ``100 * 5 / smaller total`` percent (a power of ten, at least 0.01).

    The baseline total is published rounded to the nearest 5; an exact percentage beside it would leave one
    pair of whole totals that fits, undoing the rounding. At this step every base total the rounded one
    stands for fits the percentage with at least 5 whole last-year totals.
    """
    smaller = min(base_total, last_total)
    if not math.isfinite(pct) or not smaller >= SMALL_COUNT + 0.5:
        return None
    step = max(0.01, 10 ** math.ceil(math.log10(100 * COUNT_ROUNDING / smaller)))
    return round(round(pct / step) * step, 2)


def _noisier(a: OutcomeAnalysis) -> str:
    """How much noisier than its comparators the site was before the start, in words (all of them, or a share)."""
    c, pct = a.coverage, a.noise_percentile
    k, w = len(c.treated_used), c.period_word
    # A share that rounds to 100% without being all of them would read as "all": say "more than 99%".
    than = "every one of" if pct >= 99.95 else "more than 99% of" if pct >= 99.5 else f"{pct:.0f}% of"
    if k <= 1:
        return f"noisier than {than} its {plural(c.n_comparators, 'comparison ' + c.unit_kind)} ({w}-to-{w} variation)"
    sets = f"random sets of {k} comparison {c.units} (as many as the site has)"
    return f"noisier than {than} {sets} ({w}-to-{w} variation, averaged over the site's {c.units})"


def _drift_words(estimate: float, scale: str) -> str:
    """A pre-period trend difference in the reader's unit: percent a year for logs, percentage points for shares."""
    if not math.isfinite(estimate):
        return "drifting by an unknown amount"
    if scale == "log_per_year":
        size, unit = abs(100 * math.expm1(estimate)), "% a year"
        return f"{'rising' if estimate > 0 else 'falling'} by about {size:.1f}{unit}"
    return f"{'rising' if estimate > 0 else 'falling'} by about {abs(estimate):.1f} percentage points a year"


def _flags(protocol: SiteProtocol, analyses: tuple[OutcomeAnalysis, ...]) -> tuple[str, ...]:
    flags = []
    if protocol.membership_confidence != "high":
        flags.append(
            f"Membership confidence is {protocol.membership_confidence}: which trusts and CCGs make up this site was partly "
            "inferred from its geography; confirm it locally before relying on the result."
        )
    if "approximate" in protocol.notes:
        flags.append("The start date is approximate (the registry dates the announcement to the month or year only).")
    for a in analyses:
        c = a.coverage
        if a.outcome == protocol.primary_outcome and c.short_follow_up:
            # Said of any answer, clear or not: a short follow-up weakens a null and may miss later effects.
            flags.append(
                f"Short follow-up: only {c.in_periods(c.n_post)} after the start. Effects of new care models take "
                "years, so a longer follow-up may find a different effect; no clear effect over so short a time is "
                "weak evidence of no effect."
            )
        if a.volatile:
            flags.append(
                f"Before the start the site's {a.label} {be(a.label, past=True)} {_noisier(a)}: a plain placebo test "
                "is not reliable for such a site, so only the studentized test's p-value and interval are published "
                "for this outcome (the other estimates are shown without them)."
            )
        if a.pretrend_evidence:
            pt = a.pretrend
            flags.append(
                f"Evidence of diverging trends before the start for {a.label} (placebo test of the pre-period trend "
                f"difference, p = {pt.p_value:.3f}): the site's series was {_drift_words(pt.estimate, pt.scale)} "
                f"relative to its comparison pool, so the {estimator_label(a.primary_estimator)} estimate may partly "
                "reflect that divergence rather than the care model."
            )
        for b in c.breaks:
            flags.append(f"Level shift in the site's own {a.label} series: {b.words}.")
        if c.treated_not_in_data or c.treated_incomplete:
            gone = ", ".join(c.treated_not_in_data + c.treated_incomplete)
            flags.append(
                f"Not every one of the site's {c.units} could be analysed for {a.label} ({gone} lacked complete data)."
            )
        # Too few placebo assignments to reach 5%: fewer than 19 comparators for one treated unit, fewer distinct
        # sets than 20 (or draws) for several.
        n_treated = len(c.treated_used)
        reach = smallest_p_value(distinct_sets(c.n_comparators + n_treated, n_treated), a.did.placebo_draws)
        if not rejects(reach, ALPHA):
            flags.append(
                f"Only {c.n_comparators} comparison {c.units} for {a.label}: too few for a finite 95% placebo interval."
            )
    return tuple(dict.fromkeys(flags))


def evaluate_site(protocol: SiteProtocol, panel: Panel | None = None) -> SiteEvaluation:
    """Run the protocol's analysis for one site.

    Parameters
    ----------
    protocol : SiteProtocol
        The site's validated params.
    panel : Panel, optional
        Data to use instead of the protocol's ``data_source`` (for tests and power checks).

    Returns
    -------
    SiteEvaluation
        ``status="not evaluable"`` with a reason when the data cannot support the
        protocol: follow-up overlapping COVID-19 (from March 2020), none of the site's units in
        the data, too few pre- or post-period months, or an empty comparison pool.

    Notes
    -----
    For each outcome: a two-way fixed-effects DiD (log outcome, or percentage points
    for proportions) of the site's units (CCGs or trusts) against the comparison pool with
    placebo-in-space inference; a pre-trend check; and a segmented ITS of the site's
    own series with Fourier seasonality and Newey-West SEs. DiD assumes parallel
    trends; the ITS assumes the pre-period trend would have continued.
    """
    w = protocol.windows
    primary, *secondary = protocol.analyses
    panels: dict[str, Panel] = {}

    def data_for(spec: AnalysisSpec) -> Panel:
        key = repr(spec.data_source)
        if key not in panels:
            own = panel is not None and spec.data_source == protocol.data_source
            panels[key] = panel if own else load_source(spec.data_source)  # type: ignore[assignment]
        return panels[key]

    try:
        if protocol.not_evaluable_reason:
            raise NotEvaluable(protocol.not_evaluable_reason)
        if w.follow_up_overlaps(COVID_START, COVID_END):  # a 2031 start is not a COVID overlap
            raise NotEvaluable(
                f"follow-up ({w.follow_up_text()}) overlaps the COVID-19 disruption of "
                "hospital activity from March 2020, which would swamp any effect of the care model"
            )
        if not primary.treated_units:
            raise NotEvaluable(
                f"the protocol lists no {unit_kind(primary.data_source)} for this site, so the "
                f"{outcome_label(primary.outcome)} data cannot measure it"
            )
        analyses = [analyse_outcome(protocol, data_for(primary), primary)]
        staggered = (  # a volatile site's placebo test is studentized, as its common analysis is
            staggered_analysis(
                protocol,
                data_for(primary),
                primary,
                studentized=analyses[0].volatile,
                pretrend=analyses[0].pretrend,
                pretrend_draws=analyses[0].did.placebo_draws,  # the pre-trend test shares the DiD's draws
            )
            if protocol.staggered
            else None
        )
    except NotEvaluable as exc:
        return SiteEvaluation(protocol=protocol, status="not evaluable", reason=str(exc))
    skipped: dict[str, str] = {}
    for spec in secondary:
        try:
            if not spec.treated_units:
                raise NotEvaluable(f"the protocol lists no {unit_kind(spec.data_source)} for this outcome")
            analyses.append(analyse_outcome(protocol, data_for(spec), spec))
        except NotEvaluable as exc:
            skipped[spec.outcome] = str(exc)
    result = tuple(analyses)
    flags = _flags(protocol, result)
    if staggered is not None:
        flags = (staggered.flag(protocol.intervention_start), *flags)
    programme = programme_waves(protocol, data_for(primary), primary) if protocol.site_type == "ICS" else None
    return SiteEvaluation(
        protocol=protocol,
        status="evaluated",
        analyses=result,
        flags=flags,
        skipped_outcomes=skipped,
        programme=programme,
        staggered=staggered,
    )


def data_windows(protocols: list[SiteProtocol]) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """Every (bundled dataset, start, end) the protocols' analyses will harmonise, for
    :func:`~evallib.evaluation.site.units.prefetch`: each analysis window and, for ICSs, the whole span of the
    ICS-wave analysis.
    """
    out: dict[tuple[str, pd.Timestamp, pd.Timestamp], None] = {}
    for p in protocols:
        w = p.windows
        for spec in p.analyses:
            if isinstance(spec.data_source, str):
                out[(spec.data_source, *w.span)] = None
        if p.site_type == "ICS" and isinstance(p.data_source, str):
            span = load_source(p.data_source).periods(p.primary_outcome)
            if unit_kind(p.data_source) == "CCG":
                span = span[span >= CCG_ERA_START]
            out[(p.data_source, span.min(), span.max())] = None
    return list(out)
