"""Plots of method results, for ``result.plot(ax=)`` and the reports. Each takes a result, draws on ``ax``
(a new figure when ``ax`` is None) and returns the Figure; nothing here estimates anything.

Figures are :class:`matplotlib.figure.Figure`, not pyplot, so that no global figure state builds
up over a batch run and a notebook shows each once. The house style (sizes, colours, fonts of at
least 10 points) is shared with :mod:`evallib.reporting.plots`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import LayoutEngine
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


#: Space (points) between the figure's edge and what is drawn, and between stacked pieces of text.
_PAD = 4.0


@lru_cache(maxsize=8192)
def _text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height in points of ``text`` (lines split at newlines) in the house font at ``size`` points."""
    from matplotlib.textpath import text_to_path

    lines = text.split("\n")
    width = max(text_to_path.get_text_width_height_descent(line, FontProperties(size=size), False)[0] for line in lines)
    return width, size * 1.2 * len(lines)  # matplotlib's line spacing (1.2), what a line takes on the page


def _wrap(text: str, size: float, width: float) -> str:
    """``text`` wrapped at word boundaries into lines at most ``width`` points wide (in the house font)."""
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            trial = f"{line} {word}" if line else word
            if line and _text_size(trial, size)[0] > width:
                out.append(line)
                line = word
            else:
                line = trial
        out.append(line)
    return "\n".join(out)


def _tick_labels(axis: Any, lo: float, hi: float) -> list[tuple[float, str]]:
    """Where ``axis`` will draw tick labels inside ``lo``..``hi`` (as a fraction of the axis) and their text: its
    locator and formatter, no drawing.
    """
    span = (hi - lo) or 1.0
    locs = [v for v in axis.get_majorticklocs() if lo - 1e-9 * abs(span) <= v <= hi + 1e-9 * abs(span)]
    labels = axis.get_major_formatter().format_ticks(locs) if locs else []
    return [((v - lo) / span, t) for v, t in zip(locs, labels, strict=True) if t]


class FixedLayout(LayoutEngine):
    """Margins of a one-axes figure from the text it holds, measured once (font metrics, no drawing).

    Constrained layout draws the figure to find its margins, then draws it again to save it: two thirds of a
    report figure's cost. This engine measures the title (wrapped here to the width it has), the axis labels,
    the tick labels its locators and formatters will give, a legend below the axes and the start marker's label,
    and sets the margins once. Figures with more than one axes are left as they are.
    """

    _adjust_compatible = True
    _colorbar_gridspec = True

    def execute(self, fig: Any) -> None:
        """Set the margins of ``fig`` (a :class:`~matplotlib.figure.Figure`) so that its text fits inside."""
        if len(fig.axes) != 1:
            return
        for _ in range(2):  # the tick locators choose their ticks for the axes' size: once more at the new size
            self._place(fig, fig.axes[0])

    @staticmethod
    def _place(fig: Any, ax: Any) -> None:
        w_pt, h_pt = fig.get_figwidth() * 72, fig.get_figheight() * 72
        tick = rcParams["ytick.major.size"] + rcParams["ytick.major.pad"]
        x0, x1 = sorted(ax.get_xlim())
        y0, y1 = sorted(ax.get_ylim())
        fx, fy = (
            FontProperties(
                size=axis.get_tick_params(which="major").get("labelsize", rcParams["xtick.labelsize"])
            ).get_size_in_points()
            for axis in (ax.xaxis, ax.yaxis)
        )
        ylabels = [_text_size(t, fy) for _, t in _tick_labels(ax.yaxis, y0, y1)]
        xticks = [(f, _text_size(t, fx)[0]) for f, t in _tick_labels(ax.xaxis, x0, x1)]
        left = _PAD + tick + max((w for w, _ in ylabels), default=0.0)
        if ax.yaxis.label.get_text():
            left += _text_size(ax.yaxis.label.get_text(), ax.yaxis.label.get_fontsize())[1] + rcParams["axes.labelpad"]
        bottom = _PAD + tick + (_text_size("0", fx)[1] if xticks else 0.0)
        if ax.xaxis.label.get_text():
            bottom += (
                _text_size(ax.xaxis.label.get_text(), ax.xaxis.label.get_fontsize())[1] + rcParams["axes.labelpad"]
            )
        for legend in fig.legends:  # below the axes (``finish_axes``): its rows, their spacing, its padding
            texts = legend.get_texts()
            rows = math.ceil(len(texts) / max(1, legend._ncols))
            size = texts[0].get_fontsize() if texts else FONT
            bottom += rows * size * 1.2 + (rows - 1) * 0.5 * size + (2 * 0.4 + 0.5) * size
        right = _PAD
        axes_w = w_pt - left - right
        # x tick labels are centred on their ticks: the first and last may run past the axes' ends; so may the
        # start marker's label, right of its line
        over_left = max((w / 2 - f * axes_w for f, w in xticks), default=0.0)
        left = max(left, _PAD + over_left)
        axes_w = w_pt - left - right
        overhang = max((f * axes_w + w / 2 - axes_w for f, w in xticks), default=0.0)
        for text in ax.texts:
            if hasattr(text, "xy") and text.get_text():
                frac = (ax.xaxis.convert_units(text.xy[0]) - x0) / ((x1 - x0) or 1.0)
                width = 3 + _text_size(text.get_text(), text.get_fontsize())[0]
                overhang = max(overhang, frac * axes_w + width - axes_w)
        right += max(overhang, 0.0)
        top = _PAD + max((h for _, h in ylabels[-1:]), default=0.0) / 2
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_text():
                title.set_wrap(False)  # wrapped here, once, to the width from its left end to the figure's edge
                title.set_text(_wrap(title.get_text(), title.get_fontsize(), 0.96 * (w_pt - left) - _PAD))
                top = max(top, _PAD + _text_size(title.get_text(), title.get_fontsize())[1] + rcParams["axes.titlepad"])
        offset = (
            ax.yaxis.get_major_formatter().get_offset() if hasattr(ax.yaxis.get_major_formatter(), "get_offset") else ""
        )
        if offset:
            top += _text_size(offset, fy)[1]
        else:  # nothing above the axes but the title: matplotlib need not measure the axes again to place it
            ax._autotitlepos = False
        height = max(h_pt - top - bottom, 0.3 * h_pt)
        fig.subplots_adjust(
            left=left / w_pt, right=1 - right / w_pt, top=1 - top / h_pt, bottom=(h_pt - top - height) / h_pt
        )


def new_axes(ax: Axes | None, size: tuple[float, float] = (FIG_WIDTH, 3.2)) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: ``ax`` and its figure, or a new figure of ``size`` inches (capped at the
    report width) whose margins :class:`FixedLayout` sets from its text.
    """
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=(min(size[0], FIG_WIDTH), size[1]), dpi=96, layout=FixedLayout())
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
        histtype="stepfilled",  # one patch, not one per bar (the bars have no edges: it looks the same)
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
    ax.plot(result.gap.index, result.gap, color=SITE_COLOUR, linewidth=2, label="site minus synthetic control")
    if result.placebo_gaps is not None:  # one artist for every placebo's gap, beneath the site's
        gaps = result.placebo_gaps
        x = np.asarray(ax.xaxis.convert_units(gaps.index), dtype=float)
        lines = [np.column_stack([x, gaps[unit].to_numpy(dtype=float)]) for unit in result.placebos["unit"]]
        ax.add_collection(LineCollection(lines, colors=COMPARISON_COLOUR, alpha=0.25, linewidths=0.8, zorder=1))
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
