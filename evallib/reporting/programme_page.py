"""Sections of the programme page: overview, forest plot, pooled effects and growth since baseline (rendered
from templates, autoescaped).
"""

from __future__ import annotations

import math

from evallib.evaluation.studies.growth import CARE_MODELS as GROWTH_CARE_MODELS
from evallib.evaluation.studies.growth import NO_VANGUARD, programme_growth
from evallib.evaluation.studies.programme import ProgrammeData, growth_table, pooled_by_care_model
from evallib.reporting.blocks import HTMLBlock, render
from evallib.reporting.plots import plot_forest
from evallib.reporting.templating import figure_html
from evallib.reporting.words import p_text


def _pct(v: float) -> str:
    return "unbounded" if not math.isfinite(v) else f"{v:+.1f}%"


def overview(data: ProgrammeData) -> HTMLBlock:
    """The programme overview: how many sites, by status and by care model."""
    counts = data.sites["status"].value_counts()
    by_model = data.sites.groupby(["care_model", "status"]).size().unstack(fill_value=0)
    rows = [[str(m), *(str(int(v)) for v in row)] for m, row in by_model.iterrows()]
    html = render(
        "programme_overview.html.j2",
        n=len(data.sites),
        counts=", ".join(f"{int(v)} {k}" for k, v in counts.items()),
        head=["care model", *by_model.columns],
        rows=rows,
    )
    return HTMLBlock(str(html))


def forest(data: ProgrammeData) -> HTMLBlock:
    """The forest plot of site effects, with each care model's pooled effect."""
    pooled = pooled_by_care_model(data)
    return HTMLBlock(str(figure_html(plot_forest(data, pooled), "forest plot of site effects by care model")))


def pooled_table(data: ProgrammeData) -> HTMLBlock:
    """The table of pooled effects by care model (random effects), as percent changes with intervals."""
    p = pooled_by_care_model(data)
    rows = [
        [
            r.care_model,
            str(r.sites),
            _pct(r.percent),
            f"{_pct(r.percent_low)} to {_pct(r.percent_high)}",
            p_text(r.p_value).replace("p = ", "").replace("p ", ""),
            f"{r.tau2:.4f}",
            f"{100 * r.i2:.0f}%",
        ]
        for r in p.itertuples()
    ]
    head = ["Care model", "Sites", "Pooled effect", "95% interval", "p", "tau\u00b2", "I\u00b2"]
    return HTMLBlock(str(render("programme_pooled.html.j2", head=head, rows=rows)))


def growth(data: ProgrammeData) -> HTMLBlock:
    """The table of growth by care model: the sites' and their comparison units' growth per year."""
    g = growth_table(data)
    rows = [
        [
            r.care_model,
            str(r.sites),
            f"{r.site_growth_pct:+.1f}%",
            f"{r.comparison_growth_pct:+.1f}%",
            f"{r.difference_points:+.1f}",
        ]
        for r in g.itertuples()
    ]
    head = ["Care model", "Sites", "Sites' growth", "Comparison pools' growth", "Difference (points)"]
    return HTMLBlock(str(render("programme_growth.html.j2", head=head, rows=rows)))


#: NHS England's comparison (New Care Models, April 2018): baseline 2014-15 against the 12 months to Q2 2017/18.
NHSE_BASE = ("2014-04", "2015-03")
NHSE_FOLLOW = ("2016-10", "2017-09")


def nhs_england_comparison() -> HTMLBlock:
    """NHS England's own measure from the bundled data: growth in emergency admissions by care model against CCGs
    in no vanguard, baseline 2014-15, beside the per-site estimates.
    """
    g = programme_growth(
        NHSE_BASE, NHSE_FOLLOW, care_models=tuple((m,) for m in GROWTH_CARE_MODELS), average="site", drop_suspect=True
    )
    rest = g[g["group"] == NO_VANGUARD].iloc[0]
    rows = [
        [str(r.group), str(int(r.n_units)), _pct(r.growth_pct), f"{r.growth_pct - rest.growth_pct:+.1f}"]
        for r in g.itertuples()
        if r.group != NO_VANGUARD and r.n_units > 0 and math.isfinite(r.growth_pct)
    ]
    head = ["Care model", "Sites", "Growth since 2014-15", "Difference from CCGs in no vanguard (points)"]
    html = render("programme_nhse.html.j2", head=head, rows=rows, n_rest=int(rest.n_units), rest=_pct(rest.growth_pct))
    return HTMLBlock(str(html))
