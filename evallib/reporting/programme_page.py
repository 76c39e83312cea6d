"""Sections of the programme page: overview, forest plot, pooled effects and growth since baseline."""

from __future__ import annotations

import math
from html import escape

from evallib.evaluation.programme import ProgrammeData, growth_table, pooled_by_care_model
from evallib.evaluation.programme_growth import CARE_MODELS as GROWTH_CARE_MODELS
from evallib.evaluation.programme_growth import NO_VANGUARD, programme_growth
from evallib.reporting.blocks import HTMLBlock, figure_html
from evallib.reporting.plots import plot_forest


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
        "<p>Random-effects pooled effect of each care model on the sites' primary outcome (between-site variance "
        "by restricted maximum likelihood, Hartung-Knapp interval with k - 1 degrees of freedom, so that a handful of "
        "sites gives an honestly wide interval; sites standing on the same data count once), "
        "relative to comparison areas. tau&sup2; is the between-site variance (log scale); I&sup2; the share of "
        "variation that is between sites rather than chance. Sites sharing trusts or CCGs are not independent, so treat "
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
        "<p>Growth in each site's primary outcome over the last 12 months of follow-up against the "
        "baseline year before the start, as NHS England compared vanguards with the rest of England; here each "
        "site is set against its own comparison pool. Unweighted means over sites.</p>"
        "<table class='estimates'><tr><th>Care model</th><th>Sites</th><th>Sites' growth</th>"
        f"<th>Comparison pools' growth</th><th>Difference (points)</th></tr>{body}</table>"
    )


#: NHS England's comparison (New Care Models, April 2018): baseline 2014-15 against the 12 months to Q2 2017/18.
NHSE_BASE = ("2014-04", "2015-03")
NHSE_FOLLOW = ("2016-10", "2017-09")


def nhs_england_comparison() -> HTMLBlock:
    """NHS England's own measure from the bundled data: growth in emergency admissions by care model against CCGs
    in no vanguard, baseline 2014-15, beside the per-site estimates above."""
    g = programme_growth(
        NHSE_BASE,
        NHSE_FOLLOW,
        care_models=tuple((m,) for m in GROWTH_CARE_MODELS),
        average="site",
        drop_suspect=True,
    )
    rest = g[g["group"] == NO_VANGUARD].iloc[0]
    body = "".join(
        f"<tr><td>{escape(str(r.group))}</td><td>{int(r.n_units)}</td><td>{_pct(r.growth_pct)}</td>"
        f"<td>{r.growth_pct - rest.growth_pct:+.1f}</td></tr>"
        for r in g.itertuples()
        if r.group != NO_VANGUARD and r.n_units > 0 and math.isfinite(r.growth_pct)
    )
    return HTMLBlock(
        "<p>The comparison NHS England published: growth in emergency admissions of each care model's CCGs between "
        "the baseline year 2014-15 and the 12 months to September 2017, against the CCGs in no vanguard "
        f"({int(rest.n_units)} CCGs: {_pct(rest.growth_pct)}). Computed here from the Monthly Activity Return by "
        "commissioner, site by site (a site's CCGs summed, then the mean over sites), leaving out CCGs with a run "
        "of months the data cannot be trusted for; acute care collaborations have no CCGs. It is a description of "
        "growth, not an effect: unlike the estimates above it has no comparison of trends before the vanguards "
        "began and no interval.</p><table class='estimates'><tr><th>Care model</th><th>Sites</th>"
        f"<th>Growth since 2014-15</th><th>Difference from CCGs in no vanguard (points)</th></tr>{body}</table>"
    )
