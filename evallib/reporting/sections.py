"""Report sections for one site, as HTML blocks a notebook displays as they are.

Each function takes a :class:`~evallib.evaluation.site.SiteEvaluation` and returns an
:class:`~evallib.reporting.blocks.HTMLBlock`. Every string from params or data is
escaped; count tables pass through :mod:`evallib.reporting.disclosure`.
"""

from __future__ import annotations

import math
from html import escape

from evallib.evaluation.coverage import SHORT_FOLLOW_UP, outcome_label
from evallib.evaluation.outcome import OutcomeAnalysis
from evallib.evaluation.site import SiteEvaluation
from evallib.reporting import plots
from evallib.reporting.blocks import (
    HTMLBlock,
    cap,
    estimate_table,
    figure_html,
    not_evaluable,
    paragraph,
)
from evallib.reporting.disclosure import count_series_policy, format_count, its_count_figure, withheld_note


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
        return not_evaluable(ev)
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
            f"<h4>{escape(cap(a.label))}</h4><table class='facts'>{table}</table>"
            f"<details><summary>Comparison trusts ({c.n_comparators})</summary><p class='codes'>{comps}</p></details>"
        )
    for outcome, why in ev.skipped_outcomes.items():
        parts.append(f"<p><strong>{escape(cap(outcome_label(outcome)))} not analysed:</strong> {escape(why)}.</p>")
    return HTMLBlock("".join(parts))


def trends(ev: SiteEvaluation) -> HTMLBlock:
    """Trend plots of the site against its comparison pool, indexed to the baseline year."""
    if not ev.evaluable:
        return not_evaluable(ev)
    parts = []
    for a in ev.analyses:
        if not a.is_proportion and count_series_policy(a.its.observed) == "withheld":
            parts.append(withheld_note(f"{a.label} trend"))
            continue
        fig = plots.plot_trends(
            a.trends,
            intervention_start=ev.protocol.windows["post_start"],
            indexed=not a.is_proportion,
            title=f"{cap(a.label)}: {ev.protocol.site_id} vs comparison pool",
            site_label=f"{ev.protocol.site_id} ({len(a.coverage.treated_used)} trust(s))",
        )
        parts.append(figure_html(fig, f"{a.label} over time, site against comparison pool"))
    return HTMLBlock(
        paragraph(
            "Monthly series of the site's trusts and of the comparison pool, each scaled so that its baseline year "
            "(the 12 months before the start) averages 100; four-hour performance is shown in percent."
        )
        + "".join(parts)
    )


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
        f"<li>{escape(cap(a.label))}: pre-trend check {verdict} ({escape('; '.join(parts))}, placebo inference).</li>"
    )


def did(ev: SiteEvaluation) -> HTMLBlock:
    """Difference-in-differences: estimates, rate ratios, event studies, pre-trend verdicts, placebo plots."""
    if not ev.evaluable:
        return not_evaluable(ev)
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
                title=f"{cap(a.label)}: effect by {a.event_bin_months}-month period relative to the start",
                xlabel=f"{a.event_bin_months}-month periods relative to the start (-1 = reference)",
                ylabel=unit,
            )
            figs.append(figure_html(fig, f"event study for {a.label}"))
        fig = plots.plot_placebo_distribution(
            a.did, title=f"{cap(a.label)}: site estimate among placebo estimates", xlabel=unit
        )
        figs.append(figure_html(fig, f"placebo distribution for {a.label}"))
    text = paragraph(
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
    return HTMLBlock(text + estimate_table(rows) + checks + "".join(figs))


def programme(ev: SiteEvaluation) -> HTMLBlock:
    """ICS designation waves: Callaway-Sant'Anna effects, robust to staggered starts."""
    if not ev.evaluable:
        return not_evaluable(ev)
    pw = ev.programme
    if pw is None:
        return HTMLBlock(
            paragraph("Not applicable: vanguards all started in 2015, so there are no staggered waves to compare.")
            if ev.protocol.site_type == "vanguard"
            else paragraph("No ICS wave starts inside the data, so the staggered-adoption analysis is not possible.")
        )
    rows = [(outcome_label(pw.outcome), r, False) for r in pw.rows]
    fig = plots.plot_event_study(
        pw.dynamic,
        title=f"{cap(outcome_label(pw.outcome))}: all ICS waves by months since designation",
        xlabel="months relative to the wave's start",
        ylabel="difference in log outcome",
    )
    text = paragraph(
        f"ICSs were designated in waves, so a single before-and-after comparison mixes systems at different stages. "
        f"The Callaway-Sant'Anna estimator compares each wave only with trusts not yet in an ICS at the time "
        f"({pw.n_units} trusts with complete data). The first row averages every wave's effect since designation; "
        "the second is this site's wave. Standard errors are analytic (influence functions), suitable here because "
        "each wave holds many trusts."
    )
    return HTMLBlock(text + estimate_table(rows) + figure_html(fig, "effects by months since designation, all waves"))


def _seasonality_sentence(a: OutcomeAnalysis) -> str:
    fitted = a.its.fitted[a.its.fitted.index < a.its.intervention_start]
    swing = 100 * (fitted.max() / fitted.min() - 1) if len(fitted) and fitted.min() > 0 else float("nan")
    return f"the fitted seasonal cycle swings by about {swing:.0f}% within a year" if math.isfinite(swing) else ""


def its(ev: SiteEvaluation) -> HTMLBlock:
    """Interrupted time series of the site's own series: uncontrolled, controlled, ARIMA errors, diagnostics."""
    if not ev.evaluable:
        return not_evaluable(ev)
    rows = []
    for a in ev.analyses:
        for extra in (a.its, a.its_controlled, a.its_arima):
            if extra is not None:
                rows.extend((a.label, r, a.is_proportion) for r in extra.rows)
    figs, diag = [], []
    for a in ev.analyses:
        r = a.its
        title, alt = (
            f"{cap(a.label)}: {ev.protocol.site_id} segmented regression",
            f"interrupted time series for {a.label}",
        )
        if a.is_proportion:
            figs.append(figure_html(plots.plot_its(r, title=title, ylabel="%"), alt))
        else:  # counts: indexed, or withheld when small (disclosure control)
            figs.append(its_count_figure(r, title=title, alt=alt))
        if a.outcome == ev.protocol.primary_outcome:
            res_fig = plots.plot_its_residuals(r, title=f"{cap(a.label)}: residual autocorrelation")
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
            f"<li>{escape(cap(a.label))}: {escape(verdict)}; {escape(season)}, modelled by two Fourier pairs.</li>"
        )
    text = paragraph(
        "Segmented regression of the site's own monthly series (log scale; percent for four-hour performance) on a "
        "linear trend, a level change at the start and a change in slope after it, with two Fourier pairs for "
        "seasonality. The dotted line and band are the series projected without the intervention; the effect rows "
        "give the change 12 and 24 months after the start (percent) and the cumulative difference between observed "
        "and projected counts. On its own (<em>ITS</em>) anything else that changed at the same time is attributed "
        "to the site; the <em>controlled</em> rows use the site's series relative to the comparison pool's, which "
        "removes national shocks. Where residuals are autocorrelated, a model with ARIMA errors is fitted too."
    )
    return HTMLBlock(text + estimate_table(rows) + f"<ul>{''.join(diag)}</ul>" + "".join(figs))
