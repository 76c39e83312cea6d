"""Report sections for one site, as HTML blocks a notebook displays as they are.

Each function takes a :class:`~evallib.evaluation.site.SiteEvaluation` and returns an
:class:`~evallib.reporting.blocks.HTMLBlock`. Every string from params or data is
escaped; count tables pass through :mod:`evallib.reporting.disclosure`.
"""

from __future__ import annotations

import math
from html import escape

from evallib.evaluation.coverage import SHORT_FOLLOW_UP, outcome_label, unit_kind, unit_plural
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
        ("Membership confidence", f"{p.membership_confidence} (confirm membership locally)"),
        ("Primary outcome (pre-specified)", f"{outcome_label(p.primary_outcome)}, expected to {p.expected_direction}"),
        ("Pre-period", f"{w['pre_start']:%b %Y} to {w['pre_end']:%b %Y}"),
        ("Follow-up", f"{w['post_start']:%b %Y} to {w['post_end']:%b %Y}"),
        ("Status", status),
    ]
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for spec in p.analyses:  # one row per list of units, naming the outcomes measured on them
        groups.setdefault((unit_kind(spec.data_source), spec.treated_units), []).append(outcome_label(spec.outcome))
    members = [
        (f"The site's {unit_plural(kind)} ({', '.join(outcomes)})", ", ".join(codes) or "none listed")
        for (kind, codes), outcomes in groups.items()
    ]
    rows[4:4] = members
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
    """What the data cover: months, the site's units used, comparators and why others were left out."""
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
            (f"The site's {c.units} used", ", ".join(c.treated_used)),
            (f"The site's {c.units} without complete data", lost or "none"),
            (f"Comparison {c.units}", str(c.n_comparators)),
            ("Left out of the comparison pool", excluded),
        ]
        if math.isfinite(c.baseline_total):
            rows.append(("Site total in the baseline year (rounded)", COUNT_MARK + format_count(c.baseline_total)))
        table = "".join(f"<tr><th>{escape(k)}</th>{_fact_cell(k, v)}</tr>" for k, v in rows)
        comps = escape(", ".join(c.comparators))
        parts.append(
            f"<h4>{escape(cap(a.label))}</h4><table class='facts'>{table}</table>"
            f"<details><summary>Comparison {escape(c.units)} ({c.n_comparators})</summary><p class='codes'>{comps}</p></details>"
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
            site_label=f"{ev.protocol.site_id} ({len(a.coverage.treated_used)} {a.coverage.units})",
        )
        parts.append(figure_html(fig, f"{a.label} over time, site against comparison pool"))
    return HTMLBlock(
        paragraph(
            "Monthly series of the site and of its comparison pool, each scaled so that its baseline year "
            "(the 12 months before the start) averages 100; four-hour performance is shown in percent."
        )
        + "".join(parts)
    )


def _pretrend_sentence(a: OutcomeAnalysis) -> str:
    lin = a.pretrend
    verdict = (
        f"evidence of diverging trends before the start (p = {lin.p_value:.2f})"
        if a.pretrend_evidence
        else f"no clear evidence of diverging trends before the start (p = {lin.p_value:.2f})"
    )
    es = a.event_study
    leads = (
        f"; the event-study leads, shown as a description, have a joint placebo p = {es.pretrend.p_value:.2f}"
        if es is not None and es.leads
        else ""
    )
    return (
        f"<li>{escape(cap(a.label))}: the pre-specified pre-trend test (placebo test of the linear pre-period trend "
        f"difference, 5% level) found {escape(verdict)}{escape(leads)}.</li>"
    )


def did(ev: SiteEvaluation) -> HTMLBlock:
    """Comparisons with the comparison pool: every headline estimate, the pre-trend test, event studies, placebos."""
    if not ev.evaluable:
        return not_evaluable(ev)
    rows = []
    for a in ev.analyses:
        for name, h in a.headline.items():
            mark = " (the protocol's primary estimate)" if a is ev.primary and name == a.primary_estimator else ""
            rows.append((a.label + mark, h.row, a.is_proportion))
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
        if a is ev.primary:
            fig = plots.plot_placebo_distribution(
                a.did, title=f"{cap(a.label)}: site estimate among placebo estimates", xlabel=unit
            )
            figs.append(figure_html(fig, f"placebo distribution for {a.label}"))
    text = paragraph(
        "Each estimate compares the site with its comparison pool over the same months. <em>Difference-in-"
        "differences</em> (unit and month effects, on the log of each count, so estimates are percent changes; "
        "four-hour performance in percentage points); its <em>studentized</em> test scales each unit's change by "
        "its own month-to-month noise before the start, so a site noisier than most cannot look significant by "
        "chance; the <em>rate ratio</em> fits the same comparison as a Poisson model of the counts (1 = no change); "
        "the <em>controlled interrupted time series</em> projects the site's series relative to its pool's forward "
        "from before the start; the <em>synthetic control</em> and <em>synthetic difference-in-differences</em> "
        "weight the comparison units to track the site before the start. With one or a few treated units clustered "
        "standard errors overstate certainty, so every p-value comes from a <em>placebo-in-space</em> test: each "
        "comparison unit (or a random set of units, when the site has several) is given the treatment in turn and "
        "the site's estimate is ranked among theirs; the interval collects every effect that test does not reject, "
        "so p-value and interval always agree. The event study shows the difference period by period: before the "
        "start (grey) it should hover around zero."
    )
    checks = "<ul>" + "".join(_pretrend_sentence(a) + _volatility_sentence(a) for a in ev.analyses) + "</ul>"
    return HTMLBlock(text + estimate_table(rows) + checks + "".join(figs))


