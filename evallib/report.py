"""Report sections for one site, as HTML blocks a notebook displays as they are.

Each function takes a :class:`~evallib.site.SiteEvaluation` and returns an
:class:`HTMLBlock`; the notebook only calls them in order, and the same blocks can
be written to a file without Jupyter (:func:`full_report`). Every string from
params or data is escaped; count tables pass through :mod:`evallib.disclosure`.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from html import escape

from matplotlib.figure import Figure

from evallib import plots
from evallib.data import ATTRIBUTION
from evallib.disclosure import format_count
from evallib.results import Estimate
from evallib.site import (
    MIN_COMPARATORS_FOR_CI,
    SHORT_FOLLOW_UP,
    OutcomeAnalysis,
    SiteEvaluation,
    outcome_label,
)


@dataclass(frozen=True)
class HTMLBlock:
    """A piece of report HTML; displays itself in Jupyter."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def figure_html(fig: Figure, alt: str) -> str:
    """Embed a figure as a PNG image (PNG, not SVG: smaller pages, stable nbval)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{data}"/>'


def _cap(text: str) -> str:
    """Capitalise the first letter only ("A&E attendances", not "A&e attendances")."""
    return text[:1].upper() + text[1:]


def _p(text: str) -> str:
    return f"<p>{text}</p>"


def _not_evaluable(ev: SiteEvaluation) -> HTMLBlock:
    return HTMLBlock(f'<div class="not-evaluable"><strong>Not evaluable:</strong> {escape(ev.reason)}.</div>')


def _fmt(v: float, digits: int = 1, signed: bool = True) -> str:
    if not math.isfinite(v):
        return "unbounded" if v > 0 else "-unbounded"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _pct(v: float) -> float:
    return 100 * (math.exp(v) - 1) if math.isfinite(v) else v


def describe_effect(row: Estimate, *, proportion: bool) -> tuple[str, str, str]:
    """(estimate, low, high) in words' units: percent change, percentage points, ratio or count."""
    values = (row.estimate, row.ci_low, row.ci_high)
    if row.scale == "log":
        conv, unit, digits, signed = _pct, "%", 1, True
    elif row.scale == "percent":
        conv, unit, digits, signed = float, "%", 1, True
    elif row.scale == "count":
        conv, unit, digits, signed = float, "", 0, True
    elif row.scale == "rate_ratio":
        conv, unit, digits, signed = float, "", 3, False
    elif row.scale == "log_per_year":
        conv, unit, digits, signed = (lambda v: 100 * v), " points", 1, True
    elif proportion or row.scale.startswith("percentage_points"):
        conv, unit, digits, signed = float, "", 1, True
    else:
        conv, unit, digits, signed = float, "", 3, True
    out = ["unbounded" if not math.isfinite(v) else _fmt(conv(v), digits, signed) + unit for v in values]
    return out[0], out[1], out[2]


# --------------------------------------------------------------------------- sections


