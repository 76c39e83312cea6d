"""Evaluate one site from its protocol: the whole analysis behind a site report.

:func:`evaluate_site` never crashes on a site the data cannot support: it returns
a :class:`SiteEvaluation` whose ``status`` is ``"not evaluable"`` and whose
``reason`` says why in words. Broken input (a bad file, an outcome the data
lacks) still raises :class:`~evallib.errors.DataError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evallib import __version__
from evallib.comparison import MatchResult, balance_table, match_comparators
from evallib.data import BUNDLED, Panel, bundled_data_dir, load_bundled, load_file
from evallib.did import DiD, DiDResult, EventStudy, EventStudyResult, pretrend_test
from evallib.errors import DataError, NotEvaluable
from evallib.its import ITSResult, SegmentedITS
from evallib.params import COVID_START, SiteProtocol
from evallib.paths import project_root
from evallib.rates import PoissonDiD, RateRatioResult
from evallib.registry import load_registry, type1_trusts
from evallib.results import TIDY_COLUMNS, Estimate, tidy_frame
from evallib.staggered import AggregateResult, CallawaySantAnna, CSResult
from evallib.synth import SyntheticControl, SynthResult

OUTCOME_LABELS = {
    "ae_attendances": "A&E attendances",
    "ae_type1_attendances": "type-1 A&E attendances",
    "emergency_admissions": "emergency admissions via A&E",
    "four_hour_performance": "four-hour A&E performance",
}
#: Follow-up shorter than this many periods is flagged as short in the report.
SHORT_FOLLOW_UP = 24
#: Pre-trend p-values below this are reported as a failed parallel-trends check.
PRETREND_ALPHA = 0.10
#: With fewer comparison units than this, a 95% placebo interval cannot be finite.
MIN_COMPARATORS_FOR_CI = 19


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " "))


@dataclass(frozen=True)
class Coverage:
    """What data the analysis of one outcome stands on."""

    outcome: str
    source: str
    periods: tuple[pd.Timestamp, ...] = field(repr=False)
    n_pre: int
    n_post: int
    missing_periods: tuple[pd.Timestamp, ...]
    treated_used: tuple[str, ...]
    treated_not_in_data: tuple[str, ...]
    treated_incomplete: tuple[str, ...]
    comparators: tuple[str, ...] = field(repr=False)
    excluded: dict[str, int] = field(default_factory=dict)
    baseline_total: float = float("nan")

    @property
    def n_comparators(self) -> int:
        return len(self.comparators)


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
    def pretrend_failed(self) -> bool:
        """Either pre-trend check (linear trend, or joint event-study leads) has p < 0.10."""
        ps = [self.pretrend.p_value]
        if self.event_study is not None:
            ps.append(self.event_study.pretrend.p_value)
        return any(math.isfinite(p) and p < PRETREND_ALPHA for p in ps)


@dataclass(frozen=True)
class ProgrammeWaves:
    """Callaway-Sant'Anna across ICS designation waves (the programme around an ICS site).

    Every trust belongs to the cohort of its system's start month; trusts whose system
    starts after the data end are not yet treated throughout. ``site_cohort`` is the
    start month of the evaluated site's wave.
    """

    outcome: str
    result: CSResult = field(repr=False)
    cohort_labels: dict[int, str]
    site_cohort: int
    n_units: int

    @property
    def simple(self) -> AggregateResult:
        return self.result.aggregate("simple")

    @property
    def dynamic(self) -> AggregateResult:
        return self.result.aggregate("dynamic")

    @property
    def group(self) -> AggregateResult:
        return self.result.aggregate("group")

    @property
    def site_wave(self) -> Estimate | None:
        for r in self.group.components:
            if r.term == f"group {self.site_cohort}":
                return Estimate(**{**r.__dict__, "term": f"wave starting {self.cohort_labels[self.site_cohort]}"})
        return None

    @property
    def rows(self) -> tuple[Estimate, ...]:
        overall = Estimate(**{**self.simple.overall.__dict__, "term": "all ICS waves (simple ATT)"})
        wave = self.site_wave
        return (overall,) if wave is None else (overall, wave)


@dataclass(frozen=True)
class SiteEvaluation:
    """The result of evaluating one site (read-only).

    ``status`` is ``"evaluated"`` or ``"not evaluable"``; ``flags`` are the
    cautions a reader must see (short follow-up, failed pre-trend check, ...).
    """

    protocol: SiteProtocol
    status: str
    reason: str = ""
    analyses: tuple[OutcomeAnalysis, ...] = ()
    flags: tuple[str, ...] = ()
    skipped_outcomes: dict[str, str] = field(default_factory=dict)
    programme: ProgrammeWaves | None = None

    @property
    def evaluable(self) -> bool:
        return self.status == "evaluated"

    @property
    def primary(self) -> OutcomeAnalysis | None:
        for a in self.analyses:
            if a.outcome == self.protocol.primary_outcome:
                return a
        return None

    @property
    def rows(self) -> tuple[Estimate, ...]:
        rows = [r for a in self.analyses for r in a.rows]
        if self.programme is not None:
            rows.extend(self.programme.rows)
        return tuple(rows)

    def tidy(self) -> pd.DataFrame:
        """Every estimate of every outcome in one tidy table."""
        return tidy_frame(list(self.rows))

    def to_json_dict(self) -> dict[str, Any]:
        """Content of ``results.json`` (documented in the README)."""
        p = self.protocol
        prim = self.primary
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
            },
            "results": [r.as_dict() for r in self.rows],
            "robustness": None if prim is None or prim.robustness is None else prim.robustness.to_json_dict(),
            "growth": None if prim is None else _growth(prim),
            "result_columns": list(TIDY_COLUMNS),
            "provenance": provenance(p),
        }


def _growth(a: OutcomeAnalysis) -> dict[str, float | None] | None:
    """Growth of the site and its comparison pool: last 12 months of follow-up vs the baseline year.

    The NHS England style of comparison ("growth in the outcome since baseline"),
    from the summed series; None for percentages.
    """
    if a.is_proportion:
        return None
    t = a.trends
    post = t.index >= t.index[a.coverage.n_pre] if a.coverage.n_pre < len(t) else np.zeros(len(t), bool)
    base = t[~post].iloc[-12:].mean()
    last = t[post].iloc[-12:].mean()
    out = {}
    for col in ("site", "comparison"):
        out[f"{col}_growth_pct"] = float(100 * (last[col] / base[col] - 1)) if len(t[post]) else None
    out["months_in_follow_up_window"] = int(min(12, int(np.sum(post))))
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_files(protocol: SiteProtocol) -> list[Path]:
    """The files a protocol's analysis reads (data and the site registry)."""
    if isinstance(protocol.data_source, str):
        files = [bundled_data_dir() / f for f in BUNDLED[protocol.data_source].files]
    else:
        path = Path(protocol.data_source.path)
        files = [path if path.is_absolute() else project_root() / path]
    return [*files, bundled_data_dir() / "sites.csv", bundled_data_dir() / "ods_trusts_etr.csv"]


