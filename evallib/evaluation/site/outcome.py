"""The analysis of one outcome of one site.

For every outcome: the DiD with placebo inference and its pre-trend test, the rate ratio, an
event study and the site's own series (segmented regression with REML AR(1) errors, a
description whose intervals are approximate). For the primary outcome also every headline
estimator (:mod:`evallib.evaluation.site.estimators`) and the robustness checks of the protocol's
primary estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from evallib.evaluation.site.coverage import Coverage, analysis_frame
from evallib.evaluation.site.estimators import HEADLINE_ESTIMATORS, PERCENT_SCALES, DesignData, Headline, fit_headlines
from evallib.evaluation.site.mde import answer_mde
from evallib.evaluation.site.robustness import Robustness, check_robustness
from evallib.evaluation.site.verdict import PRETREND_ALPHA
from evallib.evaluation.site.volatile import VOLATILE_PERCENTILE, site_noise_percentile, withhold, withhold_headline
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, tidy_frame
from evallib.methods.did.event_study import EventStudy, EventStudyResult
from evallib.methods.did.rate_ratio import RateRatioResult
from evallib.methods.did.twfe import DiDResult, pretrend_test
from evallib.methods.inference.decision import rejects
from evallib.methods.its.controlled import ControlledITSResult
from evallib.methods.its.model import ITSResult
from evallib.methods.its.segmented import SegmentedITS
from evallib.protocol.params import AnalysisSpec, SiteProtocol
from evallib.sources.bundled import RATE_OUTCOMES
from evallib.sources.files import FileSource
from evallib.sources.panel import Panel
from evallib.vocabulary import outcome_label

#: Estimators fitted for secondary outcomes (the primary outcome gets every headline estimator).
SECONDARY_ESTIMATORS = ("did", "did_studentized", "rate_ratio")


@dataclass(frozen=True)
class OutcomeAnalysis:
    """All estimates for one outcome of one site.

    ``headline`` maps each headline estimator's name to its estimate (every one for the primary
    outcome, the DiD family and rate ratio for the others); ``primary_estimator`` names the one
    the protocol leads with; ``its`` is the site's own series (a description: approximate
    intervals); ``controlled`` the controlled ITS with placebo units (primary outcome only).
    """

    outcome: str
    is_proportion: bool
    coverage: Coverage
    trends: pd.DataFrame = field(repr=False)
    headline: dict[str, Headline] = field(repr=False)
    pretrend: Estimate
    its: ITSResult
    event_study: EventStudyResult | None = None
    event_bin_periods: int = 12
    primary_estimator: str = "did"
    robustness: Robustness | None = None
    volatile: bool = False
    noise_percentile: float = float("nan")
    measure: str = "count"
    per: int = 1
    site_counts: pd.Series | None = field(default=None, repr=False)

    @property
    def periods_per_year(self) -> int:
        """Periods a year of the outcome's data (12 monthly, 4 quarterly, 1 yearly)."""
        return self.coverage.periods_per_year

    @property
    def label(self) -> str:
        """The outcome in words; a rate says per how many people ("admissions per 1,000 people")."""
        if self.measure == "rate" and self.outcome in RATE_OUTCOMES:  # its name already says "per head"
            return f"{outcome_label(self.outcome)} (per {self.per:,} residents)"
        if self.measure == "rate":
            return (
                f"{outcome_label(self.outcome)} per {self.per:,} people"
                if self.per != 1
                else f"{outcome_label(self.outcome)} per person"
            )
        return outcome_label(self.outcome)

    @property
    def did(self) -> DiDResult:
        """The plain placebo DiD (fitted for every outcome)."""
        return self.headline["did"].result

    @property
    def rate(self) -> RateRatioResult | None:
        """The rate ratio, when fitted."""
        h = self.headline.get("rate_ratio")
        return None if h is None else h.result

    @property
    def controlled(self) -> ControlledITSResult | None:
        """The controlled ITS with placebo units (primary outcome only)."""
        h = self.headline.get("controlled_its")
        return None if h is None else h.result

    @property
    def main(self) -> Headline:
        """The estimate the findings lead with: the protocol's primary estimator (DiD if it was not fitted)."""
        return self.headline.get(self.primary_estimator, self.headline["did"])

    @property
    def mde(self) -> float:
        """Smallest effect (log scale or points) the answer's own test would detect with 80% power
        (:func:`~evallib.evaluation.site.mde.answer_mde`: the primary estimator's placebo distribution).
        """
        return answer_mde(self.main, self.headline["did"])

    @property
    def rows(self) -> tuple[Estimate, ...]:
        """Every estimate of this outcome, in the order of the tidy table."""
        rows: list[Estimate] = [self.headline["did"].row, self.pretrend]
        if "rate_ratio" in self.headline:
            rows.append(self.headline["rate_ratio"].row)
        if self.event_study is not None:
            rows.extend([*self.event_study.rows, self.event_study.pretrend])
        rows.extend(self.its.rows)
        if self.controlled is not None:
            rows.extend(self.controlled.rows)
        rows.extend(h.row for n, h in self.headline.items() if n not in ("did", "rate_ratio", "controlled_its"))
        if self.robustness is not None:
            rows.extend(self.robustness.rows)
        return tuple(rows)

    def tidy(self) -> pd.DataFrame:
        """Every estimate of this outcome in one tidy table."""
        return tidy_frame(list(self.rows))

    def _repr_html_(self) -> str:
        return self.tidy().to_html(index=False, float_format=lambda x: f"{x:.4g}")

    @property
    def pretrend_evidence(self) -> bool:
        """The one pre-specified pre-trend test (placebo test of the linear pre-trend difference) rejects at 5%.

        A single test at 5%, so that with parallel trends it fires in 5% of sites (two tests at
        10% fired in 14%); the event-study leads are shown as a description, not a second test.
        """
        p = self.pretrend.p_value  # NaN (withheld) for a volatile site: not assessable, never "evidence"
        return rejects(p, PRETREND_ALPHA)