def who_and_when(ev: SiteEvaluation) -> HTMLBlock:
    """Title block: the site, its care model, dates, members and membership confidence."""
    p = ev.protocol
    w = p.windows
    status = "evaluated" if ev.evaluable else f"not evaluable: {ev.reason}"
    rows = [
        ("Site", f"{p.site_id}: {p.site_name}"),
        ("Care model", p.care_model),
        ("Announced", p.announced or "not recorded"),
        ("Intervention start (analysis)", w["post_start"].strftime("%B %Y")),
        ("Member trusts analysed as treated", ", ".join(p.treated_units) or "none listed"),
        ("Membership confidence", f"{p.membership_confidence} (confirm membership locally)"),
        ("Primary outcome (pre-specified)", f"{outcome_label(p.primary_outcome)}, expected to {p.expected_direction}"),
        ("Pre-period", f"{w['pre_start']:%b %Y} to {w['pre_end']:%b %Y}"),
        ("Follow-up", f"{w['post_start']:%b %Y} to {w['post_end']:%b %Y}"),
        ("Status", status),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    notes = f"<p class='notes'>Protocol notes: {escape(p.notes)}</p>" if p.notes else ""
    return HTMLBlock(f"<table class='facts'>{table}</table>{notes}")


COUNT_MARK = "\x00count:"  # marks a published count among a facts table's values


def _fact_cell(key: str, value: str) -> str:
    if value.startswith(COUNT_MARK):
        return f"<td class='count'>{escape(value[len(COUNT_MARK) :])}</td>"
    if key == "Left out of the comparison pool":
        return f"<td>{value}</td>"  # already escaped piecewise
    return f"<td>{escape(value)}</td>"


def data_coverage(ev: SiteEvaluation) -> HTMLBlock:
    """What the data cover: months, trusts used, comparators and why others were left out."""
    if not ev.evaluable:
        return _not_evaluable(ev)
    parts = []
    for a in ev.analyses:
        c = a.coverage
        excluded = "; ".join(f"{escape(k)}: {v}" for k, v in c.excluded.items()) or "none"
        lost = ", ".join(c.treated_not_in_data + c.treated_incomplete)
        missing = ", ".join(m.strftime("%b %Y") for m in c.missing_periods)
        rows = [
            ("Data source", c.source),
            ("Pre-period months in the data", str(c.n_pre)),
            ("Follow-up months in the data", str(c.n_post) + (" (short)" if c.n_post < SHORT_FOLLOW_UP else "")),
            ("Months missing from the data", missing or "none"),
            ("Treated trusts used", ", ".join(c.treated_used)),
            ("Treated trusts without complete data", lost or "none"),
            ("Comparison trusts", str(c.n_comparators)),
            ("Left out of the comparison pool", excluded),
        ]
        if math.isfinite(c.baseline_total):
            rows.append(("Site total in the baseline year (rounded)", COUNT_MARK + format_count(c.baseline_total)))
        table = "".join(f"<tr><th>{escape(k)}</th>{_fact_cell(k, v)}</tr>" for k, v in rows)
        comps = escape(", ".join(c.comparators))
        parts.append(
            f"<h4>{escape(_cap(a.label))}</h4><table class='facts'>{table}</table>"
            f"<details><summary>Comparison trusts ({c.n_comparators})</summary><p class='codes'>{comps}</p></details>"
        )
    for outcome, why in ev.skipped_outcomes.items():
        parts.append(f"<p><strong>{escape(_cap(outcome_label(outcome)))} not analysed:</strong> {escape(why)}.</p>")
    return HTMLBlock("".join(parts))


def trends(ev: SiteEvaluation) -> HTMLBlock:
    """Trend plots of the site against its comparison pool, indexed to the baseline year."""
    if not ev.evaluable:
        return _not_evaluable(ev)
    parts = []
    for a in ev.analyses:
        fig = plots.plot_trends(
            a.trends,
            intervention_start=ev.protocol.windows["post_start"],
            indexed=not a.is_proportion,
            title=f"{_cap(a.label)}: {ev.protocol.site_id} vs comparison pool",
            site_label=f"{ev.protocol.site_id} ({len(a.coverage.treated_used)} trust(s))",
        )
        parts.append(figure_html(fig, f"{a.label} over time, site against comparison pool"))
    return HTMLBlock(
        _p(
            "Monthly series of the site's trusts and of the comparison pool, each scaled so that its baseline year "
            "(the 12 months before the start) averages 100; four-hour performance is shown in percent."
        )
        + "".join(parts)
    )


_QUANTITY = {
    "did_twfe_placebo_in_time": "placebo in time (fake start)",
    "did_twfe_matched": "DiD, 10 matched comparators",
    "synthetic_control_outcome": "synthetic control (mean gap)",
    "synthetic_control_nested": "synthetic control (mean gap)",
    "its_controlled_difference": "controlled ITS",
    "its_controlled_two_group": "controlled ITS (two groups)",
    "its_arima": "ITS, ARIMA errors",
    "did_twfe": "difference-in-differences",
    "did_poisson_fe": "rate ratio (Poisson)",
    "did_pretrend": "pre-trend difference per year",
    "its_segmented": "ITS",
    "its_poisson": "ITS (Poisson)",
}


def _quantity(r: Estimate) -> str:
    if r.method.startswith("did_callaway_santanna"):
        return r.term
    if r.method.startswith("its"):
        term = r.term.replace("effect_at_", "effect at month ").replace("_", " ")
        return f"{_QUANTITY.get(r.method, r.method)}: {term}"
    return _QUANTITY.get(r.method, r.term.replace("_", " "))


def _estimate_table(rows: list[tuple[str, Estimate, bool]]) -> str:
    head = "<tr><th>Outcome</th><th>Quantity</th><th>Estimate</th><th>95% interval</th><th>p-value</th><th>Inference</th><th>Treated / comparison</th></tr>"
    body = []
    for label, r, prop in rows:
        est, lo, hi = describe_effect(r, proportion=prop)
        body.append(
            f"<tr><td>{escape(label)}</td><td>{escape(_quantity(r))}</td><td>{escape(est)}</td>"
            f"<td>{escape(lo)} to {escape(hi)}</td><td>{r.p_value:.3f}</td><td>{escape(r.inference.replace('_', ' '))}</td>"
            f"<td>{r.n_treated} / {r.n_control}</td></tr>"
        )
    return f"<table class='estimates'>{head}{''.join(body)}</table>"


def _pretrend_sentence(a: OutcomeAnalysis) -> str:
    es = a.event_study
    lin = a.pretrend
    parts = [f"linear pre-trend difference p = {lin.p_value:.2f}"]
    if es is not None and es.leads:
        parts.append(f"joint test of the {len(es.leads)} event-study leads p = {es.pretrend.p_value:.2f}")
    verdict = (
        "<strong>failed</strong>: the site was already diverging from its comparison trusts before the start"
        if a.pretrend_failed
        else "passed: no clear divergence before the start"
    )
    return (
        f"<li>{escape(_cap(a.label))}: pre-trend check {verdict} ({escape('; '.join(parts))}, placebo inference).</li>"
    )


def did(ev: SiteEvaluation) -> HTMLBlock:
    """Difference-in-differences: estimates, rate ratios, event studies, pre-trend verdicts, placebo plots."""
    if not ev.evaluable:
        return _not_evaluable(ev)
    rows = []
    for a in ev.analyses:
        rows.append((a.label, a.did.row, a.is_proportion))
        if a.rate is not None:
            rows.append((a.label, a.rate.row, a.is_proportion))
        rows.append((a.label, a.pretrend, a.is_proportion))
    figs = []
    for a in ev.analyses:
        unit = "difference in percentage points" if a.is_proportion else "difference in log outcome"
        if a.event_study is not None:
            fig = plots.plot_event_study(
                a.event_study,
                title=f"{_cap(a.label)}: effect by {a.event_bin_months}-month period relative to the start",
                xlabel=f"{a.event_bin_months}-month periods relative to the start (-1 = reference)",
                ylabel=unit,
            )
            figs.append(figure_html(fig, f"event study for {a.label}"))
        fig = plots.plot_placebo_distribution(
            a.did, title=f"{_cap(a.label)}: site estimate among placebo estimates", xlabel=unit
        )
        figs.append(figure_html(fig, f"placebo distribution for {a.label}"))
    text = _p(
        "Two-way fixed effects (trust and month effects) on the log of each count, so estimates are percent changes "
        "relative to the comparison pool; four-hour performance is in percentage points. The rate-ratio row fits the "
        "same comparison as a Poisson model of the counts (1 = no change). With one or a few treated trusts, "
        "clustered standard errors overstate certainty, so p-values come from a <em>placebo-in-space</em> test: each "
        "comparison trust (or a random set of trusts, when the site has several) is given the treatment in turn and "
        "the site's estimate is ranked among theirs. The interval collects every effect the placebo test does not "
        "reject. The event study shows the difference period by period: before the start (grey) it should hover "
        "around zero."
    )
    checks = "<ul>" + "".join(_pretrend_sentence(a) for a in ev.analyses) + "</ul>"
    return HTMLBlock(text + _estimate_table(rows) + checks + "".join(figs))


def programme(ev: SiteEvaluation) -> HTMLBlock:
    """ICS designation waves: Callaway-Sant'Anna effects, robust to staggered starts."""
    if not ev.evaluable:
        return _not_evaluable(ev)
    pw = ev.programme
    if pw is None:
        return HTMLBlock(
            _p("Not applicable: vanguards all started in 2015, so there are no staggered waves to compare.")
            if ev.protocol.site_type == "vanguard"
            else _p("No ICS wave starts inside the data, so the staggered-adoption analysis is not possible.")
        )
    rows = [(outcome_label(pw.outcome), r, False) for r in pw.rows]
    fig = plots.plot_event_study(
        pw.dynamic,
        title=f"{_cap(outcome_label(pw.outcome))}: all ICS waves by months since designation",
        xlabel="months relative to the wave's start",
        ylabel="difference in log outcome",
    )
    text = _p(
        f"ICSs were designated in waves, so a single before-and-after comparison mixes systems at different stages. "
        f"The Callaway-Sant'Anna estimator compares each wave only with trusts not yet in an ICS at the time "
        f"({pw.n_units} trusts with complete data). The first row averages every wave's effect since designation; "
        "the second is this site's wave. Standard errors are analytic (influence functions), suitable here because "
        "each wave holds many trusts."
    )
    return HTMLBlock(text + _estimate_table(rows) + figure_html(fig, "effects by months since designation, all waves"))


def _seasonality_sentence(a: OutcomeAnalysis) -> str:
    fitted = a.its.fitted[a.its.fitted.index < a.its.intervention_start]
    swing = 100 * (fitted.max() / fitted.min() - 1) if len(fitted) and fitted.min() > 0 else float("nan")
    return f"the fitted seasonal cycle swings by about {swing:.0f}% within a year" if math.isfinite(swing) else ""


def its(ev: SiteEvaluation) -> HTMLBlock:
    """Interrupted time series of the site's own series: uncontrolled, controlled, ARIMA errors, diagnostics."""
    if not ev.evaluable:
        return _not_evaluable(ev)
    rows = []
    for a in ev.analyses:
        for extra in (a.its, a.its_controlled, a.its_arima):
            if extra is not None:
                rows.extend((a.label, r, a.is_proportion) for r in extra.rows)
    figs, diag = [], []
    for a in ev.analyses:
        r = a.its
        fig = plots.plot_its(
            r,
            title=f"{_cap(a.label)}: {ev.protocol.site_id} segmented regression",
            ylabel="%" if a.is_proportion else "per month",
        )
        figs.append(figure_html(fig, f"interrupted time series for {a.label}"))
        if a.outcome == ev.protocol.primary_outcome:
            res_fig = plots.plot_its_residuals(r, title=f"{_cap(a.label)}: residual autocorrelation")
            figs.append(figure_html(res_fig, f"residual autocorrelation for {a.label}"))
        if r.autocorrelated:
            verdict = (
                f"residual autocorrelation is present (Ljung-Box p = {r.ljung_box_p:.3f} at lag {r.ljung_box_lags}; "
                f"Durbin-Watson {r.durbin_watson:.2f}): Newey-West SEs ({r.hac_lags} lags) allow for it, but "
                "in simulations they still under-cover, so read the ARIMA-errors rows too"
            )
        else:
            verdict = (
                f"no clear residual autocorrelation (Ljung-Box p = {r.ljung_box_p:.3f}; Durbin-Watson "
                f"{r.durbin_watson:.2f})"
            )
        season = _seasonality_sentence(a)
        diag.append(
            f"<li>{escape(_cap(a.label))}: {escape(verdict)}; {escape(season)}, modelled by two Fourier pairs.</li>"
        )
    text = _p(
        "Segmented regression of the site's own monthly series (log scale; percent for four-hour performance) on a "
        "linear trend, a level change at the start and a change in slope after it, with two Fourier pairs for "
        "seasonality. The dotted line and band are the series projected without the intervention; the effect rows "
        "give the change 12 and 24 months after the start (percent) and the cumulative difference between observed "
        "and projected counts. On its own (<em>ITS</em>) anything else that changed at the same time is attributed "
        "to the site; the <em>controlled</em> rows use the site's series relative to the comparison pool's, which "
        "removes national shocks. Where residuals are autocorrelated, a model with ARIMA errors is fitted too."
    )
    return HTMLBlock(text + _estimate_table(rows) + f"<ul>{''.join(diag)}</ul>" + "".join(figs))


def robustness(ev: SiteEvaluation) -> HTMLBlock:
    """Do the conclusions survive other comparison sets, a fake start, dropping comparators, trend violations?"""
    if not ev.evaluable:
        return _not_evaluable(ev)
    a = ev.primary
    rb = a.robustness if a is not None else None
    if rb is None:
        return HTMLBlock(_p("No robustness checks were run for this outcome."))
    rows = [(a.label, rb.main, a.is_proportion)] + [(a.label, r, a.is_proportion) for r in rb.rows]
    checks = "".join(
        f"<li>{'passed' if ok else '<strong>failed</strong>'}: {escape(name)}: {escape(detail)}.</li>"
        for name, ok, detail in rb.checks
    )
    verdict = (
        "<p><strong>The conclusion survives the robustness checks.</strong></p>"
        if rb.survives
        else "<p><strong>The conclusion does not survive every robustness check</strong>: treat it with extra "
        "caution and look at which comparison drives it.</p>"
    )
    parts = [
        _p(
            "The main estimate is re-estimated against other comparison sets (the 10 trusts most like the site before "
            "the start, and a synthetic control: a weighted mix of comparison trusts that tracks the site's "
            "pre-period trajectory), with a fake start date in the pre-period (where no effect can exist), dropping "
            "each comparison trust in turn, and allowing for the parallel-trends assumption to fail by a linear "
            "trend as large as the pre-period allows."
        ),
        _estimate_table(rows),
        f"<ul>{checks}</ul>",
        verdict,
    ]
    if rb.matched is not None:
        t = rb.matched.table
        body = "".join(
            f"<tr><td>{escape(str(u))}</td><td>{d:.2f}</td><td>{g:+.3f}</td></tr>"
            for u, d, g in zip(t["unit"], t["distance"], t["trend"], strict=True)
        )
        parts.append(
            "<h4>Matched comparators</h4><table class='estimates'><tr><th>Trust</th><th>Distance</th>"
            f"<th>Pre-period growth per year</th></tr>{body}</table>"
        )
    if rb.synthetic is not None:
        sw = rb.synthetic.weights[rb.synthetic.weights > 0.005]
        body = "".join(f"<tr><td>{escape(str(u))}</td><td>{v:.3f}</td></tr>" for u, v in sw.items())
        parts.append(
            f"<h4>Synthetic control weights</h4><p>Pre-period fit (RMSPE, log scale): {rb.synthetic.pre_rmspe:.3f}; "
            f"post/pre RMSPE ratio ranked among {len(rb.synthetic.placebos)} placebos: p = {rb.synthetic.row.p_value:.2f}.</p>"
            f"<table class='estimates'><tr><th>Trust</th><th>Weight</th></tr>{body}</table>"
        )
        fig = plots.plot_synthetic_control(
            rb.synthetic,
            title=f"{_cap(a.label)}: site minus synthetic control (grey: placebos)",
            ylabel="log difference",
        )
        parts.append(figure_html(fig, "gap between the site and its synthetic control"))
    if rb.balance is not None:
        b = rb.balance
        cols = [c for c in b.columns if c != "feature"]
        head = "".join(f"<th>{escape(c)}</th>" for c in ["feature", *cols])
        body = "".join(
            "<tr>"
            + f"<td>{escape(str(r['feature']))}</td>"
            + "".join(_balance_cell(r["feature"], c, r[c]) for c in cols)
            + "</tr>"
            for _, r in b.iterrows()
        )
        parts.append(f"<h4>Balance before the start</h4><table class='estimates'><tr>{head}</tr>{body}</table>")
        parts.append(figure_html(plots.plot_balance(b, title="Pre-period balance by comparison set"), "balance plot"))
    return HTMLBlock("".join(parts))


def _balance_cell(feature: str, column: str, value: object) -> str:
    """Counts in the balance table are published counts: rounded already, marked for the disclosure check."""
    if str(feature).startswith("mean monthly count") and not column.endswith("(std. diff.)"):
        return f"<td class='count'>{_cell(value)}</td>"
    return f"<td>{_cell(value)}</td>"


def _cell(v: object) -> str:
    if isinstance(v, str):
        return escape(v)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:,.0f}" if abs(float(v)) >= 100 else f"{float(v):.3f}"


