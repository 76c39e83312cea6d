"""The findings of a site report in plain words, its cautions, provenance and the data attribution."""

from __future__ import annotations

import math
from html import escape

from evallib.evaluation.coverage import MIN_COMPARATORS_FOR_CI
from evallib.evaluation.outcome import OutcomeAnalysis
from evallib.evaluation.provenance import provenance
from evallib.evaluation.site import SiteEvaluation
from evallib.reporting.blocks import HTMLBlock, describe_effect
from evallib.sources.bundled import ATTRIBUTION


def _verdict(a: OutcomeAnalysis, expected: str) -> str:
    r = a.did.row
    est, lo, hi = describe_effect(r, proportion=a.is_proportion)
    unit = " percentage points" if a.is_proportion else ""
    share = f"{r.p_value:.0%}"
    direction = "decrease" if r.estimate < 0 else "increase"
    if a.is_proportion:
        direction = "fall" if r.estimate < 0 else "rise"
    sentence = (
        f"Relative to its {r.n_control} comparison {a.coverage.units}, the site's {escape(a.label)} changed by {escape(est)}{unit} "
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
        sentence += f" The interval is unbounded because fewer than {MIN_COMPARATORS_FOR_CI} comparison {a.coverage.units} are available."
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
        if rb.verdict == "confirmed":
            its_text += (
                "<p><strong>Robustness:</strong> confirmed: every check that could run (other comparison sets, a fake "
                "start, dropping comparators, departures from parallel trends) agrees with the main estimate.</p>"
            )
        elif rb.verdict == "not confirmed":
            names = ", ".join(c.name for c in rb.disagreements)
            its_text += f"<p><strong>Robustness:</strong> not confirmed: {escape(names)} disagree(s) with it.</p>"
    cautions = "".join(f"<li>{escape(f)}</li>" for f in ev.flags)
    caution_html = (
        f"<h4>Cautions</h4><ul class='flags'>{cautions}</ul>" if cautions else "<p>No cautions were raised.</p>"
    )
    return HTMLBlock(f"<ul class='findings'>{''.join(items)}</ul>{its_text}{caution_html}")


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
