"""Report sections for one site, as HTML blocks a notebook displays as they are.

Each function takes a :class:`~evallib.evaluation.site.evaluate.SiteEvaluation` and returns an
:class:`~evallib.reporting.blocks.HTMLBlock` rendered from a template (autoescaped). A site
that could not be evaluated gets empty technical sections: its summary says why, once.
Count tables pass through :mod:`evallib.reporting.disclosure`.
"""

from __future__ import annotations

import math
from typing import Any

from evallib.evaluation.site.coverage import unit_kind
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.evaluation.site.outcome import OutcomeAnalysis
from evallib.evaluation.site.sampling import sampled_text
from evallib.evaluation.site.volatile import WITHHELD
from evallib.methods.base.results import Estimate
from evallib.methods.inference.permutation import mc_error
from evallib.reporting import plots
from evallib.reporting.area_share import area_share
from evallib.reporting.blocks import HTMLBlock, block, cap, estimate_table, figure_html, paragraph, quantity, render
from evallib.reporting.disclosure import count_series_policy, format_count, its_count_figure, withheld_note
from evallib.reporting.words import p_text
from evallib.vocabulary import estimator_label, ordinal, outcome_label, plural, spell_out, unit_plural

EMPTY = HTMLBlock("")
#: Class of the primary outcome's trend figure (or its withheld note): the figure a board paper shows.
PRIMARY_TREND = "primary-trend"


def _period(ev: SiteEvaluation) -> str:
    a = ev.primary or (ev.analyses[0] if ev.analyses else None)
    return a.coverage.period_word if a is not None else "month"