def _volatility_sentence(a: OutcomeAnalysis) -> str:
    vol = a.did.volatility
    if vol is None or not vol.rank:
        return ""
    rank, pct, n = vol.rank[0], vol.percentile[0], vol.n_comparison
    noisy = "noisier than most of" if pct >= 75 else "quieter than most of" if pct <= 25 else "about as noisy as"
    return (
        f"<li>{escape(cap(a.label))}: before the start the site's month-to-month noise ranks {rank} of {n + 1} "
        f"({pct:.0f}th percentile): it is {noisy} its comparison {escape(a.coverage.units)}"
        + (
            "; the plain placebo test can over-reject for such a site, so read the studentized test"
            if pct >= 90
            else ""
        )
        + ".</li>"
    )


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
    units = unit_plural(pw.unit_kind)
    fig = plots.plot_event_study(
        pw.dynamic,
        title=f"{cap(outcome_label(pw.outcome))}: all ICS waves by months since designation",
        xlabel="months relative to the wave's start",
        ylabel="difference in log outcome",
    )
    text = paragraph(
        f"ICSs were designated in waves, so a single before-and-after comparison mixes systems at different stages. "
        f"The Callaway-Sant'Anna estimator compares each wave only with {units} not yet in an ICS at the time "
        f"({pw.n_units} {units} with complete data). The first row averages every wave's effect since designation; "
        "the second is this site's wave. Standard errors are analytic (influence functions), clustered by system: "
        f"the {units} of one ICS share its decisions, so they are not independent."
    )
    return HTMLBlock(text + estimate_table(rows) + figure_html(fig, "effects by months since designation, all waves"))


def _seasonality_sentence(a: OutcomeAnalysis) -> str:
    fitted = a.its.fitted[a.its.fitted.index < a.its.intervention_start]
    swing = 100 * (fitted.max() / fitted.min() - 1) if len(fitted) and fitted.min() > 0 else float("nan")
    return f"the fitted seasonal cycle swings by about {swing:.0f}% within a year" if math.isfinite(swing) else ""


def its(ev: SiteEvaluation) -> HTMLBlock:
    """Interrupted time series: the site's own series (a description) and the controlled series (placebo test)."""
    if not ev.evaluable:
        return not_evaluable(ev)
    rows = []
    for a in ev.analyses:
        if a.controlled is not None:
            rows.extend((a.label, r, a.is_proportion) for r in a.controlled.rows)
        rows.extend((a.label, r, a.is_proportion) for r in a.its.rows)
    figs, diag = [], []
    for a in ev.analyses:
        r = a.its
        if a is ev.primary:
            if a.controlled is not None:  # a ratio of the site's counts to its pool's: not a count
                fig = plots.plot_its(
                    a.controlled,
                    title=f"{cap(a.label)}: {ev.protocol.site_id} relative to its comparison pool",
                    ylabel="site / comparison pool" if not a.is_proportion else "difference, points",
                )
                figs.append(figure_html(fig, f"controlled interrupted time series for {a.label}"))
            title = f"{cap(a.label)}: {ev.protocol.site_id} on its own (segmented regression)"
            alt = f"interrupted time series for {a.label}"
            if a.is_proportion:
                figs.append(figure_html(plots.plot_its(r, title=title, ylabel="%"), alt))
            else:  # counts: indexed, or withheld when small (disclosure control)
                figs.append(its_count_figure(r, title=title, alt=alt))
        rho = getattr(r, "ar1_rho", None)
        verdict = f"AR(1) autocorrelation of the errors {rho:.2f} (REML)" if rho is not None else ""
        season = _seasonality_sentence(a)
        diag.append(
            f"<li>{escape(cap(a.label))}: {escape(verdict)}; {escape(season)}, modelled by two Fourier pairs.</li>"
        )
    text = paragraph(
        "Segmented regression on a linear trend, a level change at the start (the jump in the first month) and a "
        "change in slope after it, with two Fourier pairs for seasonality; the effect rows give the change 12 and "
        "24 months after the start and over the whole follow-up. The <em>controlled</em> rows use the site's series "
        "relative to its comparison pool's, which removes national shocks, with every comparison unit in turn as a "
        "placebo site (p-values and intervals from that test). The <em>own series</em> rows describe what changed "
        "in the site's series at the start: anything else that changed at the same time is attributed to the site, "
        "so they are a description, not an evaluation; their errors follow an AR(1) process fitted by REML, and "
        "their intervals (from a bootstrap of the t statistics) reached 95% coverage in the Monte Carlo suite "
        "but remain approximate."
    )
    return HTMLBlock(text + estimate_table(rows) + f"<ul>{''.join(diag)}</ul>" + "".join(figs))