def _verdict(a: OutcomeAnalysis, expected: str) -> str:
    r = a.did.row
    est, lo, hi = describe_effect(r, proportion=a.is_proportion)
    unit = " percentage points" if a.is_proportion else ""
    share = f"{r.p_value:.0%}"
    direction = "decrease" if r.estimate < 0 else "increase"
    if a.is_proportion:
        direction = "fall" if r.estimate < 0 else "rise"
    sentence = (
        f"Relative to its {r.n_control} comparison trusts, the site's {escape(a.label)} changed by {escape(est)}{unit} "
        f"(95% interval {escape(lo)} to {escape(hi)}{unit}) over {a.coverage.n_post} months of follow-up. "
    )
    if r.p_value < 0.05:
        sentence += (
            f"A change this large was seen in only {share} of the placebo comparisons (p = {r.p_value:.3f}), "
            f"so the data give evidence of a {direction}"
        )
        if a.outcome != "four_hour_performance":
            sentence += " in line with" if direction == expected else " opposite to"
            sentence += f" the protocol's expected {expected}."
        else:
            sentence += "."
    else:
        sentence += (
            f"Changes at least this large were seen in {share} of the placebo comparisons (p = {r.p_value:.2f}), "
            "so the data do not give clear evidence of any effect: effects anywhere in the interval are consistent "
            "with the data."
        )
    if not math.isfinite(r.ci_low) or not math.isfinite(r.ci_high):
        sentence += (
            f" The interval is unbounded because fewer than {MIN_COMPARATORS_FOR_CI} comparison trusts are available."
        )
    return sentence