def analyse_outcome(protocol: SiteProtocol, panel: Panel, spec: AnalysisSpec | str) -> OutcomeAnalysis:
    """Every estimate for one outcome of a site (``spec``: the outcome, its source and treated units).

    The steps: the data within the windows and the comparison pool (:func:`analysis_frame`); the design,
    built once (:func:`outcome_design`); the series the report draws (:func:`trend_table`); the headline
    estimators with the volatile-site rule (:func:`fit_answers`); the pre-trend test, the site's own series and
    the event study (descriptions and checks of the design); for the primary outcome, the robustness checks,
    each a re-fit of the estimator the answer comes from.
    """
    if isinstance(spec, str):
        spec = AnalysisSpec(spec, protocol.data_source, protocol.treated_units, spec == protocol.primary_outcome)
    values, denom, cov = analysis_frame(protocol, panel, spec)
    protocol = cov.applied_to(protocol)  # the window as analysed: cut at a level shift in the site's own series
    measure, per = _measure(spec, denom)
    is_prop = measure == "proportion"
    data = DesignData(
        outcome_design(spec.outcome, values, denom, cov, protocol.windows.post_start, measure, per),
        transform="identity" if is_prop else "log",
        n_draws=protocol.n_placebo_draws,
        seed=protocol.seed,
    )
    headline, volatile, noise_pct = fit_answers(data, spec.primary, is_prop)
    pretrend = _pretrend(data, is_prop, volatile)
    event_study, bin_periods = _event_study(data, cov, is_prop, volatile)
    analysis = OutcomeAnalysis(
        outcome=spec.outcome,
        is_proportion=is_prop,
        coverage=cov,
        trends=trend_table(data.design, protocol.windows.pre_end),
        headline=headline,
        pretrend=pretrend,
        its=_own_series(data, measure),
        event_study=event_study,
        event_bin_periods=bin_periods,
        primary_estimator=("did_studentized" if volatile else protocol.primary_estimator) if spec.primary else "did",
        volatile=volatile,
        noise_percentile=noise_pct,
        measure=measure,
        per=per,
        site_counts=values[list(cov.treated_used)].sum(axis=1),
    )
    if not spec.primary:
        return analysis
    es = event_study
    leads = {} if es is None else {e: r.estimate for e, r in zip(es.event_times, es.rows, strict=True) if e < 0}
    sc = headline.get("synthetic_control")
    # Every check re-fits the estimator the answer comes from (the studentized DiD for a volatile site).
    robust = check_robustness(
        main=analysis.main,
        design=data,
        coverage=cov,
        is_proportion=is_prop,
        values=data.design.frame() if measure == "rate" else values,
        site_series=data.design.treated_series(),
        leads={**leads, es.reference: 0.0} if es is not None else None,
        n_post_bins=0 if es is None else sum(e >= 0 for e in es.event_times),
        synth=None if sc is None else sc.result,
        pretrend=pretrend,
        pretrend_draws=analysis.did.placebo_draws,  # the pre-trend test shares the DiD's draws and seed
    )
    return replace(analysis, robustness=robust)


