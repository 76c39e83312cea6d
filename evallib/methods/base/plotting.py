"""Plots of method results, for ``result.plot(ax=)`` and the reports. Each takes a result, draws on ``ax``
(a new figure when ``ax`` is None) and returns the Figure; nothing here estimates anything.

Figures are :class:`matplotlib.figure.Figure`, not pyplot, so that no global figure state builds
up over a batch run and a notebook shows each once. The house style (sizes, colours, fonts of at
least 10 points) is shared with :mod:`evallib.reporting.plots`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from evallib.vocabulary import METHOD_LABELS

if TYPE_CHECKING:
    from matplotlib.typing import LegendLocType

SITE_COLOUR = "#005EB8"  # NHS blue
COMPARISON_COLOUR = "#768692"  # NHS mid grey
FLAG_COLOUR = "#DA291C"


#: Width of a report figure in inches and its smallest font in points: shown 360 px wide (a phone) or more,
#: every label is at least 10 px (10 pt x 360 px / (72 x 4.8 in) = 10.4 px); wider screens show it larger.
FIG_WIDTH = 4.8
FONT = 10
TITLE_FONT = 11


def new_axes(ax: Axes | None, size: tuple[float, float] = (FIG_WIDTH, 3.2)) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: ``ax`` and its figure, or a new figure of ``size`` inches (capped at the report width)."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=(min(size[0], FIG_WIDTH), size[1]), dpi=96, layout="constrained")
    return fig, fig.add_subplot()


def plain(text: str) -> str:
    """Text drawn as written: matplotlib reads ``$...$`` in any label as mathematics (and can fail on it)."""
    return str(text).replace("$", r"\$")


def finish_axes(ax: Axes, title: str, *, legend: LegendLocType | None) -> None:
    """The house style every plot ends with: a left title, a frameless legend (at ``legend``), open axes.

    Every text from params or data is escaped here (titles, axis labels, legend labels).
    """
    ax.set_title(plain(title), fontsize=TITLE_FONT, loc="left", wrap=True)
    ax.set_xlabel(plain(ax.get_xlabel()), fontsize=FONT)
    ax.set_ylabel(plain(ax.get_ylabel()), fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    for line in [*ax.get_lines(), *ax.collections, *ax.patches]:
        label = line.get_label()
        if isinstance(label, str) and label and not label.startswith("_"):
            line.set_label(plain(label))
    if legend is not None and len(ax.figure.axes) == 1 and ax.get_legend_handles_labels()[0]:
        # Below the plot, where it covers no data (its own figure: a caller's grid keeps the legend inside).
        handles, labels = ax.get_legend_handles_labels()
        ncols = 2 if max(len(t) for t in labels) <= 26 else 1
        ax.figure.legend(handles, labels, frameon=False, fontsize=FONT, loc="outside lower center", ncols=ncols)
    elif legend is not None:
        ax.legend(frameon=False, fontsize=FONT, loc=legend)
    ax.spines[["top", "right"]].set_visible(False)


def mark_start(ax: Axes, start: pd.Timestamp, label: str = "intervention start") -> None:
    """Mark the treatment start on ``ax``: a dashed vertical line with ``label`` at its top."""
    ax.axvline(start, color=FLAG_COLOUR, linestyle="--", linewidth=1)
    ax.annotate(
        label,
        xy=(start, 1),
        xycoords=("data", "axes fraction"),
        xytext=(3, -12),
        textcoords="offset points",
        fontsize=FONT,
        color=FLAG_COLOUR,
    )


def plot_placebo_distribution(
    result: Any, *, title: str = "", xlabel: str = "estimate", ax: Axes | None = None, marked: float | None = None
) -> Figure:
    """Histogram of placebo estimates with the site's estimate (or ``marked``, on the placebos' scale) marked."""
    if result.placebo_estimates is None:
        raise ValueError("this result has no placebo distribution (inference was not placebo_in_space)")
    fig, ax = new_axes(ax, (FIG_WIDTH, 3.0))
    est = np.asarray(result.placebo_estimates)
    ax.hist(
        est,
        bins=min(40, max(10, len(est) // 4)),
        color=COMPARISON_COLOUR,
        alpha=0.8,
        label="placebo estimates (comparison units)",
    )
    site = result.estimate if marked is None else marked
    head = getattr(result, "headline", None)
    method = METHOD_LABELS.get(head.method, head.method.replace("_", " ")) if head is not None else ""
    # the legend names the estimator whose placebos these are, so a histogram never passes for another's
    ax.axvline(site, color=SITE_COLOUR, linewidth=2.2, label=f"this site ({method})" if method else "this site")
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("number of units")
    finish_axes(ax, title, legend="best")
    return fig


def plot_its(
    result: Any,
    *,
    title: str = "",
    ylabel: str = "",
    scale: float = 1.0,
    ax: Axes | None = None,
) -> Figure:
    """Observed series, fitted segmented model and the projected counterfactual (own or controlled ITS).

    ``scale`` multiplies every series (e.g. ``100 / pre-period mean`` for an index), so that a
    published figure of counts never shows them on a labelled axis.
    """
    fig, ax = new_axes(ax)
    start = result.intervention_start
    obs, fitted, cf = result.observed * scale, result.fitted * scale, result.counterfactual * scale
    ax.plot(obs.index, obs, "o", markersize=3, color=SITE_COLOUR, alpha=0.7, label="observed")
    ax.plot(fitted.index, fitted, color=SITE_COLOUR, linewidth=1.5, label="fitted (with seasonality)")
    post = cf.index >= start
    low, high = getattr(result, "counterfactual_low", None), getattr(result, "counterfactual_high", None)
    if low is not None and high is not None:
        ax.fill_between(
            cf.index[post],
            (result.counterfactual_low * scale)[post],
            (result.counterfactual_high * scale)[post],
            color=FLAG_COLOUR,
            alpha=0.12,
            linewidth=0,
            label="95% interval without the intervention",
        )
    step = _period_step(cf.index)[1]
    for excluded in getattr(result, "excluded", ()):
        ax.axvspan(excluded, excluded + step, color="grey", alpha=0.15, linewidth=0)
    ax.plot(
        cf.index[post],
        cf[post],
        color=FLAG_COLOUR,
        linestyle=":",
        linewidth=1.5,
        label="projected without the intervention",
    )
    mark_start(ax, start)
    ax.set_ylabel(ylabel)
    finish_axes(ax, title, legend="lower left")
    return fig


def plot_event_study(
    result: Any,
    *,
    title: str = "",
    xlabel: str = "event time (periods relative to the start)",
    ylabel: str = "effect",
    ax: Axes | None = None,
) -> Figure:
    """Effects by event time with their intervals; the reference period is marked at zero.

    Takes an :class:`~evallib.methods.did.event_study.EventStudyResult` or the ``dynamic`` aggregation of a
    Callaway-Sant'Anna result.
    """
    fig, ax = new_axes(ax, (FIG_WIDTH, 3.2))
    if hasattr(result, "event_times"):  # an event study (this module imports no result class: they import it)
        points = [(e, r.estimate, r.ci_low, r.ci_high) for e, r in zip(result.event_times, result.rows, strict=True)]
        points.append((result.reference, 0.0, 0.0, 0.0))
        ref = result.reference
    else:
        points = [(int(r.term.rsplit(" ", 1)[1]), r.estimate, r.ci_low, r.ci_high) for r in result.components]
        ref = None
    points.sort()
    e = np.array([p[0] for p in points], float)
    est = np.array([p[1] for p in points])
    lo = np.array([p[2] for p in points])
    hi = np.array([p[3] for p in points])
    finite = np.isfinite(lo) & np.isfinite(hi)
    colours = [SITE_COLOUR if x >= 0 else COMPARISON_COLOUR for x in e]
    ax.vlines(e[finite], lo[finite], hi[finite], colors=np.array(colours)[finite], linewidth=2, alpha=0.6)
    ax.scatter(e, est, c=colours, zorder=3, s=28)
    if ref is not None:
        ax.scatter([ref], [0.0], facecolors="white", edgecolors="black", zorder=4, s=40, label=f"reference ({ref})")
        ax.legend(frameon=False, fontsize=FONT, loc="best")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axvline(-0.5, color=FLAG_COLOUR, linestyle="--", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    finish_axes(ax, title, legend=None)
    return fig


def _period_step(index: pd.Index) -> tuple[str, pd.DateOffset]:
    """One period of a dated series, in words and as an offset, from its spacing (months when it cannot tell)."""
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        days = float(np.median(np.diff(index.to_numpy()).astype("timedelta64[D]").astype(float)))
        if days < 10:
            return "week", pd.DateOffset(weeks=1)
        if days > 300:
            return "year", pd.DateOffset(years=1)
        if days > 80:
            return "quarter", pd.DateOffset(months=3)
    return "month", pd.DateOffset(months=1)


def plot_its_residuals(result: Any, *, title: str = "", ax: Axes | None = None) -> Figure:
    """Residual autocorrelation of an ITS fit (bars) with the approximate 95% band for white noise."""
    if result.residual_acf is None or result.residuals is None:
        raise ValueError("this result has no residual autocorrelations")
    fig, ax = new_axes(ax, (FIG_WIDTH, 2.6))
    lags = np.arange(1, len(result.residual_acf) + 1)
    ax.bar(lags, result.residual_acf, color=SITE_COLOUR, width=0.6)
    band = 1.96 / np.sqrt(len(result.residuals))
    ax.axhspan(-band, band, color=COMPARISON_COLOUR, alpha=0.2, linewidth=0, label="95% band if no autocorrelation")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel(f"lag ({_period_step(result.residuals.index)[0]}s)")
    ax.set_ylabel("residual autocorrelation")
    finish_axes(ax, title, legend="best")
    return fig


def plot_synthetic_control(result: Any, *, title: str = "", ylabel: str = "", ax: Axes | None = None) -> Figure:
    """Gap between the site and its synthetic control, over the placebo gaps (grey)."""
    fig, ax = new_axes(ax)
    if result.placebo_gaps is not None:
        for unit in result.placebos["unit"]:
            ax.plot(
                result.placebo_gaps.index, result.placebo_gaps[unit], color=COMPARISON_COLOUR, alpha=0.25, linewidth=0.8
            )
    ax.plot(result.gap.index, result.gap, color=SITE_COLOUR, linewidth=2, label="site minus synthetic control")
    ax.axhline(0, color="black", linewidth=0.6)
    mark_start(ax, result.start)
    ax.set_ylabel(ylabel)
    finish_axes(ax, title, legend="lower left")
    return fig


def plot_paths(
    treated: pd.Series,
    comparison: pd.Series,
    start: object,
    *,
    title: str = "",
    ylabel: str = "",
    labels: tuple[str, str] = ("treated units", "comparison"),
    ax: Axes | None = None,
) -> Figure:
    """The treated units' path against the comparison's, with the start marked."""
    fig, ax = new_axes(ax)
    ax.plot(comparison.index, comparison, color=COMPARISON_COLOUR, linewidth=1.6, linestyle="--", label=labels[1])
    ax.plot(treated.index, treated, color=SITE_COLOUR, linewidth=2, label=labels[0])
    if isinstance(start, pd.Timestamp):
        mark_start(ax, start)
    else:
        ax.axvline(start, color=FLAG_COLOUR, linewidth=1, linestyle=":")  # type: ignore[arg-type]
    ax.set_ylabel(ylabel)
    finish_axes(ax, title, legend="best")
    return fig