def findings(ev: SiteEvaluation) -> HTMLBlock:
    """Findings in plain words, with the uncertainty and every caution."""
    if not ev.evaluable:
        return HTMLBlock(
            f"<p><strong>This site could not be evaluated:</strong> {escape(ev.reason)}. "
            "No estimate is reported, because any number would mislead.</p>"
        )
    p = ev.protocol
    items = [f"<li>{_verdict(a, p.expected_direction)}</li>" for a in ev.analyses]
    prim = ev.primary
    its_text = ""
    if prim is not None:
        lvl, slope = prim.its.row("level_change"), prim.its.row("slope_change")
        le, ll, lh = describe_effect(lvl, proportion=prim.is_proportion)
        se_, sl, sh = describe_effect(slope, proportion=prim.is_proportion)
        its_text = (
            f"<p>On its own series (no comparison group), the site's {escape(prim.label)} shows a level change of "
            f"{escape(le)} (95% CI {escape(ll)} to {escape(lh)}) at the start and a change in yearly growth of "
            f"{escape(se_)} (95% CI {escape(sl)} to {escape(sh)}), allowing for seasonality"
            + (" and for the residual autocorrelation found." if prim.its.autocorrelated else ".")
            + "</p>"
        )
    rb = prim.robustness if prim is not None else None
    if rb is not None:
        failed = [name for name, ok, _ in rb.checks if not ok]
        its_text += (
            "<p>The difference-in-differences conclusion survives every robustness check (other comparison sets, a "
            "fake start, dropping comparators, trend violations).</p>"
            if rb.survives
            else f"<p><strong>Robustness:</strong> the conclusion does not survive these checks: {escape(', '.join(failed))}.</p>"
        )
    cautions = "".join(f"<li>{escape(f)}</li>" for f in ev.flags)
    caution_html = (
        f"<h4>Cautions</h4><ul class='flags'>{cautions}</ul>" if cautions else "<p>No cautions were raised.</p>"
    )
    return HTMLBlock(f"<ul class='findings'>{''.join(items)}</ul>{its_text}{caution_html}")


