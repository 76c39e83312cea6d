"""The analysis of one outcome of one site: DiD with placebo inference, pre-trend check, event study,
rate ratio, ITS (own series, controlled, ARIMA errors) and, for the primary outcome, robustness."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from evallib.evaluation.coverage import Coverage, analysis_frame, outcome_label
from evallib.evaluation.robustness import Robustness, check_robustness
from evallib.methods.did import DiD, DiDResult, pretrend_test
from evallib.methods.event_study import EventStudy, EventStudyResult
from evallib.methods.its import SegmentedITS
from evallib.methods.its_design import ITSResult
from evallib.methods.rates import PoissonDiD, RateRatioResult
from evallib.methods.results import Estimate
from evallib.protocol.params import AnalysisSpec, SiteProtocol
from evallib.sources.panel import Panel

#: Pre-trend p-values below this are reported as a failed parallel-trends check.
PRETREND_ALPHA = 0.05


@dataclass(frozen=True)
class OutcomeAnalysis:
    """All estimates for one outcome of one site."""

    outcome: str
    is_proportion: bool
    coverage: Coverage
    trends: pd.DataFrame = field(repr=False)
    did: DiDResult
    pretrend: Estimate
    its: ITSResult
    event_study: EventStudyResult | None = None
    rate: RateRatioResult | None = None
    event_bin_months: int = 12
    its_controlled: ITSResult | None = None
    its_arima: ITSResult | None = None
    robustness: Robustness | None = None

    @property
    def label(self) -> str:
        return outcome_label(self.outcome)

    @property
    def rows(self) -> tuple[Estimate, ...]:
        rows: list[Estimate] = [self.did.row, self.pretrend]
        if self.rate is not None:
            rows.append(self.rate.row)
        if self.event_study is not None:
            rows.extend([*self.event_study.rows, self.event_study.pretrend])
        rows.extend(self.its.rows)
        for extra in (self.its_controlled, self.its_arima):
            if extra is not None:
                rows.extend(extra.rows)
        if self.robustness is not None:
            rows.extend(self.robustness.rows)
        return tuple(rows)

    @property
    def pretrend_evidence(self) -> bool:
        """The one pre-specified pre-trend test (placebo test of the linear pre-trend difference) has p < 0.05.

        A single test at 5%, so that with parallel trends it fires in 5% of sites (two tests at
        10% fired in 14%); the event-study leads are shown as a description, not a second test.
        """
        p = self.pretrend.p_value
        return math.isfinite(p) and p < PRETREND_ALPHA


def analyse_outcome(protocol: SiteProtocol, panel: Panel, spec: AnalysisSpec | str) -> OutcomeAnalysis:
    """Every estimate for one outcome of a site (``spec``: the outcome, its source and treated units)."""
    if isinstance(spec, str):
        spec = AnalysisSpec(spec, protocol.data_source, protocol.treated_units, spec == protocol.primary_outcome)
    outcome = spec.outcome
    values, denom, cov = analysis_frame(protocol, panel, spec)
    w = protocol.windows
    is_prop = denom is not None
    label = outcome_label(outcome)
    treated = list(cov.treated_used)
    if is_prop:
        # Percentage of the denominator (e.g. % seen within four hours).
        unit_values = 100 * values / denom
        site_series = 100 * values[treated].sum(axis=1) / denom[treated].sum(axis=1)
        comp_series = 100 * values[list(cov.comparators)].sum(axis=1) / denom[list(cov.comparators)].sum(axis=1)
        trends = pd.DataFrame({"site": site_series, "comparison": comp_series})
        transform = "identity"
    else:
        unit_values = values
        site_series = values[treated].sum(axis=1)
        comp_series = values[list(cov.comparators)].sum(axis=1)
        base = values.index <= w["pre_end"]
        base_idx = np.flatnonzero(base)[-12:]
        trends = pd.DataFrame(
            {
                "site": 100 * site_series / site_series.iloc[base_idx].mean(),
                "comparison": 100 * comp_series / comp_series.iloc[base_idx].mean(),
            }
        )
        transform = "log"
    trends.index.name = "period"
    long = _long_panel(unit_values, treated, w["post_start"])
    model = DiD(
        outcome="value",
        unit="unit",
        time="period",
        treated="treated",
        post="post",
        transform=transform,  # type: ignore[arg-type]
        inference="placebo_in_space",
        n_draws=protocol.n_placebo_draws,
        seed=protocol.seed,
        outcome_label=outcome,
    )
    did = model.fit(long)
    if is_prop:
        did = DiDResult(
            row=_with_scale(did.row, "percentage_points"),
            n_obs=did.n_obs,
            n_periods=did.n_periods,
            placebo_estimates=did.placebo_estimates,
            treated_units=did.treated_units,
        )
    pre = long[long["post"] == 0]
    pretrend = pretrend_test(
        pre,
        outcome="value",
        unit="unit",
        time="period",
        treated="treated",
        transform=transform,  # type: ignore[arg-type]
        outcome_label=outcome,
        n_draws=protocol.n_placebo_draws,
        seed=protocol.seed,
    )
    if is_prop:
        pretrend = _with_scale(pretrend, "percentage_points_per_year")
    its_model = SegmentedITS(
        intervention_start=w["post_start"],
        transform=transform,  # type: ignore[arg-type]
        harmonics=2,
        outcome_label=outcome,
        seed=protocol.seed,
    )
    its = its_model.fit(site_series)
    # Controlled ITS: the site's series relative to the comparison pool's absorbs national shocks.
    its_controlled = its_model.fit(site_series, comp_series, controlled="difference")
    its_arima = None
    if its.autocorrelated and spec.primary:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SARIMAX convergence chatter; the result's fit is reported
            its_arima = replace(its_model, errors="arima").fit(site_series)
    if is_prop:
        its, its_controlled = _rescale_its(its), _rescale_its(its_controlled)
        its_arima = _rescale_its(its_arima) if its_arima is not None else None
    # Whole 12-month bins when the windows allow (they also average out seasonality), else 6-month bins;
    # no event study without one post-period bin and two pre-period bins (a lead and the reference).
    bin_months = 12 if cov.n_pre >= 36 and cov.n_post >= 12 else 6
    event_study = None
    if cov.n_post >= bin_months and cov.n_pre >= 2 * bin_months:
        event_study = _event_study(long, w["post_start"], transform, bin_months, protocol, outcome)
    if is_prop and event_study is not None:
        event_study = EventStudyResult(
            rows=tuple(_with_scale(r, "percentage_points") for r in event_study.rows),
            event_times=event_study.event_times,
            reference=event_study.reference,
            pretrend=event_study.pretrend,
            placebo=event_study.placebo,
        )
    counts = _long_panel(values, treated, w["post_start"])
    if denom is not None:
        counts["exposure"] = denom.stack().to_numpy()
    rate = PoissonDiD(
        outcome="value",
        unit="unit",
        time="period",
        treated="treated",
        post="post",
        exposure="exposure" if denom is not None else None,
        inference="placebo_in_space",
        n_draws=min(protocol.n_placebo_draws, 199),
        seed=protocol.seed,
        outcome_label=outcome,
    ).fit(counts)
    del label
    analysis = OutcomeAnalysis(
        outcome=outcome,
        is_proportion=is_prop,
        coverage=cov,
        trends=trends,
        did=did,
        pretrend=pretrend,
        its=its,
        event_study=event_study,
        rate=rate,
        event_bin_months=bin_months,
        its_controlled=its_controlled,
        its_arima=its_arima,
    )
    if spec.primary:
        es = event_study
        leads = {} if es is None else {e: r.estimate for e, r in zip(es.event_times, es.rows, strict=True) if e < 0}
        robust = check_robustness(
            protocol,
            outcome=outcome,
            main=did.row,
            coverage=cov,
            is_proportion=is_prop,
            values=values,
            long=long,
            site_series=site_series,
            leads={**leads, es.reference: 0.0} if es is not None else None,
            n_post_bins=0 if es is None else sum(e >= 0 for e in es.event_times),
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


def _event_study(
    long: pd.DataFrame, start: pd.Timestamp, transform: str, bin_months: int, protocol: SiteProtocol, outcome: str
) -> EventStudyResult:
    """Event study on ``bin_months``-month periods relative to the start (whole bins only).

    Monthly values are averaged (on the analysis scale) within each bin, which also
    removes most seasonality; event time -1 (the bin just before the start) is the reference.
    """
    d = long.copy()
    d["_y"] = np.log(d["value"]) if transform == "log" else d["value"]
    months = (d["period"].dt.year - start.year) * 12 + (d["period"].dt.month - start.month)
    d["event_time"] = np.floor_divide(months, bin_months)
    size = d.groupby(["unit", "event_time"])["_y"].transform("size")
    d = d[size == bin_months]
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


def _rescale_its(its: ITSResult) -> ITSResult:
    """Label an ITS of a percentage (fitted on its own scale) in percentage points."""
    rows = tuple(_with_scale(r, _PERCENT_SCALES.get(r.scale, r.scale)) for r in its.rows)
    return ITSResult(**{**its.__dict__, "rows": rows})
