"""The analysis of one outcome of one site.

For every outcome: the DiD with placebo inference and its pre-trend test, the rate ratio, an
event study and the site's own series (segmented regression with REML AR(1) errors, a
description whose intervals are approximate). For the primary outcome also every headline
estimator (:mod:`evallib.evaluation.site.estimators`) and the robustness checks of the protocol's
primary estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from evallib.evaluation.site.coverage import Coverage, analysis_frame
from evallib.evaluation.site.estimators import HEADLINE_ESTIMATORS, DesignData, Headline, fit_headlines
from evallib.evaluation.site.robustness import Robustness, check_robustness
from evallib.evaluation.site.volatile import VOLATILE_PERCENTILE, site_noise_percentile, withhold, withhold_headline
from evallib.methods.base.arrays import Transform
from evallib.methods.base.results import Estimate, tidy_frame
from evallib.methods.did.event_study import EventStudy, EventStudyResult
from evallib.methods.did.rate_ratio import RateRatioResult
from evallib.methods.did.twfe import DiDResult, pretrend_test
from evallib.methods.inference.power import placebo_mde
from evallib.methods.its.controlled import ControlledITSResult
from evallib.methods.its.model import ITSResult
from evallib.methods.its.segmented import SegmentedITS
from evallib.protocol.params import AnalysisSpec, SiteProtocol
from evallib.sources.bundled import RATE_OUTCOMES
from evallib.sources.files import FileSource
from evallib.sources.panel import Panel
from evallib.vocabulary import outcome_label

#: Pre-trend p-values below this are reported as evidence of diverging trends.
PRETREND_ALPHA = 0.05
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
        """Periods in a year at this outcome's frequency."""
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
        """The plain DiD fit (placebo-in-space inference), which every outcome has."""
        return self.headline["did"].result

    @property
    def rate(self) -> RateRatioResult | None:
        """The Poisson rate ratio fit, when it was fitted for this outcome."""
        h = self.headline.get("rate_ratio")
        return None if h is None else h.result

    @property
    def controlled(self) -> ControlledITSResult | None:
        """The controlled ITS fit, when it was fitted for this outcome."""
        h = self.headline.get("controlled_its")
        return None if h is None else h.result

    @property
    def main(self) -> Headline:
        """The estimate the findings lead with: the protocol's primary estimator (DiD if it was not fitted)."""
        return self.headline.get(self.primary_estimator, self.headline["did"])

    @property
    def mde(self) -> float:
        """Smallest effect (log scale or points) the DiD placebo test would detect with 80% power."""
        assert self.did.placebo_estimates is not None  # the headline DiD is the placebo-in-space test
        return placebo_mde(self.did.placebo_estimates, direction="either")

    @property
    def rows(self) -> tuple[Estimate, ...]:
        """Every estimate of this outcome as tidy rows, the headline DiD and its pre-trend test first."""
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
        """The one pre-specified pre-trend test (placebo test of the linear pre-trend difference) has p < 0.05.

        A single test at 5%, so that with parallel trends it fires in 5% of sites (two tests at
        10% fired in 14%); the event-study leads are shown as a description, not a second test.
        """
        p = self.pretrend.p_value  # NaN (withheld) for a volatile site: not assessable, never "evidence"
        return math.isfinite(p) and p < PRETREND_ALPHA