def outcome_design(
    outcome: str,
    values: pd.DataFrame,
    denom: pd.DataFrame | None,
    cov: Coverage,
    start: pd.Timestamp,
    measure: str,
    per: int,
) -> Design:
    """The outcome's design, built once: counts as they are; a rate as events per ``per`` people and a
    proportion as a percentage, each with its counts and denominator (the rate ratio models the counts).
    """
    if measure == "rate" and denom is not None:
        unit_values = per * values / denom
    elif measure == "proportion" and denom is not None:
        unit_values = 100 * values / denom
    else:
        unit_values = values
    return Design.from_wide(
        unit_values,
        list(cov.treated_used),
        start,
        counts=values if denom is not None else None,
        exposure=denom,
        measure=measure if measure in ("count", "rate", "proportion") else "level",  # type: ignore[arg-type]
        per=per,
        periods_per_year=cov.periods_per_year,
        outcome=outcome,
    )


def trend_table(design: Design, pre_end: pd.Timestamp) -> pd.DataFrame:
    """The site and its comparison pool over time, as the report draws them: a percentage as it is, counts
    and rates indexed to the last pre-period year (= 100).
    """
    site = design.treated_series()
    comparison = design.comparison_series()
    if design.measure == "proportion":
        trends = pd.DataFrame({"site": site, "comparison": comparison})
    else:
        base = np.flatnonzero(design.periods <= pre_end)[-design.periods_per_year :]
        trends = pd.DataFrame(
            {
                "site": 100 * site / site.iloc[base].mean(),
                "comparison": 100 * comparison / comparison.iloc[base].mean(),
            }
        )
    trends.index.name = "period"
    return trends


def fit_answers(data: DesignData, primary: bool, is_prop: bool) -> tuple[dict[str, Headline], bool, float]:
    """The headline estimators (all of them for the primary outcome), with the volatile-site rule applied:
    a site noisier before the start than 90% of its placebos keeps only the studentized test's inference.
    """
    headline = fit_headlines(data, HEADLINE_ESTIMATORS if primary else SECONDARY_ESTIMATORS)
    if is_prop:
        headline = {n: _rescale_headline(h) for n, h in headline.items()}
    noise_pct = site_noise_percentile(headline["did"].result.volatility, data.seed)
    volatile = noise_pct >= VOLATILE_PERCENTILE
    if volatile:  # only the studentized test allows for the site's own noise
        headline = {n: h if n == "did_studentized" else withhold_headline(h) for n, h in headline.items()}
    return headline, volatile, noise_pct


def _pretrend(data: DesignData, is_prop: bool, volatile: bool) -> Estimate:
    """The one pre-specified pre-trend test, in points a year for a percentage, withheld for a volatile site."""
    pretrend = pretrend_test(data.design, transform=data.transform, n_draws=data.n_draws, seed=data.seed)
    if is_prop:
        pretrend = _with_scale(pretrend, "percentage_points_per_year")
    return withhold(pretrend) if volatile else pretrend


