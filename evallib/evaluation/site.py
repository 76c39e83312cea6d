"""Evaluate one site from its protocol: the whole analysis behind a site report.

:func:`evaluate_site` never crashes on a site the data cannot support: it returns
a :class:`SiteEvaluation` whose ``status`` is ``"not evaluable"`` and whose
``reason`` says why in words. Broken input (a bad file, an outcome the data
lacks) still raises :class:`~evallib.errors.DataError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evallib.errors import NotEvaluable
from evallib.evaluation.coverage import MIN_COMPARATORS_FOR_CI, SHORT_FOLLOW_UP, load_panel
from evallib.evaluation.outcome import OutcomeAnalysis, analyse_outcome
from evallib.evaluation.provenance import provenance
from evallib.evaluation.waves import ProgrammeWaves, programme_waves
from evallib.methods.results import TIDY_COLUMNS, Estimate, tidy_frame
from evallib.protocol.params import COVID_START, SiteProtocol
from evallib.sources.panel import Panel

#: End of the COVID-19 disruption of hospital activity counted as an overlap (the 2021/22 recovery year).
COVID_END = pd.Timestamp("2022-04-01")


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
        if w["post_end"] >= COVID_START and w["post_start"] < COVID_END:  # a 2031 start is not a COVID overlap
            raise NotEvaluable(
                f"follow-up ({w['post_start']:%b %Y} to {w['post_end']:%b %Y}) overlaps the COVID-19 disruption of "
                "hospital activity from March 2020, which would swamp any effect of the care model"
            )
        if not protocol.treated_units:
            raise NotEvaluable(
                "the registry lists no acute trust for this site, so trust-level A&E data cannot measure it"
            )
        data = panel if panel is not None else load_panel(protocol)
        analyses = [analyse_outcome(protocol, data, protocol.primary_outcome)]
    except NotEvaluable as exc:
        return SiteEvaluation(protocol=protocol, status="not evaluable", reason=str(exc))
    skipped: dict[str, str] = {}
    for outcome in protocol.outcomes[1:]:
        try:
            analyses.append(analyse_outcome(protocol, data, outcome))
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