def analyse_outcome(protocol: SiteProtocol, panel: Panel, spec: AnalysisSpec | str) -> OutcomeAnalysis:
    """Every estimate for one outcome of a site (``spec``: the outcome, its source and treated units)."""
    if isinstance(spec, str):
        spec = AnalysisSpec(spec, protocol.data_source, protocol.treated_units, spec == protocol.primary_outcome)
    outcome = spec.outcome
    values, denom, cov = analysis_frame(protocol, panel, spec)
    w = protocol.windows
    measure, per = _measure(spec, denom)
    is_prop = measure == "proportion"
    ppy = cov.periods_per_year
    treated = list(cov.treated_used)
    comparators = list(cov.comparators)
    transform: Transform
    if measure == "rate":
        # Events per ``per`` people: proportional effects (log scale), as for counts.
        assert denom is not None  # a rate or a proportion has a denominator (see _measure)
        unit_values = per * values / denom
        site_series = per * values[treated].sum(axis=1) / denom[treated].sum(axis=1)
        comp_series = per * values[comparators].sum(axis=1) / denom[comparators].sum(axis=1)
        base_idx = np.flatnonzero(values.index <= w.pre_end)[-ppy:]
        trends = pd.DataFrame(
            {
                "site": 100 * site_series / site_series.iloc[base_idx].mean(),
                "comparison": 100 * comp_series / comp_series.iloc[base_idx].mean(),
            }
        )
        transform = "log"
    elif is_prop:
        # Percentage of the denominator (e.g. % seen within four hours).
        assert denom is not None
        unit_values = 100 * values / denom
        site_series = 100 * values[treated].sum(axis=1) / denom[treated].sum(axis=1)
        comp_series = 100 * values[comparators].sum(axis=1) / denom[comparators].sum(axis=1)
        trends = pd.DataFrame({"site": site_series, "comparison": comp_series})
        transform = "identity"
    else:
        unit_values = values
        site_series = values[treated].sum(axis=1)
        comp_series = values[comparators].sum(axis=1)
        base_idx = np.flatnonzero(values.index <= w.pre_end)[-ppy:]
        trends = pd.DataFrame(
            {
                "site": 100 * site_series / site_series.iloc[base_idx].mean(),
                "comparison": 100 * comp_series / comp_series.iloc[base_idx].mean(),
            }
        )
        transform = "log"
    trends.index.name = "period"
    long = _long_panel(unit_values, treated, w.post_start)
    counts = _long_panel(values, treated, w.post_start)
    if denom is not None:
        counts["exposure"] = denom.stack().to_numpy()
    design = DesignData(
        long=long,
        counts=counts,
        start=w.post_start,
        transform=transform,
        n_draws=protocol.n_placebo_draws,
        seed=protocol.seed,
        outcome=outcome,
        periods_per_year=ppy,
    )
    names = HEADLINE_ESTIMATORS if spec.primary else SECONDARY_ESTIMATORS
    headline = fit_headlines(design, names)
    if is_prop:
        headline = {n: _rescale_headline(h) for n, h in headline.items()}
    noise_pct = site_noise_percentile(headline["did"].result.volatility, protocol.seed)
    volatile = noise_pct >= VOLATILE_PERCENTILE
    if volatile:  # only the studentized test allows for the site's own noise
        headline = {n: h if n == "did_studentized" else withhold_headline(h) for n, h in headline.items()}
    pre = long[long["post"] == 0]
    pretrend = pretrend_test(
        pre,
        outcome="value",
        unit="unit",
        time="period",
        treated="treated",
        transform=transform,
        outcome_label=outcome,
        n_draws=protocol.n_placebo_draws,
        seed=protocol.seed,
        periods_per_year=ppy,
    )
    if is_prop:
        pretrend = _with_scale(pretrend, "percentage_points_per_year")
    if volatile:
        pretrend = withhold(pretrend)
    # The site's own series: a description (what changed at the start), with REML AR(1) errors,
    # whose intervals reach their nominal coverage in the Monte Carlo suite.
    harmonics = seasonal_harmonics(ppy)
    its = SegmentedITS(
        start=w.post_start,
        transform=transform,
        seasonality="fourier" if harmonics else "none",
        harmonics=harmonics,
        periods_per_year=ppy,
        horizons=(ppy, 2 * ppy),
        errors="ar1_reml",
        outcome_label=outcome,
        seed=protocol.seed,
    ).fit(site_series)
    if is_prop:
        its = _rescale_its(its)
    elif measure == "rate":  # a sum of rates over the follow-up is not a number of events
        its = ITSResult(**{**its.__dict__, "rows": tuple(r for r in its.rows if r.term != "cumulative_effect")})
    # Whole one-year bins when there are two pre-period years (NHS England's two-year baseline): a year's mean
    # averages out seasonality, which half-year bins (winter against summer) leave in every lead, and most
    # month-to-month noise, which the parallel-trends sensitivity would otherwise read as departures from
    # parallel trends. Else half-year bins (yearly data: one-year bins); none without one post and two pre bins.
    bin_periods = ppy if cov.n_pre >= 2 * ppy and cov.n_post >= ppy else max(1, ppy // 2)
    event_study = None
    if cov.n_post >= bin_periods and cov.n_pre >= 2 * bin_periods:
        event_study = _event_study(long, w.post_start, transform, bin_periods, ppy, protocol, outcome)
    if volatile and event_study is not None:
        event_study = replace(
            event_study, rows=tuple(withhold(r) for r in event_study.rows), pretrend=withhold(event_study.pretrend)
        )
    if is_prop and event_study is not None:
        event_study = EventStudyResult(
            rows=tuple(_with_scale(r, "percentage_points") for r in event_study.rows),
            event_times=event_study.event_times,
            reference=event_study.reference,
            pretrend=event_study.pretrend,
            placebo=event_study.placebo,
        )
    analysis = OutcomeAnalysis(
        outcome=outcome,
        is_proportion=is_prop,
        coverage=cov,
        trends=trends,
        headline=headline,
        pretrend=pretrend,
        its=its,
        event_study=event_study,
        event_bin_periods=bin_periods,
        primary_estimator=("did_studentized" if volatile else protocol.primary_estimator) if spec.primary else "did",
        volatile=volatile,
        noise_percentile=noise_pct,
        measure=measure,
        per=per,
        site_counts=values[treated].sum(axis=1),
    )
    if spec.primary:
        es = event_study
        leads = {} if es is None else {e: r.estimate for e, r in zip(es.event_times, es.rows, strict=True) if e < 0}
        sc = headline.get("synthetic_control")
        robust = check_robustness(
            protocol,
            outcome=outcome,
            main=analysis.main.row,
            coverage=cov,
            is_proportion=is_prop,
            values=unit_values if measure == "rate" else values,
            long=long,
            site_series=site_series,
            leads={**leads, es.reference: 0.0} if es is not None else None,
            n_post_bins=0 if es is None else sum(e >= 0 for e in es.event_times),
            synth=None if sc is None else sc.result,
            inference="placebo_studentized" if volatile else "placebo_in_space",
        )
        analysis = replace(analysis, robustness=robust)
    return analysis


def _long_panel(wide: pd.DataFrame, treated: list[str], post_start: pd.Timestamp) -> pd.DataFrame:
    """Period x unit table -> long rows with the DiD roles (treated, post)."""
    long = wide.stack().rename("value").reset_index()
    long.columns = ["period", "unit", "value"]
    long["treated"] = long["unit"].isin(treated).astype(int)
    long["post"] = (long["period"] >= post_start).astype(int)
    return long


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


def _event_study(
    long: pd.DataFrame,
    start: pd.Timestamp,
    transform: str,
    bin_periods: int,
    periods_per_year: int,
    protocol: SiteProtocol,
    outcome: str,
) -> EventStudyResult:
    """Event study on bins of ``bin_periods`` periods relative to the start (whole bins only).

    Values are averaged (on the analysis scale) within each bin, which also removes most
    seasonality when a bin is a year; event time -1 (the bin just before the start) is the reference.
    """
    d = long.copy()
    d["_y"] = np.log(d["value"]) if transform == "log" else d["value"]
    step = 12 // periods_per_year  # months per period
    months = (d["period"].dt.year - start.year) * 12 + (d["period"].dt.month - start.month)
    d["event_time"] = np.floor_divide(np.floor_divide(months, step), bin_periods)
    size = d.groupby(["unit", "event_time"])["_y"].transform("size")
    d = d[size == bin_periods]
    binned = d.groupby(["unit", "event_time"], as_index=False).agg(value=("_y", "mean"), treated=("treated", "first"))
    return (
        EventStudy(
            outcome="value",
            unit="unit",
            time="event_time",
            treated="treated",
            start=0,
            reference=-1,
            inference="placebo_in_space",
            n_draws=protocol.n_placebo_draws,
            seed=protocol.seed,
            outcome_label=outcome,
        )
        .fit(binned)
        .with_scale("log" if transform == "log" else "level")
    )


def _with_scale(row: Estimate, scale: str) -> Estimate:
    return Estimate(**{**row.__dict__, "scale": scale})


_PERCENT_SCALES = {"level": "percentage_points", "level_per_year": "percentage_points_per_year"}


def _rescale_headline(h: Headline) -> Headline:
    """A headline estimate of a percentage (fitted on its own scale) labelled in percentage points."""
    return replace(h, row=_with_scale(h.row, _PERCENT_SCALES.get(h.row.scale, h.row.scale)))


def _rescale_its(its: ITSResult) -> ITSResult:
    """Label an ITS of a percentage (fitted on its own scale) in percentage points."""
    rows = tuple(_with_scale(r, _PERCENT_SCALES.get(r.scale, r.scale)) for r in its.rows)
    return ITSResult(**{**its.__dict__, "rows": rows})
