"""The summary box a board reads first, the findings in plain words, provenance and the data attribution."""

from __future__ import annotations

import math

from markupsafe import Markup

from evallib.evaluation.record.provenance import provenance
from evallib.evaluation.site.answer import conclusion
from evallib.evaluation.site.coverage import MIN_COMPARATORS_FOR_CI, unit_kind
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.evaluation.site.outcome import OutcomeAnalysis
from evallib.evaluation.site.robustness import Robustness
from evallib.evaluation.site.volatile import WITHHELD
from evallib.methods.base.results import Estimate
from evallib.reporting.blocks import HTMLBlock, cap, describe_effect, render
from evallib.reporting.glossary import ESTIMATOR_ENTRIES, INFERENCE_ENTRIES, term_link
from evallib.reporting.words import article, edge_words, effect_sentence, marker, mde_words, p_text, sampled_words
from evallib.sources.bundled import ATTRIBUTION
from evallib.sources.files import FileSource
from evallib.vocabulary import agree as agree_verb
from evallib.vocabulary import inference_label, outcome_label, plural, unit_plural


def _change_words(row: Estimate, proportion: bool) -> tuple[str, str, str]:
    """(headline change, low, high) as readers say them: "-3.1%", or points for a percentage."""
    est, lo, hi = describe_effect(row, proportion=proportion)
    if row.scale == "rate_ratio":
        return est, lo, hi
    points = proportion or row.scale.startswith("percentage_points")
    strip = (lambda s: s.replace(" pts", "")) if points else (lambda s: s)
    unit = " percentage points" if points else ""
    return strip(est) + unit, strip(lo), strip(hi) + unit


def linked_estimator(name: str, label: str) -> Markup | str:
    """An estimator's label linked to its glossary entry (plain when it has none)."""
    return term_link(label, ESTIMATOR_ENTRIES[name]) if name in ESTIMATOR_ENTRIES else label


def linked_inference(name: str) -> Markup | str:
    """An inference's label linked to its glossary entry (plain when it has none)."""
    label = inference_label(name)
    return term_link(label, INFERENCE_ENTRIES[name]) if name in INFERENCE_ENTRIES else label


def _question(ev: SiteEvaluation) -> str:
    p = ev.protocol
    kind = unit_kind(p.data_source)
    verb = {"decrease": "fall", "increase": "rise"}[p.expected_direction]
    start = p.windows.post_start
    # A roll-out has no one start: the question names the first and says the areas started in turn.
    when = (
        f"after the care model started in each of them (the first in {start:%B %Y})"
        if p.staggered
        else f"after the care model started in {start:%B %Y}"
    )
    return (
        f"Did {outcome_label(p.primary_outcome)} for {p.site_id}'s {unit_plural(kind)} {verb}, relative to "
        f"comparable {unit_plural(kind)}, {when}?"
    )


def next_step(reason: str) -> str:
    """What would make a not-evaluable site evaluable, from the reason it is not."""
    r = reason.lower()
    if "covid" in r:
        return (
            "an end of follow-up before March 2020 that still leaves enough follow-up after the start "
            "(post_period_end), or data from after the COVID-19 disruption ended"
        )
    if "lists no" in r or "none listed" in r:
        return "the site's member units listed in its params file (treated_units), from the registry or locally"
    if "appear in" in r or "incomplete" in r:
        return "data that cover the site's units over the whole window, or their current codes in treated_units"
    if "before the start" in r or "pre-period" in r:
        return "data reaching further back before the start (or an earlier pre_period_start)"
    if "follow-up" in r or "post-period" in r:
        return "data reaching further after the start (a later post_period_end, once the data exist)"
    if "comparison pool" in r:
        return "a wider comparison pool (comparison_pool, comparison_include or comparison_exclude)"
    return (
        "an outcome the site's own work changes, measured on the population it serves: name that dataset and "
        "outcome in the params file (data_source, primary_outcome)"
    )


def _direction_words(ans_conclusion: str, direction: str, expected: str) -> str:
    if direction == "hoped for":
        return f"This is a clear {ans_conclusion}, the direction the protocol hoped for."
    if direction == "opposite":
        return f"This is a clear {ans_conclusion}: the opposite of the {expected} the protocol hoped for."
    return "The data do not give clear evidence of any effect: no change, and changes either way, fit the data."


