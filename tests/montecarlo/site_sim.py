"""Whole-site replications for the Monte Carlo suite: simulated NHS-like panels through ``evaluate_site``.

A replication draws one panel (:func:`evallib.methods.simulate.simulate_nhs_panel`), evaluates it with
the public API exactly as a site is evaluated (a :class:`~evallib.protocol.params.SiteProtocol` built
with ``from_mapping``, the panel passed as ``panel=`` to :func:`~evallib.evaluation.site.evaluate.evaluate_site`)
and keeps what the tests judge: every published row, each headline estimator's own row (before the
volatile-site rule withholds it), the pre-trend test and event study on the same panel, the verdict
and its checks. Replications run in a pool of processes (``EVALLIB_MC_WORKERS``, default 2).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evallib.evaluation.site.estimators import DesignData, fit_headline
from evallib.evaluation.site.evaluate import evaluate_site
from evallib.evaluation.site.volatile import WITHHELD
from evallib.methods.base.design import Design
from evallib.methods.did.event_study import EventStudy
from evallib.methods.did.twfe import pretrend_test
from evallib.methods.simulate import simulate_nhs_panel
from evallib.protocol.params import SiteProtocol
from evallib.sources.panel import validate_panel

from .sim import rejects, run_all


@dataclass(frozen=True)
class SiteDesign:
    """A kind of site analysis: its units, windows and data source (the site's units come first)."""

    name: str
    n_comparators: int
    n_pre: int
    n_post: int
    first_month: str
    data_source: str
    outcome: str
    noise_spread: float = 0.5

    @property
    def months(self) -> pd.DatetimeIndex:
        return pd.date_range(self.first_month, periods=self.n_pre + self.n_post, freq="MS")

    @property
    def start(self) -> pd.Timestamp:
        return self.months[self.n_pre]

    @property
    def bin_months(self) -> int:
        # The site analysis's event-study bins: whole years when the windows allow, else half-years.
        return 12 if self.n_pre >= 24 and self.n_post >= 12 else 6


#: A vanguard on commissioner data: about 140 comparison CCGs, April 2013 - March 2018, start April 2015. The
#: spread of volatility across CCGs (SD of log noise 0.3) is the bundled data's in that window (README).
VANGUARD = SiteDesign(
    "vanguard CCGs", 140, 24, 36, "2013-04", "mar_commissioner_2008_2019", "nonelective_admissions", noise_spread=0.3
)
#: A site of trusts, as in the rest of the suite: 130 trusts x 96 months, start at month 60 (April 2016).
TRUSTS = SiteDesign("trusts", 129, 60, 36, "2011-04", "ae_monthly_2010_2021", "ae_attendances")


def protocol(design: SiteDesign, n_treated: int, primary_estimator: str = "synthetic_did") -> SiteProtocol:
    """The protocol of a simulated site: the first ``n_treated`` units, every other unit a comparator."""
    m = design.months
    return SiteProtocol.from_mapping(
        {
            "site_id": "SIM",
            "site_name": "Simulated site",
            "site_type": "vanguard",
            "care_model": "PACS",
            "membership_confidence": "high",
            "treated_units": [f"T{i:03d}" for i in range(n_treated)],
            "intervention_start": f"{design.start:%Y-%m}",
            "primary_outcome": design.outcome,
            "expected_direction": "decrease",
            "pre_period_start": f"{m[0]:%Y-%m}",
            "pre_period_end": f"{m[design.n_pre - 1]:%Y-%m}",
            "post_period_end": f"{m[-1]:%Y-%m}",
            "data_source": design.data_source,
            "comparison_pool": "all_eligible",
            "type1_comparators_only": False,
            "primary_estimator": primary_estimator,
        }
    )


@dataclass(frozen=True)
class Task:
    """One replication: design, treated units, true effect (log), the first treated unit's volatility, seed."""

    design: SiteDesign
    n_treated: int
    effect: float
    seed: int
    treated_volatility: float | None = None


Row = tuple[str, str, str, float, float, float, float]  # key, term, inference, estimate, ci_low, ci_high, p_value


def _row(key: str, r: Any) -> Row:
    return (key, r.term, r.inference, r.estimate, r.ci_low, r.ci_high, r.p_value)


def _event_study(long: pd.DataFrame, design: SiteDesign) -> list[Row]:
    """The site analysis's event study (bins of whole half-years or years, reference the bin before the start)."""
    d = long.assign(_y=np.log(long["value"]))
    months = (d["period"].dt.year - design.start.year) * 12 + (d["period"].dt.month - design.start.month)
    d["event_time"] = np.floor_divide(months, design.bin_months)
    binned = d.groupby(["unit", "event_time"], as_index=False).agg(value=("_y", "mean"), treated=("treated", "first"))
    es = EventStudy("value", "unit", "event_time", "treated", start=0, reference=-1, inference="placebo_in_space")
    r = es.fit(binned)
    return [_row("event_study", x) for x in (*r.rows, r.pretrend)]


def replicate(task: Task) -> dict[str, Any]:
    """Evaluate one simulated site; return its published rows, estimators' own rows, verdict and checks."""
    t0 = time.process_time()
    d = task.design
    frame = simulate_nhs_panel(
        d.n_comparators + task.n_treated,
        d.n_pre + d.n_post,
        n_treated=task.n_treated,
        start_period=d.n_pre,
        effect=task.effect,
        treated_volatility=task.treated_volatility,
        noise_spread=d.noise_spread,
        first_month=d.first_month,
        seed=task.seed,
    )
    panel = validate_panel(frame[["unit", "period", "value"]].assign(outcome=d.outcome), "monthly", source="simulated")
    ev = evaluate_site(protocol(d, task.n_treated), panel=panel)
    a = ev.primary
    if a is None:  # e.g. noise read as a level shift in the site's own series, leaving too short a window
        return {"not_evaluable": ev.reason, "published": [], "own": [], "cpu_s": time.process_time() - t0}
    published = [_row(r.method + ("_studentized" if r.inference == "placebo_studentized" else ""), r) for r in ev.rows]
    long = frame[["period", "unit", "value", "treated", "post"]]
    own: list[Row] = []
    for name, h in a.headline.items():
        if name == "controlled_its":
            if a.volatile:  # its rows are withheld with the result's: refit it as the site analysis does
                design = Design.from_long(
                    long, outcome="value", unit="unit", time="period", treated="treated", post="post", measure="count"
                )
                h = fit_headline(name, DesignData(design))
            own.extend(_row(name, r) for r in h.result.rows)
        else:
            own.append(_row(name, h.result.headline))
    # The pre-period tests on the same panel (every unit, before the site analysis's screening), never withheld.
    pre = long[long["post"] == 0]
    pt = pretrend_test(pre, outcome="value", unit="unit", time="period", treated="treated", transform="log")
    own.append(_row("did_pretrend", pt))
    own.extend(_event_study(long, d))
    rob = a.robustness
    rm = rob.sensitivity if rob is not None else None
    return {
        "not_evaluable": "",
        # Level shifts the site screen found in the site's own series and what it did (stitched, cut, kept).
        "breaks": [b.action for b in a.coverage.breaks],
        "sensitivity": None
        if rm is None
        else (rm.max_pre_violation, rm.bias_per_mbar, rm.breakdown, rm.n_post_periods),
        "main_ci": (a.main.row.ci_low, a.main.row.ci_high),
        "screened": len(a.coverage.screened),
        "published": published,
        "own": own,
        "verdict": rob.verdict if rob is not None else "",
        "checks": {c.name: c.status for c in rob.checks} if rob is not None else {},
        "main": a.main.name,
        "main_estimate": a.main.row.estimate,
        "main_p": a.main.row.p_value,
        "volatile": a.volatile,
        "noise_percentile": a.noise_percentile,
        "n_comparators": a.coverage.n_comparators,
        # The own-series cumulative effect's truth: the site's observed post-period counts less what they would
        # have been without the effect.
        "cumulative_truth": -math.expm1(-task.effect)
        * float(frame.loc[frame["treated"].eq(1) & frame["post"].eq(1), "value"].sum()),
        "cpu_s": time.process_time() - t0,
    }


def evaluated(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The replications that were evaluated (a not-evaluable one has no answer to judge; counted by
    :func:`not_evaluable_rate`)."""
    return [r for r in results if not r["not_evaluable"]]


def not_evaluable_rate(results: list[dict[str, Any]]) -> float:
    """Share of replications the site analysis found not evaluable."""
    return sum(bool(r["not_evaluable"]) for r in results) / len(results) if results else float("nan")


def simulate_sites(
    design: SiteDesign, n_treated: int, effect: float, reps: int, seed: int, treated_volatility: float | None = None
) -> list[dict[str, Any]]:
    """:func:`replicate` for ``reps`` sites, spread over the worker processes.

    Seeds ``seed``, ``seed + 2``, ...: :func:`~evallib.methods.simulate.simulate_nhs_panel` draws the counts
    with ``seed + 1``, which must not be the next site's seed.
    """
    tasks = [Task(design, n_treated, effect, seed + 2 * i, treated_volatility) for i in range(reps)]
    return run_all(replicate, tasks)


# ---- judging rows ---------------------------------------------------------------------------------------------


def truth(key: str, term: str, effect: float, cumulative: float = float("nan")) -> float:
    """The true value of a row's quantity when the site's expected counts change by ``effect`` (log) from the start.

    Proportional effects are on the log scale (logs), in percent (``effect_at_*``, ``mean_post_effect``) or as a
    rate ratio; pre-period quantities (leads, pre-trends, placebo in time) and slope changes are 0 (1 for ratios).
    """
    if term.startswith("event_time_"):
        return effect if int(term.removeprefix("event_time_")) >= 0 else 0.0
    if term in ("slope_change", "pre_trend_difference", "joint_leads_wald") or term.startswith("placebo_in_time"):
        return 0.0
    if term == "cumulative_effect":
        return cumulative
    if key in ("rate_ratio", "did_poisson_fe"):
        return math.exp(effect)
    if term.startswith("effect_at_") or term == "mean_post_effect":
        return 100 * math.expm1(effect)
    return effect


def null_value(key: str) -> float:
    return 1.0 if key in ("rate_ratio", "did_poisson_fe") else 0.0


@dataclass
class Tally:
    """Size or coverage of one row over replications, and whether p and interval agreed every time."""

    hits: int = 0
    n: int = 0
    disagreements: int = 0

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else float("nan")


def tally(
    results: Iterable[dict[str, Any]],
    effect: float,
    which: str = "published",
) -> dict[tuple[str, str], Tally]:
    """Per (key, term): rejections of the true value (size when ``effect`` is 0; 1 - coverage otherwise).

    Withheld rows are left out; a test without an interval (the joint Wald test of the leads) counts its
    p-value's rejections of a true null.
    """
    out: dict[tuple[str, str], Tally] = {}
    for res in results:
        for key, term, inference, _estimate, lo, hi, p in res[which]:
            if inference == WITHHELD or not math.isfinite(p):
                continue
            t = out.setdefault((key, term), Tally())
            value = truth(key, term, effect, res["cumulative_truth"])
            if math.isnan(lo) or math.isnan(hi):  # a test without an interval: size only
                if value != null_value(key):
                    continue
                t.hits += rejects(p)
            else:
                t.hits += not (lo <= value <= hi)
                t.disagreements += (not rejects(p)) != (lo <= null_value(key) <= hi)
            t.n += 1
    return out
