"""The programme-level view across all sites, built from their ``results.json`` files.

Reads what the site runs published (nothing is re-estimated), so the programme
summary always matches the site reports: a forest plot of every site's primary
effect grouped by care model, a random-effects pooled estimate per care model, and
the growth table in the form NHS England reported ("growth since baseline: each
care model against the rest of England", here against each site's comparison pool).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evallib.errors import DataError
from evallib.pooling import random_effects
from evallib.report import HTMLBlock, figure_html

CARE_MODEL_ORDER = ("PACS", "MCP", "EHCH", "UEC", "ACC", "ICS", "other")


@dataclass(frozen=True)
class ProgrammeData:
    """One row per site: status, primary DiD estimate (log scale) with interval, growth."""

    sites: pd.DataFrame = field(repr=False)

    @property
    def evaluated(self) -> pd.DataFrame:
        return self.sites[self.sites["status"] == "evaluated"]


def load_programme(outputs: str | Path) -> ProgrammeData:
    """Collect every ``outputs/<site>/results.json``."""
    root = Path(outputs)
    rows = []
    for f in sorted(root.glob("*/results.json")):
        res = json.loads(f.read_text(encoding="utf-8"))
        did = next(
            (
                r
                for r in res.get("results", [])
                if r["method"] == "did_twfe" and r["outcome"] == res.get("primary_outcome")
            ),
            None,
        )
        growth = res.get("growth") or {}
        rows.append(
            {
                "site_id": res["site_id"],
                "site_name": res.get("site_name", ""),
                "care_model": res.get("care_model", "other"),
                "status": res["status"],
                "scale": did["scale"] if did else None,
                "estimate": did["estimate"] if did else np.nan,
                "std_error": did["std_error"] if did else np.nan,
                "ci_low": did["ci_low"] if did and did["ci_low"] is not None else (-np.inf if did else np.nan),
                "ci_high": did["ci_high"] if did and did["ci_high"] is not None else (np.inf if did else np.nan),
                "p_value": did["p_value"] if did else np.nan,
                "site_growth_pct": growth.get("site_growth_pct", np.nan),
                "comparison_growth_pct": growth.get("comparison_growth_pct", np.nan),
            }
        )
    if not rows:
        raise DataError(f"no results.json under {root.name}/: run the site evaluations first (evallib run)")
    return ProgrammeData(pd.DataFrame(rows))


def pooled_by_care_model(data: ProgrammeData) -> pd.DataFrame:
    """DerSimonian-Laird pooled effect per care model, on the log scale and as percent.

    Notes
    -----
    Each site's DiD estimate (log scale) is weighted by ``1 / (se^2 + tau^2)`` with
    ``se`` the SD of its placebo estimates. Sites are treated as independent, which is
    approximate where sites share trusts or comparison trusts.
    """
    ev = data.evaluated
    ev = ev[ev["scale"] == "log"]
    out = []
    for model in [m for m in CARE_MODEL_ORDER if m in set(ev["care_model"])]:
        g = ev[ev["care_model"] == model]
        pooled = random_effects(g["estimate"].to_numpy(), g["std_error"].to_numpy())
        out.append(
            {
                "care_model": model,
                "sites": pooled.k,
                "estimate": pooled.estimate,
                "ci_low": pooled.ci_low,
                "ci_high": pooled.ci_high,
                "p_value": pooled.p_value,
                "percent": 100 * (math.exp(pooled.estimate) - 1),
                "percent_low": 100 * (math.exp(pooled.ci_low) - 1),
                "percent_high": 100 * (math.exp(pooled.ci_high) - 1),
                "tau2": pooled.tau2,
                "i2": pooled.i2,
            }
        )
    return pd.DataFrame(out)


def growth_table(data: ProgrammeData) -> pd.DataFrame:
    """Mean growth (last 12 months of follow-up vs the baseline year) of sites and their comparison pools."""
    ev = data.evaluated.dropna(subset=["site_growth_pct", "comparison_growth_pct"])
    g = ev.groupby("care_model").agg(
        sites=("site_id", "size"),
        site_growth_pct=("site_growth_pct", "mean"),
        comparison_growth_pct=("comparison_growth_pct", "mean"),
    )
    g["difference_points"] = g["site_growth_pct"] - g["comparison_growth_pct"]
    order = [m for m in CARE_MODEL_ORDER if m in g.index]
    return g.loc[order].reset_index()


def plot_forest(data: ProgrammeData, pooled: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Every evaluated site's primary effect (percent, 95% interval), grouped by care model, with pooled diamonds."""
    ev = data.evaluated[data.evaluated["scale"] == "log"].copy()
    rows: list[tuple[str, float, float, float, bool]] = []
    for model in [m for m in CARE_MODEL_ORDER if m in set(ev["care_model"])]:
        g = ev[ev["care_model"] == model].sort_values("estimate")
        for r in g.itertuples():
            rows.append((f"{r.site_id} {r.site_name[:28]}", r.estimate, r.ci_low, r.ci_high, False))
        p = pooled[pooled["care_model"] == model]
        if len(p):
            p = p.iloc[0]
            rows.append((f"{model} pooled ({int(p['sites'])} sites)", p["estimate"], p["ci_low"], p["ci_high"], True))
    if ax is None:
        fig = Figure(figsize=(8, max(3.0, 0.18 * len(rows) + 1)), dpi=80, layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    limit = np.log(3.0)  # intervals are clipped at a tripling either way
    for i, (_label, est, lo, hi, pooled_row) in enumerate(rows):
        y = len(rows) - i
        lo_c, hi_c = max(lo, -limit), min(hi, limit)
        colour = "#DA291C" if pooled_row else "#005EB8"
        ax.plot([lo_c, hi_c], [y, y], color=colour, linewidth=1.2)
        ax.plot([est], [y], marker="D" if pooled_row else "o", color=colour, markersize=6 if pooled_row else 3)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(range(len(rows), 0, -1), [r[0] for r in rows], fontsize=6)
    ticks = np.log(np.array([0.5, 0.75, 1.0, 1.5, 2.0]))
    ax.set_xticks(ticks, ["-50%", "-25%", "0", "+50%", "+100%"])
    ax.set_xlim(-limit, limit)
    ax.set_xlabel("change relative to comparison trusts (95% interval, clipped)")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# --------------------------------------------------------------------------- report blocks


def _pct(v: float) -> str:
    return "unbounded" if not math.isfinite(v) else f"{v:+.1f}%"


def overview(data: ProgrammeData) -> HTMLBlock:
    counts = data.sites["status"].value_counts()
    by_model = data.sites.groupby(["care_model", "status"]).size().unstack(fill_value=0)
    head = "".join(f"<th>{escape(c)}</th>" for c in ["care model", *by_model.columns])
    body = "".join(
        f"<tr><td>{escape(str(m))}</td>" + "".join(f"<td>{int(v)}</td>" for v in row) + "</tr>"
        for m, row in by_model.iterrows()
    )
    text = ", ".join(f"{int(v)} {escape(k)}" for k, v in counts.items())
    return HTMLBlock(
        f"<p><strong>{len(data.sites)} sites: {text}.</strong></p><table class='estimates'><tr>{head}</tr>{body}</table>"
    )


def forest(data: ProgrammeData) -> HTMLBlock:
    pooled = pooled_by_care_model(data)
    return HTMLBlock(figure_html(plot_forest(data, pooled), "forest plot of site effects by care model"))


def pooled_table(data: ProgrammeData) -> HTMLBlock:
    p = pooled_by_care_model(data)
    body = "".join(
        f"<tr><td>{escape(r.care_model)}</td><td>{r.sites}</td><td>{_pct(r.percent)}</td>"
        f"<td>{_pct(r.percent_low)} to {_pct(r.percent_high)}</td><td>{r.p_value:.3f}</td>"
        f"<td>{r.tau2:.4f}</td><td>{100 * r.i2:.0f}%</td></tr>"
        for r in p.itertuples()
    )
    return HTMLBlock(
        "<p>Random-effects (DerSimonian-Laird) pooled effect of each care model on the sites' primary outcome, "
        "relative to comparison trusts. tau&sup2; is the between-site variance (log scale); I&sup2; the share of "
        "variation that is between sites rather than chance. Sites sharing trusts are not independent, so treat "
        "the pooled intervals as approximate.</p>"
        "<table class='estimates'><tr><th>Care model</th><th>Sites</th><th>Pooled effect</th><th>95% interval</th>"
        f"<th>p</th><th>tau&sup2;</th><th>I&sup2;</th></tr>{body}</table>"
    )


def growth(data: ProgrammeData) -> HTMLBlock:
    g = growth_table(data)
    body = "".join(
        f"<tr><td>{escape(r.care_model)}</td><td>{r.sites}</td><td>{r.site_growth_pct:+.1f}%</td>"
        f"<td>{r.comparison_growth_pct:+.1f}%</td><td>{r.difference_points:+.1f}</td></tr>"
        for r in g.itertuples()
    )
    return HTMLBlock(
        "<p>Growth in the primary outcome (A&amp;E attendances) over the last 12 months of follow-up against the "
        "baseline year before the start, as NHS England compared vanguards with the rest of England; here each "
        "site is set against its own comparison pool. Unweighted means over sites.</p>"
        "<table class='estimates'><tr><th>Care model</th><th>Sites</th><th>Sites' growth</th>"
        f"<th>Comparison pools' growth</th><th>Difference (points)</th></tr>{body}</table>"
    )
