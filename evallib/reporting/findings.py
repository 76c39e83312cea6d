"""The findings of a site report in plain words, its cautions, provenance and the data attribution."""

from __future__ import annotations

import math
from html import escape

from evallib.evaluation.answer import Answer, conclusion
from evallib.evaluation.coverage import MIN_COMPARATORS_FOR_CI
from evallib.evaluation.outcome import WITHHELD, OutcomeAnalysis
from evallib.evaluation.provenance import provenance
from evallib.evaluation.site import SiteEvaluation
from evallib.methods.results import Estimate
from evallib.reporting.blocks import HTMLBlock, cap, describe_effect
from evallib.sources.bundled import ATTRIBUTION


def _change_words(row: Estimate, proportion: bool) -> tuple[str, str, str]:
    """(headline change, low, high) as readers say them: "3.1% less", or points for a percentage."""
    est, lo, hi = describe_effect(row, proportion=proportion)
    if row.scale == "rate_ratio":
        return est, lo, hi
    unit = " percentage points" if proportion or row.scale.startswith("percentage_points") else ""
    return est + unit, lo, hi + unit


def _lead(a: OutcomeAnalysis, ans: Answer, expected: str) -> str:
    r = ans.row
    est, lo, hi = _change_words(r, a.is_proportion)
    measure = "rate ratio" if r.scale == "rate_ratio" else "change"
    sentence = (
        f"<strong>{escape(cap(ans.label))}</strong> (the protocol's primary estimate): relative to its "
        f"{r.n_control} comparison {escape(a.coverage.units)}, the site's {escape(a.label)} {measure} over "
        f"{a.coverage.n_post} months of follow-up was {escape(est)} (95% interval {escape(lo)} to {escape(hi)}; "
        f"placebo test p = {r.p_value:.2f}). "
    )
    if ans.conclusion in ("decrease", "increase"):
        word = {"decrease": "a fall", "increase": "a rise"}[ans.conclusion]
        hoped = "in line with" if ans.direction == "hoped for" else "opposite to"
        sentence += f"The data give evidence of {word}, {hoped} the protocol's expected {escape(expected)}."
    else:
        sentence += "The data do not give clear evidence of any effect: every change in the interval fits the data."
        if math.isfinite(ans.mde):
            mde = (
                f"{ans.mde:.1f} percentage points"
                if a.is_proportion
                else f"{100 * (math.exp(ans.mde) - 1):.0f}% either way"
            )
            sentence += f" This design could have detected a change of about {escape(mde)} (80% power)."
        elif ans.mde == math.inf:
            sentence += " With so few comparison units this design could not have detected any change."
    if not math.isfinite(r.ci_low) or not math.isfinite(r.ci_high):
        sentence += (
            f" The interval is unbounded because fewer than {MIN_COMPARATORS_FOR_CI} comparison "
            f"{escape(a.coverage.units)} are available."
        )
    return sentence


def _others(ans: Answer) -> str:
    withheld = [v.label for v in ans.others if v.row.inference == WITHHELD]
    agree = [v.label for v in ans.agreeing if v.name != "own_series" and v.row.inference != WITHHELD]
    parts = []
    if withheld:
        parts.append(
            f"{escape(cap(', '.join(withheld)))}: shown without p-values or intervals, which a plain placebo test "
            "cannot give reliably for a site this noisy."
        )
    if agree:
        parts.append(f"{escape(cap(', '.join(agree)))} agree.")
    for v in ans.disagreeing:
        est, lo, hi = _change_words(v.row, v.row.scale.startswith("percentage_points"))
        parts.append(
            f"{escape(cap(v.label))} finds {escape(v.conclusion)} ({escape(est)}, {escape(lo)} to {escape(hi)}): "
            f"{escape(v.why)}."
        )
    return " ".join(parts)


def _secondary(a: OutcomeAnalysis) -> str:
    r = a.headline["did"].row
    est, lo, hi = _change_words(r, a.is_proportion)
    c = conclusion(r)
    said = "no clear effect" if c == "no clear effect" else f"a clear {c}"
    return (
        f"{escape(cap(a.label))} (comparison {escape(a.coverage.units)}, difference-in-differences): {escape(est)} "
        f"(95% interval {escape(lo)} to {escape(hi)}, p = {r.p_value:.2f}): {escape(said)}."
    )


def findings(ev: SiteEvaluation) -> HTMLBlock:
    """The site's answer in plain words: the primary estimate, the other methods, robustness and every caution."""
    if not ev.evaluable:
        return HTMLBlock(
            f"<p><strong>This site could not be evaluated:</strong> {escape(ev.reason)}. "
            "No estimate is reported, because any number would mislead.</p>"
        )
    p = ev.protocol
    prim = ev.primary
    ans = ev.answer
    parts = []
    if prim is not None and ans is not None:
        parts.append(f"<p>{_lead(prim, ans, p.expected_direction)}</p>")
        others = _others(ans)
        if others:
            parts.append(f"<p><strong>Other methods:</strong> {others}</p>")
        rb = prim.robustness
        if rb is not None and rb.verdict == "confirmed":
            parts.append(
                "<p><strong>Robustness:</strong> confirmed: every check that could run (other comparison sets, a "
                "fake start, dropping comparators, departures from parallel trends) agrees with it.</p>"
            )
        elif rb is not None and rb.verdict == "not confirmed":
            names = ", ".join(c.name for c in rb.disagreements)
            parts.append(f"<p><strong>Robustness:</strong> not confirmed: {escape(names)} disagree(s) with it.</p>")
    secondary = [f"<li>{_secondary(a)}</li>" for a in ev.analyses if a is not prim]
    if secondary:
        parts.append(f"<p><strong>Other outcomes:</strong></p><ul class='findings'>{''.join(secondary)}</ul>")
    cautions = "".join(f"<li>{escape(f)}</li>" for f in ev.flags)
    parts.append(
        f"<h4>Cautions</h4><ul class='flags'>{cautions}</ul>" if cautions else "<p>No cautions were raised.</p>"
    )
    return HTMLBlock("".join(parts))


def attribution() -> HTMLBlock:
    return HTMLBlock(f"<p class='attribution'>{escape(ATTRIBUTION)}</p>")


def provenance_block(ev: SiteEvaluation) -> HTMLBlock:
    """What this report was made from (library version, commit, protocol and data hashes)."""
    p = provenance(ev.protocol)
    files = "".join(f"<li>{escape(f['file'])}: <code>{escape(f['sha256'][:16])}</code></li>" for f in p["data_files"])
    return HTMLBlock(
        f"<p class='notes'>evallib {escape(p['evallib_version'])}, commit <code>{escape(str(p['git_commit'])[:12])}</code>, "
        f"protocol <code>{escape(p['params_sha256'][:16])}</code>.</p><ul class='notes'>{files}</ul>"
    )