def _own_series(data: DesignData, measure: str) -> ITSResult:
    """The site's own series: a description (what changed at the start), with REML AR(1) errors, whose
    intervals reach their nominal coverage in the Monte Carlo suite.
    """
    ppy = data.periods_per_year
    harmonics = seasonal_harmonics(ppy)
    its = SegmentedITS(
        transform=data.transform,
        seasonality="fourier" if harmonics else "none",
        harmonics=harmonics,
        periods_per_year=ppy,
        horizons=(ppy, 2 * ppy),
        errors="ar1_reml",
        outcome_label=data.outcome,
        seed=data.seed,
    ).fit(data.design)
    if measure == "proportion":
        return _rescale_its(its)
    if measure == "rate":  # a sum of rates over the follow-up is not a number of events
        return replace(its, rows=tuple(r for r in its.rows if r.term != "cumulative_effect"))
    return its


def _event_study(data: DesignData, cov: Coverage, is_prop: bool, volatile: bool) -> tuple[EventStudyResult | None, int]:
    """The event study and its bin length in periods (None without one post and two pre bins).

    Whole one-year bins when there are two pre-period years (NHS England's two-year baseline): a year's mean
    averages out seasonality, which half-year bins (winter against summer) leave in every lead, and most
    month-to-month noise, which the parallel-trends sensitivity would otherwise read as departures from
    parallel trends. Else half-year bins (yearly data: one-year bins).
    """
    ppy = cov.periods_per_year
    bin_periods = ppy if cov.n_pre >= 2 * ppy and cov.n_post >= ppy else max(1, ppy // 2)
    if cov.n_post < bin_periods or cov.n_pre < 2 * bin_periods:
        return None, bin_periods
    es = EventStudy(
        transform=data.transform,
        bin_periods=bin_periods,
        reference=-1,
        inference="placebo_in_space",
        n_draws=data.n_draws,
        seed=data.seed,
        outcome_label=data.outcome,
    ).fit(data.design)
    if volatile:
        es = replace(es, rows=tuple(withhold(r) for r in es.rows), pretrend=withhold(es.pretrend))
    if is_prop:
        es = replace(es, rows=tuple(_with_scale(r, "percentage_points") for r in es.rows))
    return es, bin_periods


def seasonal_harmonics(periods_per_year: int) -> int:
    """Fourier pairs for a series with this many periods a year: two for monthly data, one for quarterly
    (a second pair is degenerate at four periods: its sine is zero), none for yearly data.
    """
    return min(2, (periods_per_year - 1) // 2)


def _measure(spec: AnalysisSpec, denom: pd.DataFrame | None) -> tuple[str, int]:
    """What the outcome is (count, rate or proportion) and a rate's multiplier: declared for the evaluator's
    files (``data_source.measure``), a proportion for bundled outcomes with a denominator.
    """
    if denom is None:
        return "count", 1
    if isinstance(spec.data_source, FileSource):
        return spec.data_source.kind, spec.data_source.per
    if spec.outcome in RATE_OUTCOMES:  # a bundled rate per head (emergency admissions per 1,000 residents)
        return "rate", RATE_OUTCOMES[spec.outcome]
    return "proportion", 1


def _with_scale(row: Estimate, scale: str) -> Estimate:
    return Estimate(**{**row.__dict__, "scale": scale})


def _rescale_headline(h: Headline) -> Headline:
    """A headline estimate of a percentage (fitted on its own scale) labelled in percentage points."""
    return replace(h, row=_with_scale(h.row, PERCENT_SCALES.get(h.row.scale, h.row.scale)))


def _rescale_its(its: ITSResult) -> ITSResult:
    """Label an ITS of a percentage (fitted on its own scale) in percentage points."""
    rows = tuple(_with_scale(r, PERCENT_SCALES.get(r.scale, r.scale)) for r in its.rows)
    return ITSResult(**{**its.__dict__, "rows": rows})
