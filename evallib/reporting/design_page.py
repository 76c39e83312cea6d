"""The design step as a page and a figure: power curves, detectable effects, the recommended comparison pool."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evallib.evaluation.studies.design import POOL_MARGIN, POWER, SiteDesign
from evallib.protocol.windows import period_text
from evallib.protocol.writing import make_dir, write_atomic
from evallib.reporting.templating import figure_html, render, stylesheet
from evallib.vocabulary import estimator_label

_HEAD = [
    "Estimator",
    "Pool",
    "Follow-up (months)",
    "Comparison units",
    "Fake starts",
    "Minimum detectable effect",
    "Interval width",
    "Rejected at fake starts",
    "Power for the hoped-for effect",
]


def plot_power_curve(result: SiteDesign, *, ax: Axes | None = None, pool: str | None = None) -> Figure:
    """Power against effect size for the primary estimator, one line per follow-up (``pool``: default recommended).

    Takes the result and an ``ax``; computes nothing.
    """
    if ax is None:
        fig = Figure(figsize=(6.4, 3.6))
        ax = fig.add_subplot()
    fig_ = ax.get_figure()
    assert isinstance(fig_, Figure)
    pool = pool or result.recommended_pool
    c = result.curves
    c = c[(c["estimator"] == result.primary_estimator) & (c["pool"] == pool)]
    pct = result.scale == "log"
    for months, g in c.groupby("follow_up"):
        x = g["effect"].abs()
        x = 100 * (1 - (-x).map(math.exp)) if pct else x
        ax.plot(x, g["power"], label=f"{months} {result.period_word}s")
    full = [float(g.loc[g["power"] >= 0.99, "effect"].abs().min()) for _, g in c.groupby("follow_up")]
    if full and all(np.isfinite(full)):  # end the axis a little past where every line reaches full power
        edge = 1.3 * max(max(full), abs(result.hoped_for_area))
        ax.set_xlim(0, 100 * (1 - math.exp(-edge)) if pct else edge)
    hoped = abs(result.hoped_for_area)
    ax.axvline(100 * (1 - math.exp(-hoped)) if pct else hoped, color="grey", linestyle="--", label="hoped for")
    ax.axhline(POWER, color="grey", linewidth=0.8)
    ax.set_xlabel(f"true {result.expected_direction} ({'%' if pct else 'points'})")
    ax.set_ylabel("power at 5%")
    ax.set_ylim(0, 1)
    ax.set_title(f"{estimator_label(result.primary_estimator)}, {pool.replace('_', ' ')} pool")
    ax.legend(fontsize="small")
    return fig_


def _cell(v: float, pct: bool) -> str:
    return "none" if not math.isfinite(v) else (f"{v:.1f}%" if pct else f"{v:.2f}")


def design_html(result: SiteDesign) -> str:
    """The design page (one HTML file, the figure inline)."""
    pct = result.scale == "log"
    freq = "weekly" if result.period_word == "week" else "monthly"
    rows = [
        [
            estimator_label(r.estimator),
            r.pool.replace("_", " "),
            str(r.follow_up),
            str(r.n_comparators),
            str(r.fake_starts),
            _cell(r.mde_percent, pct),
            _cell(100 * r.ci_width if pct else r.ci_width, pct),
            "-" if not math.isfinite(r.fake_start_rejection) else f"{r.fake_start_rejection:.0%}",
            "-" if not math.isfinite(r.power_hoped_for) else f"{r.power_hoped_for:.0%}",
        ]
        for r in result.table.itertuples()
    ]
    unit = "%" if pct else " points"
    hoped = f"a {result.hoped_for_percent:g}{unit} {result.expected_direction}" + (
        f" in a group making up {result.share:.0%} of the area (about {abs(result.hoped_for_area) * 100:.2g}% at area level)"
        if result.share < 1
        else ""
    )
    body: Markup = render(
        "design.html.j2",
        site_id=result.site_id,
        verdict=result.verdict(),
        history=f"{period_text(result.history[0], freq)} to {period_text(result.history[1], freq)}",
        pre_periods=result.pre_periods,
        hoped=hoped,
        recommended_pool=result.recommended_pool.replace("_", " "),
        protocol_line=result.protocol_line(),
        margin=f"{POOL_MARGIN:.0%}",
        figure=figure_html(plot_power_curve(result), "power against the true effect for each follow-up"),
        head=[f"Follow-up ({result.period_word}s)" if h == _HEAD[2] else h for h in _HEAD],
        period=result.period_word,
        staggered=result.primary_estimator == "callaway_santanna",
        rows=rows,
        notes=list(result.notes),
        title=f"Design: {result.site_id}",
        style=stylesheet(),
        fingerprint="",
        programme_link=False,
        calibration_link=False,
        attribution="",
    )
    return str(body)


def write_design(result: SiteDesign, folder: Path, base: Path) -> list[Path]:
    """Write ``design.html`` and ``design.csv`` (the tidy table) into ``folder`` (made below ``base``)."""
    make_dir(folder, base)
    page, table = folder / "design.html", folder / "design.csv"
    write_atomic(page, design_html(result))
    write_atomic(table, result.tidy().to_csv(index=False))
    return [page, table]