def attribution() -> HTMLBlock:
    return HTMLBlock(f"<p class='attribution'>{escape(ATTRIBUTION)}</p>")


def provenance_block(ev: SiteEvaluation) -> HTMLBlock:
    """What this report was made from (library version, commit, protocol and data hashes)."""
    from evallib.site import provenance

    p = provenance(ev.protocol)
    files = "".join(f"<li>{escape(f['file'])}: <code>{escape(f['sha256'][:16])}</code></li>" for f in p["data_files"])
    return HTMLBlock(
        f"<p class='notes'>evallib {escape(p['evallib_version'])}, commit <code>{escape(str(p['git_commit'])[:12])}</code>, "
        f"protocol <code>{escape(p['params_sha256'][:16])}</code>.</p><ul class='notes'>{files}</ul>"
    )


def full_report(ev: SiteEvaluation) -> str:
    """The whole report as one HTML fragment, without Jupyter."""
    sections = [
        ("Who and when", who_and_when),
        ("Findings", findings),
        ("Data coverage", data_coverage),
        ("Trends against the comparison pool", trends),
        ("Difference-in-differences", did),
        ("Interrupted time series", its),
        ("ICS designation waves", programme),
        ("Robustness", robustness),
    ]
    body = "".join(f"<h2>{escape(title)}</h2>{fn(ev).html}" for title, fn in sections)
    return (
        f"<h1>{escape(ev.protocol.site_id)}: {escape(ev.protocol.site_name)}</h1>{body}"
        f"<h2>Provenance</h2>{provenance_block(ev).html}{attribution().html}"
    )