def git_commit() -> str | None:
    """The project's git commit (``$EVALLIB_GIT_COMMIT`` when the runner set it)."""
    env = os.environ.get("EVALLIB_GIT_COMMIT")
    if env is not None:
        return env or None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(protocol: SiteProtocol) -> dict[str, Any]:
    """What a result was made from: library version, git commit, protocol and data hashes.

    No timestamp: identical inputs give a byte-identical results.json (the runner records
    when it ran in run.json).
    """
    return {
        "evallib_version": __version__,
        "git_commit": git_commit(),
        "params_sha256": protocol.digest(),
        "data_source": protocol.data_source if isinstance(protocol.data_source, str) else protocol.data_source.path,
        "data_files": [{"file": f.name, "sha256": _sha256(f)} for f in data_files(protocol) if f.is_file()],
    }


def write_results(evaluation: SiteEvaluation, output_dir: str | os.PathLike[str] = "") -> Path:
    """Write ``results.json`` into ``output_dir`` (default ``outputs/<site_id>/``).

    Written to a temporary file first and renamed, so a reader never sees half a file.
    """
    out = Path(output_dir) if output_dir else project_root() / "outputs" / evaluation.protocol.site_id
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tmp = out / ".results.json.tmp"
    tmp.write_text(json.dumps(evaluation.to_json_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- analysis


def load_panel(protocol: SiteProtocol) -> Panel:
    """The data named by the protocol's ``data_source``."""
    if isinstance(protocol.data_source, str):
        return load_bundled(protocol.data_source)
    return load_file(protocol.data_source, base_dir=project_root())


def excluded_by_rule(protocol: SiteProtocol) -> set[str]:
    """Units the comparison-pool rule removes (other treated sites)."""
    rule = protocol.comparison_pool
    if rule == "all_eligible":
        return set()
    end = protocol.windows["post_end"]
    out: set[str] = set()
    for site in load_registry():
        if rule == "exclude_other_vanguards" and site.site_type == "vanguard":
            out.update(site.acute_trust_codes)
        elif rule == "exclude_ics_designated_before_end" and site.site_type == "ICS" and site.start_month <= end:
            out.update(site.acute_trust_codes)
    return out


def _analysis_frame(
    protocol: SiteProtocol, panel: Panel, outcome: str
) -> tuple[pd.DataFrame, pd.DataFrame | None, Coverage]:
    """Values (period x unit) for the treated units and comparators; raises NotEvaluable."""
    w = protocol.windows
    label = outcome_label(outcome)
    if outcome not in panel.outcomes:
        raise DataError(
            f"site {protocol.site_id}: outcome {outcome!r} is not in data source {panel.source!r} "
            f"(it has {', '.join(panel.outcomes)}); fix primary_outcome/secondary_outcomes in the params file"
        )
    values = panel.wide(outcome)
    denom = panel.wide(outcome, "denominator") if panel.has_denominator(outcome) else None
    data_start, data_end = values.index.min(), values.index.max()
    in_window = values.index[
        ((values.index >= w["pre_start"]) & (values.index <= w["pre_end"]))
        | ((values.index >= w["post_start"]) & (values.index <= w["post_end"]))
    ]
    n_pre = int((in_window <= w["pre_end"]).sum())
    n_post = int((in_window >= w["post_start"]).sum())
    if n_post == 0:
        raise NotEvaluable(
            f"no post-period in the data: {label} data run {data_start:%b %Y} to {data_end:%b %Y}, "
            f"and follow-up would be {w['post_start']:%b %Y} to {w['post_end']:%b %Y}"
        )
    if n_pre < protocol.min_pre_periods:
        raise NotEvaluable(
            f"only {n_pre} pre-period months of {label} in the data (from {data_start:%b %Y}); "
            f"the protocol needs at least {protocol.min_pre_periods}"
        )
    if n_post < protocol.min_post_periods:
        raise NotEvaluable(
            f"only {n_post} months of follow-up of {label} in the data (to {data_end:%b %Y}); "
            f"the protocol needs at least {protocol.min_post_periods}"
        )
    expected = pd.date_range(w["pre_start"], w["post_end"], freq="MS" if panel.frequency == "monthly" else None)
    missing = tuple(
        p
        for p in expected
        if p not in set(in_window) and data_start <= p <= data_end and not (w["pre_end"] < p < w["post_start"])
    )
    win = values.loc[in_window]
    complete = win.notna().all() & (win > 0).all() if not outcome == "four_hour_performance" else win.notna().all()
    treated = list(protocol.treated_units)
    not_in_data = tuple(u for u in treated if u not in win.columns or win[u].isna().all())
    incomplete = tuple(u for u in treated if u not in not_in_data and not complete.get(u, False))
    used = tuple(u for u in treated if u not in not_in_data and u not in incomplete)
    if not used:
        if len(not_in_data) == len(treated):
            raise NotEvaluable(
                f"none of the site's trusts ({', '.join(treated)}) appear in the {label} data "
                f"between {w['pre_start']:%b %Y} and {w['post_end']:%b %Y}"
            )
        raise NotEvaluable(
            f"the site's trusts ({', '.join(treated)}) have incomplete {label} series in the analysis window "
            f"(gaps, zeros or a code that changed after a merger), so no before-and-after comparison is possible"
        )
    excluded: dict[str, int] = {}
    candidates = [u for u in win.columns if u not in treated]
    if protocol.comparison_include:
        pool = [u for u in protocol.comparison_include if u in win.columns]
        excluded["not in the protocol's include list"] = len(candidates) - len(pool)
    else:
        rule = excluded_by_rule(protocol)
        pool = [u for u in candidates if u not in rule]
        excluded[f"other treated sites ({protocol.comparison_pool})"] = len(candidates) - len(pool)
        if protocol.type1_comparators_only and panel.source in BUNDLED:  # ODS flags describe NHS trusts only
            t1 = type1_trusts()
            before = len(pool)
            pool = [u for u in pool if u in t1]
            excluded["no type-1 (major) A&E department"] = before - len(pool)
    if protocol.comparison_exclude:
        before = len(pool)
        pool = [u for u in pool if u not in protocol.comparison_exclude]
        excluded["excluded by the protocol"] = before - len(pool)
    before = len(pool)
    pool = [u for u in pool if complete.get(u, False)]
    excluded["incomplete data in the window"] = before - len(pool)
    if not pool:
        raise NotEvaluable(f"the comparison pool for {label} is empty after applying the protocol's rules")
    baseline = win.loc[win.index <= w["pre_end"], list(used)].iloc[-12:]
    cov = Coverage(
        outcome=outcome,
        source=panel.source,
        periods=tuple(in_window),
        n_pre=n_pre,
        n_post=n_post,
        missing_periods=missing,
        treated_used=used,
        treated_not_in_data=not_in_data,
        treated_incomplete=incomplete,
        comparators=tuple(sorted(pool)),
        excluded={k: v for k, v in excluded.items() if v},
        baseline_total=float(baseline.to_numpy().sum()) if outcome != "four_hour_performance" else float("nan"),
    )
    cols = list(used) + sorted(pool)
    return win[cols], (denom.loc[in_window, cols] if denom is not None else None), cov


def _analyse_outcome(protocol: SiteProtocol, panel: Panel, outcome: str) -> OutcomeAnalysis:
    values, denom, cov = _analysis_frame(protocol, panel, outcome)
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
    if its.autocorrelated and outcome == protocol.primary_outcome:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SARIMAX convergence chatter; the result's fit is reported
            its_arima = replace(its_model, errors="arima").fit(site_series)
    if is_prop:
        its, its_controlled = _rescale_its(its), _rescale_its(its_controlled)
        its_arima = _rescale_its(its_arima) if its_arima is not None else None
    bin_months = 12 if cov.n_pre >= 36 else 6
    event_study = _event_study(long, w["post_start"], transform, bin_months, protocol, outcome)
    if is_prop:
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
    if outcome == protocol.primary_outcome:
        analysis = replace(analysis, robustness=_robustness(protocol, analysis, values, long, site_series))
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


def _flags(protocol: SiteProtocol, analyses: tuple[OutcomeAnalysis, ...]) -> tuple[str, ...]:
    flags = []
    if protocol.membership_confidence != "high":
        flags.append(
            f"Membership confidence is {protocol.membership_confidence}: which trusts make up this site was partly "
            "inferred from its geography; confirm it locally before relying on the result."
        )
    if "approximate" in protocol.notes:
        flags.append("The start date is approximate (the registry dates the announcement to the month or year only).")
    for a in analyses:
        c = a.coverage
        if a.outcome == protocol.primary_outcome and c.n_post < SHORT_FOLLOW_UP:
            flags.append(
                f"Short follow-up: only {c.n_post} months after the start. Effects of new care models take years; "
                "a null result here is weak evidence of no effect."
            )
        if a.pretrend_failed:
            es_p = a.event_study.pretrend.p_value if a.event_study is not None else float("nan")
            flags.append(
                f"Failed pre-trend check for {a.label}: before the start the site was already diverging from its "
                f"comparison areas (linear trend p = {a.pretrend.p_value:.2f}; event-study leads p = {es_p:.2f}), "
                "so the difference-in-differences estimate may reflect that trend rather than the intervention."
            )
        if c.treated_not_in_data or c.treated_incomplete:
            gone = ", ".join(c.treated_not_in_data + c.treated_incomplete)
            flags.append(f"Not every member trust could be analysed for {a.label} ({gone} lacked complete data).")
        if c.n_comparators < MIN_COMPARATORS_FOR_CI:
            flags.append(
                f"Only {c.n_comparators} comparison units for {a.label}: too few for a finite 95% placebo interval."
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
        protocol: follow-up overlapping COVID-19 (from March 2020), no treated trust in
        the data, too few pre- or post-period months, or an empty comparison pool.

    Notes
    -----
    For each outcome: a two-way fixed-effects DiD (log outcome, or percentage points
    for proportions) of the site's trusts against the comparison pool with
    placebo-in-space inference; a pre-trend check; and a segmented ITS of the site's
    own series with Fourier seasonality and Newey-West SEs. DiD assumes parallel
    trends; the ITS assumes the pre-period trend would have continued.
    """
    w = protocol.windows
    try:
        if w["post_end"] >= COVID_START:
            raise NotEvaluable(
                f"follow-up ({w['post_start']:%b %Y} to {w['post_end']:%b %Y}) overlaps the COVID-19 disruption of "
                "hospital activity from March 2020, which would swamp any effect of the care model"
            )
        if not protocol.treated_units:
            raise NotEvaluable(
                "the registry lists no acute trust for this site, so trust-level A&E data cannot measure it"
            )
        data = panel if panel is not None else load_panel(protocol)
        analyses = [_analyse_outcome(protocol, data, protocol.primary_outcome)]
    except NotEvaluable as exc:
        return SiteEvaluation(protocol=protocol, status="not evaluable", reason=str(exc))
    skipped: dict[str, str] = {}
    for outcome in protocol.outcomes[1:]:
        try:
            analyses.append(_analyse_outcome(protocol, data, outcome))
        except NotEvaluable as exc:
            skipped[outcome] = str(exc)
    result = tuple(analyses)
    programme = programme_waves(protocol, data, protocol.primary_outcome) if protocol.site_type == "ICS" else None
    return SiteEvaluation(
        protocol=protocol,
        status="evaluated",
        analyses=result,
        flags=_flags(protocol, result),
        skipped_outcomes=skipped,
        programme=programme,
    )


def programme_waves(protocol: SiteProtocol, panel: Panel, outcome: str) -> ProgrammeWaves | None:
    """Callaway-Sant'Anna ATTs of every ICS wave on ``outcome`` (log scale), not-yet-treated controls.

    Units are the trusts with complete, positive monthly data over the whole data
    span and (for bundled data) a type-1 A&E. Returns None when fewer than one wave
    starts inside the data.
    """
    values = panel.wide(outcome)
    values = values.loc[:, values.notna().all() & (values > 0).all()]
    if panel.source in BUNDLED:
        values = values.loc[:, [u for u in values.columns if u in type1_trusts()]]
    months = {p: i for i, p in enumerate(values.index)}
    cohort: dict[str, pd.Timestamp] = {}
    for site in load_registry():
        if site.site_type != "ICS":
            continue
        start = site.start_month
        for code in site.acute_trust_codes:
            cohort[code] = min(cohort.get(code, start), start)
    first, last = values.index.min(), values.index.max()
    code_of = {}
    for unit in values.columns:
        start = cohort.get(unit)
        code_of[unit] = months[start] if start is not None and first < start <= last else 0
    if not any(code_of.values()):
        return None
    long = np.log(values).stack().rename("y").reset_index()
    long.columns = ["period", "unit", "y"]
    long["t"] = long["period"].map(months)
    long["cohort"] = long["unit"].map(code_of)
    res = CallawaySantAnna(outcome="y", unit="unit", time="t", cohort="cohort", control_group="not_yet_treated").fit(
        long
    )
    res = CSResult(**{**res.__dict__, "outcome": outcome, "scale": "log"})
    labels = {i: p.strftime("%b %Y") for p, i in months.items()}
    site_start = months.get(protocol.windows["post_start"], -1)
    return ProgrammeWaves(
        outcome=outcome, result=res, cohort_labels=labels, site_cohort=site_start, n_units=values.shape[1]
    )


def headline(evaluation: SiteEvaluation) -> dict[str, float | str]:
    """The primary DiD estimate as a percentage change (or points) with its interval."""
    a = evaluation.primary
    if a is None:
        return {}
    r = a.did.row
    if a.is_proportion:
        return {
            "estimate": r.estimate,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "p_value": r.p_value,
            "unit": "percentage points",
        }

    def pct(v: float) -> float:
        return 100 * (math.exp(v) - 1) if math.isfinite(v) else v

    return {
        "estimate": pct(r.estimate),
        "ci_low": pct(r.ci_low),
        "ci_high": pct(r.ci_high),
        "p_value": r.p_value,
        "unit": "%",
    }


# --------------------------------------------------------------------------- robustness


@dataclass(frozen=True)
class Robustness:
    """Pre-specified robustness checks of the primary outcome's DiD conclusion.

    * ``placebo_in_time``: the same DiD with a fake start halfway through the
      pre-period, on pre-period data only (an "effect" there means the design
      finds effects where none can be);
    * ``leave_one_out``: the smallest and largest estimates dropping one comparator;
    * ``matched`` / ``synthetic``: the estimate against the 10 nearest comparators
      and against a synthetic control (trajectory-matched, demeaned logs);
    * ``trend_breakdown``: the differential linear trend (log points per year) that
      would be needed to overturn the conclusion, against the largest trend the
      pre-period allows (upper end of the pre-trend interval). This is a simple
      linear-extrapolation version of Rambachan and Roth's bounds: a trend of M per
      year biases the DiD by M times the gap in years between the mean post- and
      mean pre-period months.
    """

    outcome: str
    main: Estimate
    placebo_in_time: Estimate | None
    leave_one_out: tuple[float, float]
    matched: MatchResult | None
    matched_did: Estimate | None
    synthetic: SynthResult | None
    balance: pd.DataFrame | None = field(repr=False)
    trend_gap_years: float = float("nan")
    trend_breakdown: float = float("nan")
    pretrend_bound: float = float("nan")
    checks: tuple[tuple[str, bool, str], ...] = ()

    @property
    def survives(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    @property
    def rows(self) -> tuple[Estimate, ...]:
        out = [r for r in (self.placebo_in_time, self.matched_did) if r is not None]
        if self.synthetic is not None:
            out.append(self.synthetic.row)
        return tuple(out)

    def to_json_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "survives": self.survives,
            "checks": [{"check": name, "passed": ok, "detail": detail} for name, ok, detail in self.checks],
            "leave_one_out_range": [num(self.leave_one_out[0]), num(self.leave_one_out[1])],
            "trend_breakdown_per_year": num(self.trend_breakdown),
            "pretrend_bound_per_year": num(self.pretrend_bound),
            "matched_comparators": self.matched.units if self.matched is not None else [],
            "synthetic_weights": {}
            if self.synthetic is None
            else {k: round(float(v), 6) for k, v in self.synthetic.weights.items() if v > 0.001},
        }


def _conclusion(row: Estimate) -> str:
    if not math.isfinite(row.p_value):
        return "unknown"
    if row.p_value >= 0.05:
        return "no clear effect"
    return "decrease" if row.estimate < 0 else "increase"


def _robustness(
    protocol: SiteProtocol, analysis: OutcomeAnalysis, values: pd.DataFrame, long: pd.DataFrame, site_series: pd.Series
) -> Robustness:
    w = protocol.windows
    main = analysis.did.row
    cov = analysis.coverage
    treated = list(cov.treated_used)
    pool = list(cov.comparators)
    transform = "identity" if analysis.is_proportion else "log"
    roles = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}
    common = {
        "transform": transform,
        "inference": "placebo_in_space",
        "n_draws": protocol.n_placebo_draws,
        "seed": protocol.seed,
        "outcome_label": analysis.outcome,
    }
    # Placebo in time: a fake start halfway through the pre-period, on pre-period data only.
    pre = long[long["post"] == 0].copy()
    pre_periods = sorted(pre["period"].unique())
    placebo_time = None
    if len(pre_periods) >= 12:
        fake = pre_periods[len(pre_periods) // 2]
        pre["post"] = (pre["period"] >= fake).astype(int)
        r = DiD(**roles, **common).fit(pre).row
        placebo_time = Estimate(
            **{
                **r.__dict__,
                "term": f"placebo_in_time_{pd.Timestamp(fake):%Y-%m}",
                "method": "did_twfe_placebo_in_time",
                "scale": main.scale,
            }
        )
    # Leave one comparator out (closed form: the DiD is a difference of mean changes).
    y = np.log(values) if transform == "log" else 100 * values  # proportions arrive as percentages already
    if analysis.is_proportion:
        y = long.pivot(index="period", columns="unit", values="value")
    post = y.index >= w["post_start"]
    change = y[post].mean() - y[~post].mean()
    treated_change = change[treated].mean()
    comp = change[pool]
    loo = treated_change - (comp.sum() - comp) / (len(comp) - 1) if len(comp) > 1 else pd.Series([main.estimate])
    matched = matched_row = synth = balance = None
    if not analysis.is_proportion and len(pool) >= 3:
        pre_vals = values.loc[~post]
        matched = match_comparators(site_series[~post], pre_vals[pool], k=min(10, len(pool)))
        sub = long[long["unit"].isin(treated + matched.units)]
        r = DiD(**roles, **common).fit(sub).row
        matched_row = Estimate(**{**r.__dict__, "method": "did_twfe_matched", "term": "treated_x_post"})
        # Donors: the trusts most like the site, fewer than the pre-period months, so that the
        # synthetic control cannot interpolate the pre-period exactly (which would make the
        # RMSPE-ratio test meaningless).
        n_donors = max(5, min(20, int((~post).sum()) // 2, len(pool)))
        donors = match_comparators(site_series[~post], pre_vals[pool], k=n_donors).units
        synth_data = (
            np.log(pd.concat([site_series.rename("SITE"), values[donors]], axis=1)).stack().rename("y").reset_index()
        )
        synth_data.columns = ["period", "unit", "y"]
        synth = SyntheticControl(
            "y",
            "unit",
            "period",
            "SITE",
            w["post_start"],
            demean=True,
            seed=protocol.seed,
            outcome_label=analysis.outcome,
            scale="log",
        ).fit(synth_data)
        sets = {
            "all eligible": pd.Series(1.0, index=pool),
            "matched": pd.Series(1.0, index=matched.units),
            "synthetic": synth.weights,
        }
        balance = balance_table(site_series[~post], pre_vals[pool], sets)
    # Linear-trend sensitivity.
    months = np.arange(len(y.index))
    gap_years = float((months[post].mean() - months[~post].mean()) / 12)
    pt = analysis.pretrend
    bound = (
        max(abs(pt.ci_low), abs(pt.ci_high)) if math.isfinite(pt.ci_low) and math.isfinite(pt.ci_high) else float("inf")
    )
    conclusion = _conclusion(main)
    if conclusion in ("decrease", "increase") and math.isfinite(main.ci_low) and math.isfinite(main.ci_high):
        breakdown = min(abs(main.ci_low), abs(main.ci_high)) / gap_years
    else:
        breakdown = 0.0
    checks: list[tuple[str, bool, str]] = []
    if placebo_time is not None:
        checks.append(
            (
                "placebo in time",
                placebo_time.p_value >= 0.10,
                f"a fake start in the pre-period gives p = {placebo_time.p_value:.2f}",
            )
        )
    lo_loo, hi_loo = float(loo.min()), float(loo.max())
    same_sign = (lo_loo > 0) == (hi_loo > 0) == (main.estimate > 0) if conclusion != "no clear effect" else True
    checks.append(("leave one comparator out", bool(same_sign), f"estimates range from {lo_loo:+.3f} to {hi_loo:+.3f}"))
    for name, row in (("matched comparators", matched_row), ("synthetic control", synth.row if synth else None)):
        if row is None:
            continue
        alt = _conclusion(row)
        ok = alt == conclusion if conclusion != "no clear effect" else alt in ("no clear effect", "unknown")
        checks.append((name, ok, f"estimate {row.estimate:+.3f}, p = {row.p_value:.2f} ({alt})"))
    if conclusion in ("decrease", "increase"):
        checks.append(
            (
                "linear violations of parallel trends",
                breakdown > bound,
                f"a differential trend of {breakdown:.3f} per year would overturn it; the pre-period allows up to {bound:.3f}",
            )
        )
    return Robustness(
        outcome=analysis.outcome,
        main=main,
        placebo_in_time=placebo_time,
        leave_one_out=(lo_loo, hi_loo),
        matched=matched,
        matched_did=matched_row,
        synthetic=synth,
        balance=balance,
        trend_gap_years=gap_years,
        trend_breakdown=breakdown,
        pretrend_bound=bound,
        checks=tuple(checks),
    )