def _untested_words(rb: Robustness | None) -> str:
    """The checks that ran but could not have disagreed, as a clause (empty when none): they are not counted."""
    if rb is None or not rb.untested:
        return ""
    names = ", ".join(c.name for c in rb.untested)
    return f" ({names}: could not test it, so not counted)"


def summary(ev: SiteEvaluation) -> HTMLBlock:
    """The box a board member reads without scrolling: question, effect in words, direction, verdict, cautions."""
    ctx: dict[str, object] = {"question": _question(ev), "evaluable": ev.evaluable}
    a, ans = ev.primary, ev.answer
    if not ev.evaluable or a is None or ans is None:
        ctx.update(reason=ev.reason, next_step=next_step(ev.reason))
        return HTMLBlock(str(render("summary.html.j2", **ctx)))
    r = ans.row
    c = a.coverage
    rb = ev.robustness  # re-fits of the answer's own estimator (the staggered one for a roll-out)
    cls, symbol, marker_words = marker(ans.verdict, ans.direction)
    refits = (
        "re-fits of the primary estimator with a fake start for every cohort, dropping comparators; the stacked DiD; "
        "the pre-trend test"
        if ev.staggered is not None
        else "re-fits of the primary estimator on other comparison sets, with a fake start, dropping comparators; "
        "the pre-trend test"
    )
    nothing_ran = rb is not None and ans.verdict == "not confirmed" and not rb.disagreements
    verdict = {
        "confirmed": f"confirmed: every check that could test it ({refits}) agrees with the primary estimate"
        + _untested_words(rb)
        + ".",
        "not confirmed": "not confirmed: no check of the primary estimator could run and test it, so nothing "
        "confirms it; treat it with caution."
        if nothing_ran
        else "not confirmed: "
        + ", ".join(x.name for x in (rb.disagreements if rb else ()))
        + f" {agree_verb(len(rb.disagreements) if rb else 0, 'disagrees', 'disagree')} with it, so "
        "treat it with caution.",
        "no clear effect": "no clear effect to confirm.",
    }.get(ans.verdict, "no robustness checks ran.")
    if rb is not None and rb.sensitivity_words and ans.verdict in ("confirmed", "not confirmed"):
        verdict += f" Sensitivity: {rb.sensitivity_words}."
    ctx.update(
        marker=cls,
        marker_symbol=symbol,
        marker_words=marker_words,
        effect=effect_sentence(r.__dict__, outcome=a.label, units=c.units),
        direction=_direction_words(ans.conclusion, ans.direction, ev.protocol.expected_direction)
        + (" " + edge_words(ans.conclusion in ("decrease", "increase")) if ans.edge else ""),
        detail=(
            Markup("Primary estimate: {}, {} ({}), over {} of follow-up against {}.").format(
                linked_estimator(ans.estimator, ans.label),
                p_text(r.p_value),
                linked_inference(r.inference),
                plural(c.n_post, c.period_word),
                plural(c.n_comparators, "comparison " + c.unit_kind),
            )
        ),
        verdict=verdict,
        mde=mde_words(ans.mde, "percentage_points" if a.is_proportion else "log")
        if ans.conclusion == "no clear effect"
        else "",
        cautions=list(ev.flags),
    )
    if ans.placebo_draws > 0:  # a p-value from random placebo assignments: say how many and how precise it is
        ctx["detail"] = (
            Markup(ctx["detail"]) + " " + sampled_words(ans.placebo_draws, ans.p_value_mc_error, r.n_treated, c.units)
        )
    if not (math.isfinite(r.ci_low) and math.isfinite(r.ci_high)):
        ctx["detail"] = Markup(ctx["detail"]) + (
            f" The interval is unbounded because fewer than {MIN_COMPARATORS_FOR_CI} comparison {c.units} are available."
        )
    return HTMLBlock(str(render("summary.html.j2", **ctx)))


