"""Plots for reports: the site against its comparison pool, pre-period balance and the programme's forest plot,
plus every plot of a method result (:mod:`evallib.methods.base.plotting`, re-exported here). Each takes a result
(or its data), draws on ``ax`` (a new figure when ``ax`` is None) and returns the Figure. Nothing here
estimates anything.
"""

from __future__ import annotations

import math
import textwrap
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from evallib.evaluation.studies.programme import CARE_MODEL_ORDER, ProgrammeData
from evallib.methods.base.plotting import (
    COMPARISON_COLOUR,
    FIG_WIDTH,
    FLAG_COLOUR,
    FONT,
    SITE_COLOUR,
    finish_axes,
    mark_start,
    new_axes,
    plain,
    plot_event_study,
    plot_its,
    plot_its_residuals,
    plot_placebo_distribution,
    plot_synthetic_control,
)

__all__ = [
    "COMPARISON_COLOUR",
    "FLAG_COLOUR",
    "SITE_COLOUR",
    "plain",
    "plot_balance",
    "plot_event_study",
    "plot_forest",
    "plot_its",
    "plot_its_residuals",
    "plot_placebo_distribution",
    "plot_synthetic_control",
    "plot_trends",
    "percent_axis",
]


def percent_axis(ax: Axes, axis: Literal["x", "y"]) -> None:
    """Label an axis drawn on the log scale in the percent changes its values stand for (``log(1.1)`` -> ``+10%``),
    so that a figure speaks the unit of the page's words and tables.
    """

    def fmt(v: float, _pos: object) -> str:
        pct = 100 * math.expm1(v)
        return "0" if abs(pct) < 0.05 else f"{pct:+.0f}%"

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(FuncFormatter(fmt))


def plot_trends(
    trends: pd.DataFrame,
    *,
    intervention_start: pd.Timestamp,
    indexed: bool = True,
    title: str = "",
    site_label: str = "site",
    ax: Axes | None = None,
) -> Figure:
    """Site vs comparison pool over time.

    ``trends`` has a period index and columns ``site`` and ``comparison`` (indexed so
    the baseline year = 100 when ``indexed``; otherwise in the outcome's units).
    """
    fig, ax = new_axes(ax)
    ax.plot(trends.index, trends["site"], color=SITE_COLOUR, linewidth=1.8, label=site_label)
    ax.plot(trends.index, trends["comparison"], color=COMPARISON_COLOUR, linewidth=1.4, label="comparison pool (sum)")
    if indexed:
        ax.axhline(100, color="black", linewidth=0.5, alpha=0.5)
        ax.set_ylabel("index (baseline year = 100)")
    else:
        ax.set_ylabel("%")
    mark_start(ax, intervention_start)
    finish_axes(ax, title, legend="lower left")
    return fig


def plot_balance(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Figure:
    """Standardised differences (site minus comparison set) of each pre-period feature, per set (shaded: within
    0.25 pool standard deviations).
    """
    fig, ax = new_axes(ax, (FIG_WIDTH, 3.2))
    cols = [c for c in table.columns if c.endswith("(std. diff.)")]
    rows = table.dropna(subset=cols, how="all")
    y = np.arange(len(rows))
    markers = ["o", "s", "D", "^"]
    for i, c in enumerate(cols):
        ax.scatter(rows[c], y, marker=markers[i % len(markers)], label=c.replace(" (std. diff.)", ""), zorder=3)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.axvspan(-0.25, 0.25, color=COMPARISON_COLOUR, alpha=0.15, linewidth=0)
    ax.set_yticks(y, [textwrap.fill(plain(f), 20) for f in rows["feature"]])
    ax.set_xlabel("site minus comparison (pool SDs)")
    finish_axes(ax, title, legend=None)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, fontsize=FONT, loc="outside lower center", ncols=3)
    return fig


def plot_forest(data: ProgrammeData, pooled: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Every evaluated site's primary estimate (the estimator its protocol leads with; percent, 95% interval),
    grouped by care model, with pooled diamonds; only the sites the programme pools (its own data).
    """
    ev = data.pooled_sites.copy()
    rows: list[tuple[str, float, float, float, bool]] = []
    for model in [m for m in CARE_MODEL_ORDER if m in set(ev["care_model"])]:
        g = ev[ev["care_model"] == model].sort_values("estimate")
        for r in g.itertuples():
            rows.append((plain(f"{r.site_id} {_short(r.site_name)}"), r.estimate, r.ci_low, r.ci_high, False))
        p = pooled[pooled["care_model"] == model]
        if len(p):
            p = p.iloc[0]
            n = int(p["sites"])
            rows.append(
                (f"{model} pooled ({n} site{'' if n == 1 else 's'})", p["estimate"], p["ci_low"], p["ci_high"], True)
            )
    if ax is None:
        fig = Figure(figsize=(FIG_WIDTH, max(3.0, 0.22 * len(rows) + 1.2)), dpi=96, layout="constrained")
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
    ax.set_yticks(range(len(rows), 0, -1), [r[0] for r in rows], fontsize=FONT)
    ax.set_ylim(0.3, len(rows) + 0.7)
    ticks = np.log(np.array([0.5, 1.0, 2.0]))  # halving and doubling sit symmetrically on the log scale
    ax.set_xticks(ticks, ["-50%", "0", "+100%"], fontsize=FONT)
    ax.set_xlim(-limit, limit)
    ax.set_xlabel("change vs comparison areas", fontsize=FONT)
    fig.suptitle(  # across the figure: the site names take the left of the axes
        plain(textwrap.fill("Each site's primary estimate (blue) and each care model's pooled effect (red)", 45)),
        fontsize=FONT,
        x=0.02,
        ha="left",
    )
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _short(name: str, limit: int = 22) -> str:
    """A site name cut at a word boundary for a plot label ("Northumberland Accountable...")."""
    if len(name) <= limit:
        return name
    cut = name[:limit].rsplit(" ", 1)[0]
    return cut + "\u2026"
