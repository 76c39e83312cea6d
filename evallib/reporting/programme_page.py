"""Sections of the programme page: overview, forest plot, pooled effects and growth since baseline (rendered
from templates, autoescaped).
"""

from __future__ import annotations

import math
from typing import Any

from evallib.evaluation.studies.growth import NO_VANGUARD
from evallib.evaluation.studies.programme import ProgrammeData, growth_table, pooled_by_care_model
from evallib.evaluation.studies.published import DIFFERENCES, published_comparisons
from evallib.reporting.blocks import HTMLBlock, render
from evallib.reporting.plots import plot_forest
from evallib.reporting.templating import figure_html
from evallib.reporting.words import change_words, p_text
from evallib.vocabulary import plural


def _pct(v: float) -> str:
    return "unbounded" if not math.isfinite(v) else f"{v:+.1f}%"


def overview(data: ProgrammeData) -> HTMLBlock:
    """The programme overview: how many of the programme's sites (on its own data), by status and by care model;
    sites on an evaluator's own data are counted apart, never among the programme's.
    """
    sites = data.programme_sites
    counts = sites["status"].value_counts()
    by_model = sites.groupby(["care_model", "status"]).size().unstack(fill_value=0)
    rows = [[str(m), *(str(int(v)) for v in row)] for m, row in by_model.iterrows()]
    own = data.own_data_sites
    html = render(
        "programme_overview.html.j2",
        n=plural(len(sites), "site"),
        counts=", ".join(f"{int(v)} {k}" for k, v in counts.items()),
        head=["care model", *by_model.columns],
        rows=rows,
        own=plural(len(own), "site") if len(own) else "",
        own_ids=", ".join(own["site_id"]),
    )
    return HTMLBlock(str(html))


def _pooled_words(r: Any) -> str:
    """One care model's pooled effect in words, with its interval: the conclusion follows the interval."""
    est, lo, hi = (change_words(v, "percent") for v in (r.percent, r.percent_low, r.percent_high))
    clear = r.percent_low > 0 or r.percent_high < 0
    said = f"a clear {'increase' if r.percent > 0 else 'decrease'}" if clear else "no clear effect"
    return (
        f"{r.care_model} ({plural(int(r.sites), 'site')}): {est} than in comparison areas (95% interval "
        f"{lo} to {hi}, {p_text(r.p_value)}): {said}."
    )


def pooled_answer(data: ProgrammeData) -> HTMLBlock:
    """The programme's answer, first on its page: each care model's pooled effect in words, with its interval."""
    p = pooled_by_care_model(data)
    lines = [_pooled_words(r) for r in p.itertuples()]
    n_own = len(data.own_data_sites)
    own = plural(n_own, "site") if n_own else ""
    return HTMLBlock(str(render("programme_answer.html.j2", lines=lines, own=own)))


def forest(data: ProgrammeData) -> HTMLBlock:
    """The forest plot of each site's primary estimate, with each care model's pooled effect."""
    pooled = pooled_by_care_model(data)
    alt = "forest plot of each site's primary estimate and each care model's pooled effect"
    return HTMLBlock(str(figure_html(plot_forest(data, pooled), alt)))


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
            f"{100 * math.expm1(math.sqrt(max(r.tau2, 0.0))):.1f}%",  # tau as the percent spread it stands for
            f"{100 * r.i2:.0f}%",
        ]
        for r in p.itertuples()
    ]
    head = ["Care model", "Sites", "Pooled effect", "95% interval", "p", "Between-site spread (tau)", "I\u00b2"]
    return HTMLBlock(str(render("programme_pooled.html.j2", head=head, rows=rows)))


def growth(data: ProgrammeData) -> HTMLBlock:
    """The table of growth since baseline by care model: each site's primary outcome against its own comparison
    pool (not NHS England's comparison, which is :func:`nhs_england_comparison`).
    """
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
    cut = [(r.care_model, r.cut_sites) for r in g.itertuples() if r.cut_sites]
    return HTMLBlock(str(render("programme_growth.html.j2", head=head, rows=rows, cut=cut)))


_GROUP_LABELS = {
    "PACS": "PACS vanguards' CCGs",
    "MCP": "MCP vanguards' CCGs",
    "EHCH": "EHCH vanguards' CCGs",
    "UEC": "UEC vanguards' CCGs",
    "PACS+MCP": "PACS and MCP vanguards' CCGs",
    NO_VANGUARD: "CCGs in no vanguard (rest of England)",
}


def _cell(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:+.1f}%"


def nhs_england_comparison() -> HTMLBlock:
    """NHS England's published comparisons (and Morciano et al.'s) reproduced from the bundled data: growth per
    head and in counts, pooled and as a site mean, beside each published figure, with the differences explained.
    """
    table = published_comparisons()
    sources = []
    rows = []
    for _key, pub in table.groupby("publication", sort=False):
        first = pub.iloc[0]
        sources.append({"source": str(first["source"]), "window": str(first["window"]), "note": str(first["note"])})
        per_head = first["measure"] == "per head"
        for r in pub.itertuples():
            same = r.per_head_pooled_pct if per_head else r.counts_pooled_pct
            n = f"{r.n_ccgs}" + (f" ({r.n_sites} sites)" if r.n_sites else "")
            rows.append(
                [
                    f"{len(sources)}. {r.window}",
                    _GROUP_LABELS.get(str(r.group), str(r.group)),
                    n,
                    _cell(r.per_head_pooled_pct),
                    _cell(r.per_head_site_mean_pct),
                    _cell(r.counts_pooled_pct),
                    _cell(r.counts_site_mean_pct),
                    f"{_cell(r.published_pct)} {r.measure}" if math.isfinite(r.published_pct) else "none comparable",
                    f"{same - r.published_pct:+.1f}" if math.isfinite(r.published_pct) else "",
                ]
            )
    head = [
        "Publication and window",
        "Group",
        "CCGs",
        "Per head, pooled",
        "Per head, site mean",
        "Counts, pooled",
        "Counts, site mean",
        "Published",
        "Pooled minus published (points, same measure)",
    ]
    per_head = table[(table["measure"] == "per head") & table["published_pct"].notna()]
    gap = per_head["per_head_pooled_pct"] - per_head["published_pct"]
    rest = per_head["group"] == NO_VANGUARD
    html = render(
        "programme_nhse.html.j2",
        head=head,
        rows=rows,
        sources=sources,
        differences=DIFFERENCES,
        rest_gap=f"{gap[rest].abs().max():.1f}",
        vanguard_gaps=f"{gap[~rest].min():+.1f} to {gap[~rest].max():+.1f}",
    )
    return HTMLBlock(str(html))