def _secondary(a: OutcomeAnalysis) -> str:
    h = a.headline["did"]
    if h.row.inference == WITHHELD and "did_studentized" in a.headline:
        h = a.headline["did_studentized"]  # a volatile site: the plain test's p-value and interval are withheld
    r = h.row
    est, lo, hi = _change_words(r, a.is_proportion)
    c = conclusion(r)  # the one rule: clear exactly when the interval leaves out no change
    if c == "unknown":
        return f"{cap(a.label)} (comparison {a.coverage.units}, {h.label}): {est}, shown without a p-value or interval."
    said = "no clear effect" if c == "no clear effect" else f"a clear {c}"
    return (
        f"{cap(a.label)} (comparison {a.coverage.units}, {h.label}): {est} "
        f"(95% interval {lo} to {hi}, {p_text(r.p_value)}): {said}."
    )


def findings(ev: SiteEvaluation) -> HTMLBlock:
    """What every other method says beside the primary estimate, robustness and the other outcomes, in words."""
    if not ev.evaluable:
        return HTMLBlock("")
    ans, prim = ev.answer, ev.primary
    agree, disagree, robust = "", [], ""
    if ans is not None and prim is not None:
        withheld = [v.label for v in ans.others if v.row.inference == WITHHELD]
        if withheld:
            agree = (
                f"{cap('; '.join(withheld))}: shown without p-values or intervals, which a plain placebo test cannot "
                "give reliably for a site this noisy. "
            )
        names = [v.label for v in ans.agreeing if v.name != "own_series" and v.row.inference != WITHHELD]
        if names:
            agree += f"{cap('; '.join(names))} {agree_verb(len(names), 'agrees', 'agree')} with the primary estimate."
        for v in ans.disagreeing:
            est, lo, hi = _change_words(v.row, v.row.scale.startswith("percentage_points"))
            said = v.conclusion if v.conclusion == "no clear effect" else article(v.conclusion)
            disagree.append(f"{cap(v.label)} finds {said} ({est}, {lo} to {hi}): {v.why}.")
        rb = ev.robustness
        if rb is not None and rb.verdict == "confirmed":
            checks = (
                "a fake start for every cohort, dropping comparators, the stacked DiD, the pre-trend test"
                if ev.staggered is not None
                else "other comparison sets, a fake start, dropping comparators, the pre-trend test"
            )
            robust = (
                f"confirmed: every check of {rb.estimator_label} that could test it ({checks}) agrees with it"
                + _untested_words(rb)
                + "."
            )
        elif rb is not None and rb.verdict == "not confirmed" and not rb.disagreements:
            robust = f"not confirmed: no check of {rb.estimator_label} could run and test it, so nothing confirms it."
        elif rb is not None and rb.verdict == "not confirmed":
            names_ = ", ".join(c.name for c in rb.disagreements)
            robust = f"not confirmed: {names_} {agree_verb(len(rb.disagreements), 'disagrees', 'disagree')} with it."
        if robust and rb is not None and rb.sensitivity_words:
            robust += f" Sensitivity: {rb.sensitivity_words}."
    secondary = [_secondary(a) for a in ev.analyses if a is not prim]
    html = render("findings.html.j2", agree=agree, disagree=disagree, robustness=robust, secondary=secondary)
    return HTMLBlock(str(html))


def attributions(ev: SiteEvaluation | None = None) -> list[str]:
    """Who to credit for the data: NHS England for bundled data, the evaluator's own words for their files."""
    if ev is None:
        return [ATTRIBUTION]
    out = []
    for spec in ev.protocol.analyses:
        src = spec.data_source
        if isinstance(src, FileSource):
            out.append(src.attribution or f"Data: {src.path.rsplit('/', 1)[-1]}, supplied by the evaluator.")
        else:
            out.append(ATTRIBUTION)
    return list(dict.fromkeys(out))


def attribution(ev: SiteEvaluation | None = None) -> HTMLBlock:
    """The data attribution (NHS England's licence for bundled data; the evaluator's for their own files)."""
    return HTMLBlock(str(render("attribution.html.j2", attributions=attributions(ev))))


def provenance_block(ev: SiteEvaluation) -> HTMLBlock:
    """What this report was made from (library version, commit, protocol and data hashes)."""
    p = provenance(ev.protocol)
    html = render(
        "provenance.html.j2",
        version=p["evallib_version"],
        commit=str(p["git_commit"])[:12] + (" (with uncommitted changes)" if p.get("git_dirty") else ""),
        protocol=p["params_sha256"][:16],
        files=[(f["file"], f["sha256"][:16]) for f in p["data_files"]],
    )
    return HTMLBlock(str(html))
