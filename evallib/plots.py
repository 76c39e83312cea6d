"""Plots of results. Each takes a result (or its data), draws on ``ax`` (a new
figure when ``ax`` is None) and returns the Figure. Nothing here estimates anything.

Figures are made with :class:`matplotlib.figure.Figure`, not pyplot, so that no
global figure state builds up over a batch run and a notebook shows each once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evallib.did import DiDResult
from evallib.its import ITSResult

SITE_COLOUR = "#005EB8"  # NHS blue
COMPARISON_COLOUR = "#768692"  # NHS mid grey
FLAG_COLOUR = "#DA291C"


def _axes(ax: Axes | None, size: tuple[float, float] = (7.5, 3.6)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size, dpi=96, layout="constrained")
    return fig, fig.add_subplot()


def _mark_start(ax: Axes, start: pd.Timestamp, label: str = "intervention start") -> None:
    ax.axvline(start, color=FLAG_COLOUR, linestyle="--", linewidth=1)
    ax.annotate(
        label,
        xy=(start, 1),
        xycoords=("data", "axes fraction"),
        xytext=(3, -12),
        textcoords="offset points",
        fontsize=8,
        color=FLAG_COLOUR,
    )


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
    fig, ax = _axes(ax)
    ax.plot(trends.index, trends["site"], color=SITE_COLOUR, linewidth=1.8, label=site_label)
    ax.plot(trends.index, trends["comparison"], color=COMPARISON_COLOUR, linewidth=1.4, label="comparison pool (sum)")
    if indexed:
        ax.axhline(100, color="black", linewidth=0.5, alpha=0.5)
        ax.set_ylabel("index (baseline year = 100)")
    else:
        ax.set_ylabel("%")
    _mark_start(ax, intervention_start)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_placebo_distribution(
    result: DiDResult, *, title: str = "", xlabel: str = "estimate", ax: Axes | None = None
) -> Figure:
    """Histogram of placebo estimates with the site's estimate marked."""
    if result.placebo_estimates is None:
        raise ValueError("this result has no placebo distribution (inference was not placebo_in_space)")
    fig, ax = _axes(ax, (7.5, 3.0))
    est = np.asarray(result.placebo_estimates)
    ax.hist(
        est,
        bins=min(40, max(10, len(est) // 4)),
        color=COMPARISON_COLOUR,
        alpha=0.8,
        label="placebo estimates (comparison units)",
    )
    ax.axvline(result.estimate, color=SITE_COLOUR, linewidth=2.2, label="this site")
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("number of units")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_its(result: ITSResult, *, title: str = "", ylabel: str = "", ax: Axes | None = None) -> Figure:
    """Observed series, fitted segmented model and the projected counterfactual."""
    fig, ax = _axes(ax)
    start = result.intervention_start
    ax.plot(result.observed.index, result.observed, "o", markersize=3, color=SITE_COLOUR, alpha=0.7, label="observed")
    ax.plot(result.fitted.index, result.fitted, color=SITE_COLOUR, linewidth=1.5, label="fitted (with seasonality)")
    post = result.counterfactual.index >= start
    ax.plot(
        result.counterfactual.index[post],
        result.counterfactual[post],
        color=FLAG_COLOUR,
        linestyle=":",
        linewidth=1.5,
        label="projected without the intervention",
    )
    _mark_start(ax, start)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    ax.spines[["top", "right"]].set_visible(False)
    return fig