def who_and_when(ev: SiteEvaluation) -> HTMLBlock:
    """Title block: the site, its care model, dates, members and membership confidence."""
    p = ev.protocol
    w = p.windows
    status = "evaluated" if ev.evaluable else "not evaluable (the summary says why)"
    rows = [
        ("Site", f"{p.site_id}: {p.site_name}"),
        ("Care model", p.care_model),
        ("Announced", p.announced or "not recorded"),
        ("Intervention start (analysis)", w.post_start.strftime("%B %Y")),
        ("Membership confidence", f"{p.membership_confidence} (confirm membership locally)"),
        ("Primary outcome (pre-specified)", f"{outcome_label(p.primary_outcome)}, expected to {p.expected_direction}"),
        ("Pre-period", w.pre_text()),
        ("Follow-up", w.follow_up_text()),
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
    html = str(render("who_and_when.html.j2", rows=[(k, v, False) for k, v in rows], notes=spell_out(p.notes)))
    return HTMLBlock(html + area_share(ev).html)  # the share of its CCGs a vanguard serves, published evaluations


def data_coverage(ev: SiteEvaluation) -> HTMLBlock:
    """What the data cover: periods, the site's units used, comparators and why others were left out."""
    if not ev.evaluable:
        return EMPTY
    analyses = []
    for a in ev.analyses:
        c = a.coverage
        word = c.period_word
        excluded = "; ".join(f"{k}: {v}" for k, v in c.excluded.items()) or "none"
        lost = ", ".join(c.treated_not_in_data + c.treated_incomplete)
        missing = ", ".join(m.strftime("%b %Y") for m in c.missing_periods)
        rows = [
            ("Data source", c.source, False),
            (f"Pre-period {word}s in the data", str(c.n_pre), False),
            (f"Follow-up {word}s in the data", str(c.n_post) + (" (short)" if c.short_follow_up else ""), False),
            (f"{cap(word)}s missing from the data", missing or "none", False),
            (f"The site's {c.units} used", ", ".join(c.treated_used), False),
            (f"The site's {c.units} without complete data", lost or "none", False),
            (f"Comparison {c.units}", str(c.n_comparators), False),
            ("Left out of the comparison pool", excluded, False),
        ]
        if c.windows is not None and c.window_cut:
            rows.insert(
                1,
                (
                    "Window analysed (cut at a level shift)",
                    f"{c.windows.pre_start:%b %Y} to {c.windows.post_end:%b %Y}",
                    False,
                ),
            )
        for b in c.breaks:
            rows.append((f"Level shift in {b.unit}'s series ({b.action})", b.words, False))
        if math.isfinite(c.baseline_total):
            rows.append(("Site total in the baseline year (rounded)", format_count(c.baseline_total), True))
        analyses.append(
            {
                "label": cap(a.label),
                "rows": rows,
                "units": c.units,
                "n_comparators": c.n_comparators,
                "comparators": ", ".join(c.comparators),
            }
        )
    skipped = [(cap(outcome_label(o)), why) for o, why in ev.skipped_outcomes.items()]
    return HTMLBlock(str(render("data_coverage.html.j2", analyses=analyses, skipped=skipped)))


def trends(ev: SiteEvaluation) -> HTMLBlock:
    """Trend plots of the site against its comparison pool, indexed to the baseline year."""
    if not ev.evaluable:
        return EMPTY
    figures = []
    for i, a in enumerate(ev.analyses):
        counts = a.site_counts if a.site_counts is not None else a.its.observed
        cls = PRIMARY_TREND if i == 0 else ""  # the primary outcome's figure: the one a board paper shows
        if not a.is_proportion and count_series_policy(counts) == "withheld":
            figures.append(withheld_note(f"{a.label} trend", cls))
            continue
        fig = plots.plot_trends(
            a.trends,
            intervention_start=ev.protocol.windows.post_start,
            indexed=not a.is_proportion,
            title=f"{cap(a.label)}: {ev.protocol.site_id} vs comparison pool",
            site_label=f"{ev.protocol.site_id} ({plural(len(a.coverage.treated_used), a.coverage.unit_kind)})",
        )
        figures.append(figure_html(fig, f"{a.label} over time, site against comparison pool", cls))
    a0 = ev.analyses[0]
    html = render(
        "trends.html.j2",
        period_word=a0.coverage.period_word,
        indexed=any(not a.is_proportion for a in ev.analyses),
        points=any(a.is_proportion for a in ev.analyses),
        baseline=plural(a0.periods_per_year, a0.coverage.period_word),
        figures=figures,
    )
    return HTMLBlock(str(html))


def _pretrend_sentence(a: OutcomeAnalysis) -> str:
    lin = a.pretrend
    head = (
        f"{cap(a.label)}: the pre-specified pre-trend test (placebo test of the linear pre-period trend "
        "difference, 5% level)"
    )
    if not math.isfinite(lin.p_value):
        # Withheld for a volatile site: without a p-value the test says nothing either way.
        return (
            f"{head} gave no p-value: it is withheld for a site this much noisier than its comparators, where a "
            "plain placebo test over-rejects, so it says nothing either way about trends before the start."
        )
    verdict = (
        f"evidence of diverging trends before the start ({p_text(lin.p_value)})"
        if a.pretrend_evidence
        else f"no clear evidence of diverging trends before the start ({p_text(lin.p_value)})"
    )
    es = a.event_study
    leads = (
        f"; the event-study leads, shown as a description, have a joint placebo {p_text(es.pretrend.p_value)}"
        if es is not None and es.leads and math.isfinite(es.pretrend.p_value)
        else ""
    )
    return f"{head} found {verdict}{leads}."


def _volatility_sentence(a: OutcomeAnalysis) -> str:
    vol = a.did.volatility
    if vol is None or not vol.rank:
        return ""
    rank, pct, n = vol.rank[0], vol.percentile[0], vol.n_comparison
    noisy = "noisier than most of" if pct >= 75 else "quieter than most of" if pct <= 25 else "about as noisy as"
    word = a.coverage.period_word
    return (
        f"{cap(a.label)}: before the start the site's {word}-to-{word} noise ranks {rank} of {n + 1} "
        f"({ordinal(round(pct))} percentile): it is {noisy} its comparison {a.coverage.units}"
        + (
            "; the plain placebo test can over-reject for such a site, so read the studentized test"
            if pct >= 90
            else ""
        )
        + "."
    )


def _unit_words(a: OutcomeAnalysis) -> str:
    return "difference in percentage points" if a.is_proportion else "difference, percent"


def _placebo_source(a: OutcomeAnalysis) -> tuple[str, Any]:
    """The estimator whose placebo distribution the histogram shows, and its result: the primary estimator's own
    when it keeps its placebo estimates on the effect's scale, else the plain DiD's (and the title says so).
    """
    h = a.headline.get(a.primary_estimator)
    result = getattr(h, "result", None) if h is not None else None
    if (
        h is not None
        and a.primary_estimator != "did_studentized"  # its placebos are scaled by noise: not effects
        and getattr(result, "placebo_estimates", None) is not None
        and h.row.scale == "log"
        and h.row.inference != WITHHELD
    ):
        return a.primary_estimator, result
    return "did", a.did


def _sampled(ev: SiteEvaluation, names: tuple[str, ...] | None = None, *, its_rows: str = "") -> list[str]:
    """One line per placebo p-value drawn from random assignments (not every one tried): the estimate, how many
    assignments and its Monte Carlo error; ``names`` keeps those headline estimators only (all, and the event
    study, when None). Empty when every p-value is exhaustive, and the method text then says every unit is tried.
    With ``its_rows`` (the period's word), each analysis's line for the controlled ITS's other rows follows its own.
    """
    lines = []
    for a in ev.analyses:
        fits = [(h.label, h.row, h.result) for n, h in a.headline.items() if names is None or n in names]
        if names is None and a.event_study is not None:
            fits.append(("event study (first period after the start)", a.event_study.headline, a.event_study))
        tests = [(label, r.placebo_draws, r.p_value_mc_error) for label, row, r in fits if _sampled_row(row, r)]
        if names is None and _sampled_row(a.pretrend, a.did):  # the pre-trend test uses the DiD's draws and seed
            tests.append(("pre-trend test", a.did.placebo_draws, mc_error(a.pretrend.p_value, a.did.placebo_draws)))
        es = a.event_study
        if names is None and es is not None and _sampled_row(es.pretrend, es) and math.isfinite(es.pretrend.p_value):
            # The leads' joint p-value the pre-trend paragraph quotes ranks the site among the event study's draws.
            tests.append(
                ("event-study leads (joint test)", es.placebo_draws, mc_error(es.pretrend.p_value, es.placebo_draws))
            )
        lines += [f"{cap(a.label)}, {label}: {sampled_text(draws, err)}." for label, draws, err in tests]
        lines += _controlled_rows(a, its_rows) if its_rows else []
    return lines


def _controlled_rows(a: OutcomeAnalysis, period: str) -> list[str]:
    """The controlled ITS's other rows, ranked among the same random fake sites as its headline: each one's Monte
    Carlo error (every p-value in its table is sampled, not only the headline's); empty when exhaustive.
    """
    c = a.controlled
    if c is None or not _sampled_row(c.headline, c):
        return []
    errors = c.term_mc_errors()
    rest = [r for r in c.rows if r.term in errors and r.term != c.headline.term and _sampled_row(r, c)]
    if not rest:
        return []
    # quantity() words an ITS row "method: term"; the line names the method once.
    each = "; ".join(f"{quantity(r, period).rpartition(': ')[2]} {errors[r.term]:.3f}" for r in rest)
    return [
        f"{cap(a.label)}, controlled interrupted time series, its other rows (the same {c.placebo_draws:,} random "
        f"placebo assignments): Monte Carlo error {each}."
    ]


def _sampled_row(row: Estimate, result: Any) -> bool:
    """Whether a row's p-value is a placebo test's from random assignments (a withheld one is not shown)."""
    return row.inference.startswith("placebo") and int(getattr(result, "placebo_draws", 0) or 0) > 0


def _several(ev: SiteEvaluation) -> bool:
    """Whether the site has several treated units (its placebo assignments are then sets of as many units)."""
    return any(h.row.n_treated > 1 for a in ev.analyses for h in a.headline.values())


def did(ev: SiteEvaluation) -> HTMLBlock:
    """Comparisons with the comparison pool: every headline estimate, the pre-trend test, event studies, placebos."""
    if not ev.evaluable:
        return EMPTY
    rows = []
    for a in ev.analyses:
        for name, h in a.headline.items():
            mark = " (the protocol's primary estimate)" if a is ev.primary and name == a.primary_estimator else ""
            rows.append((a.label + mark, h.row, a.is_proportion))
        rows.append((a.label, a.pretrend, a.is_proportion))
    figs = []
    for a in ev.analyses:
        word = a.coverage.period_word
        if a.event_study is not None:
            size = plural(a.event_bin_periods, word)
            fig = plots.plot_event_study(
                a.event_study,
                title=f"{cap(a.label)}: event study (difference-in-differences by {size} relative to the start)",
                xlabel=f"bins of {size} relative to the start (-1 = reference)",
                ylabel=_unit_words(a),
            )
            if not a.is_proportion:
                plots.percent_axis(fig.axes[0], "y")
            figs.append(figure_html(fig, f"event study for {a.label}"))
        if a is ev.primary:
            name, result = _placebo_source(a)
            fig = plots.plot_placebo_distribution(
                result,
                title=f"{cap(a.label)}: the site's {estimator_label(name)} estimate among its placebo estimates",
                xlabel=_unit_words(a),
            )
            if not a.is_proportion:
                plots.percent_axis(fig.axes[0], "x")
            figs.append(figure_html(fig, f"placebo distribution of the {estimator_label(name)} for {a.label}"))
    checks = [s for a in ev.analyses for s in (_pretrend_sentence(a), _volatility_sentence(a)) if s]
    measures = {a.measure for a in ev.analyses}
    html = render(
        "did.html.j2",
        any_log=bool(measures - {"proportion"}),
        any_points="proportion" in measures,
        measure_word="rate" if measures == {"rate"} else "count",
        period_word=_period(ev),
        table=estimate_table(rows, _period(ev)),
        checks=checks,
        sampled=_sampled(ev),
        several=_several(ev),
        figures=figs,
    )
    return HTMLBlock(str(html))


def programme(ev: SiteEvaluation) -> HTMLBlock:
    """ICS designation waves: Callaway-Sant'Anna effects, robust to staggered starts."""
    if not ev.evaluable:
        return EMPTY
    pw = ev.programme
    if pw is None:
        if ev.protocol.site_type == "ICS":
            return block(
                paragraph("No ICS wave starts inside the data, so the staggered-adoption analysis is not possible.")
            )
        return EMPTY  # not an ICS (vanguards all started in 2015): no staggered waves to compare
    rows = [(outcome_label(pw.outcome), r, False) for r in pw.rows]
    fig = plots.plot_event_study(
        pw.dynamic,
        title=f"{cap(outcome_label(pw.outcome))}: all ICS waves by months since designation (Callaway-Sant'Anna)",
        xlabel="months relative to the wave's start",
        ylabel="difference, percent",
    )
    plots.percent_axis(fig.axes[0], "y")
    html = render(
        "waves.html.j2",
        units=unit_plural(pw.unit_kind),
        n_units=pw.n_units,
        table=estimate_table(rows),
        figure=figure_html(fig, "effects by months since designation, all waves"),
    )
    return HTMLBlock(str(html))


def _seasonality_sentence(a: OutcomeAnalysis) -> str:
    if a.periods_per_year == 1:
        return "yearly data have no seasonal cycle to model"
    fitted = a.its.fitted[a.its.fitted.index < a.its.intervention_start]
    swing = 100 * (fitted.max() / fitted.min() - 1) if len(fitted) and fitted.min() > 0 else float("nan")
    pairs = "two Fourier pairs" if a.periods_per_year >= 6 else "one Fourier pair"
    if not math.isfinite(swing):
        return f"seasonality modelled by {pairs}"
    return f"the fitted seasonal cycle swings by about {swing:.0f}% within a year, modelled by {pairs}"


def its(ev: SiteEvaluation) -> HTMLBlock:
    """Interrupted time series: the site's own series (a description) and the controlled series (placebo test)."""
    if not ev.evaluable:
        return EMPTY
    rows: list[tuple[str, Estimate, bool]] = []
    for a in ev.analyses:
        if a.controlled is not None:
            rows.extend((a.label, r, a.is_proportion) for r in a.controlled.rows)
        rows.extend((a.label, r, a.is_proportion) for r in a.its.rows)
    figs, diag = [], []
    for a in ev.analyses:
        r = a.its
        if a is ev.primary:
            if a.controlled is not None:  # a ratio of the site's series to its pool's: not a count
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
            else:  # counts and rates: indexed, or withheld when the counts are small (disclosure control)
                figs.append(its_count_figure(r, title=title, alt=alt, counts=a.site_counts))
        rho = getattr(r, "ar1_rho", None)
        verdict = f"AR(1) autocorrelation of the errors {rho:.2f} (REML)" if rho is not None else ""
        diag.append(f"{cap(a.label)}: " + "; ".join(s for s in (verdict, _seasonality_sentence(a)) if s) + ".")
    a0 = ev.primary or ev.analyses[0]
    ppy, word = a0.periods_per_year, a0.coverage.period_word
    html = render(
        "its.html.j2",
        period_word=word,
        seasonal="" if ppy == 1 else ("two Fourier pairs" if ppy >= 6 else "one Fourier pair"),
        horizons=f"{plural(ppy, word)} and {plural(2 * ppy, word)}",
        sampled=_sampled(ev, ("controlled_its",), its_rows=word),
        # Drawn even where its rows are withheld (a volatile site): then no line, but not "every set" either.
        drawn=any(a.controlled is not None and a.controlled.placebo_draws > 0 for a in ev.analyses),
        several=_several(ev),
        table=estimate_table(rows, word),
        diagnostics=diag,
        figures=figs,
    )
    return HTMLBlock(str(html))
