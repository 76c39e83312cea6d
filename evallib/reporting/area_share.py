"""How much of its CCGs a vanguard serves, what that means for what the whole-area design can see, and the
published evaluations of the site beside the project's estimate.

An analysis of a CCG's emergency admissions sees an effect on the vanguard's own patients only in proportion to
their share of the CCG's admissions. Taking that share to be the vanguard's share of the CCG's population (its
patients admitted at the CCG's rate), an effect ``e`` on them is about ``share * e`` at CCG level, and the smallest
effect on them the design can detect is about its minimum detectable effect divided by the share.
"""

from __future__ import annotations

import math

from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.reporting.blocks import HTMLBlock, describe_effect, render
from evallib.reporting.words import article
from evallib.sources.registry import AreaCoverage, area_coverage, published_evaluations

#: The effect on the vanguard's own patients the report translates to CCG level, in percent.
ILLUSTRATIVE_EFFECT_PCT = 20.0


def _mde_pct(ev: SiteEvaluation) -> float | None:
    """The primary estimate's minimum detectable fall, in percent (None when not available or not a log scale)."""
    ans, prim = ev.answer, ev.primary
    if ans is None or prim is None or prim.is_proportion or not math.isfinite(ans.mde):
        return None
    return 100 * (1 - math.exp(-abs(ans.mde)))


def share_sentences(cov: AreaCoverage, mde_pct: float | None) -> list[str]:
    """The share of the CCG the vanguard serves and what it means for the detectable effect, in sentences."""
    out = []
    if cov.share is None:
        known = (
            f" Published population: {cov.vanguard_population:,.0f} ({cov.vanguard_population_source})."
            if (cov.vanguard_population is not None)
            else ""
        )
        out.append(
            f"The share of its CCGs' population this vanguard serves is unknown: {cov.note}.{known} The analysis "
            "measures whole CCGs, so an effect confined to the vanguard's own patients is diluted by an unknown "
            "factor and may be far smaller at CCG level than among them."
        )
        if mde_pct is not None:
            out.append(
                f"The design's minimum detectable effect is about {mde_pct:.0f}% of the CCGs' admissions; an effect "
                "on the vanguard's patients would need to be larger than that by the inverse of the unknown share."
            )
        return out
    share = cov.share
    out.append(
        f"This vanguard served about {100 * share:.0f}% of its CCGs' population: {cov.vanguard_population:,.0f} "
        f"people ({cov.vanguard_population_source}) of {cov.ccg_population:,.0f} ({cov.ccg_population_source}); "
        f"{cov.note}."
    )
    if share < 1:
        diluted = ILLUSTRATIVE_EFFECT_PCT * share
        out.append(
            f"The analysis measures whole CCGs. If the vanguard's patients are admitted at the CCG's rate, a "
            f"{ILLUSTRATIVE_EFFECT_PCT:.0f}% fall in their emergency admissions is about {article(f'{diluted:.1f}% fall')} at "
            "CCG level."
        )
        if mde_pct is not None:
            needed = mde_pct / share
            seen = (
                f"so only a fall of about {needed:.0f}% or more among the vanguard's own patients could be detected"
                if needed < 100
                else "more than all of the vanguard's patients' admissions: the design cannot detect an effect "
                "confined to them"
            )
            out.append(f"The design's minimum detectable effect is about {mde_pct:.0f}% at CCG level, {seen}.")
    return out


def area_share(ev: SiteEvaluation) -> HTMLBlock:
    """The vanguard's share of its CCGs and the published evaluations of the site (empty for other sites)."""
    p = ev.protocol
    evaluations = published_evaluations(p.site_id)
    if p.site_type != "vanguard" and not evaluations:
        return HTMLBlock("")
    sentences = share_sentences(area_coverage(p.site_id), _mde_pct(ev)) if p.site_type == "vanguard" else []
    rows = [[e.source, e.population, e.outcome, e.window, e.effect, e.design] for e in evaluations]
    ans = ev.answer
    a = ev.primary
    if rows and ans is not None and a is not None:
        est, lo, hi = describe_effect(ans.row, proportion=a.is_proportion)
        rows.append(
            [
                "This report (primary estimate)",
                f"everyone in {', '.join(a.coverage.treated_used)} (whole area)",
                a.label,
                f"follow-up {p.windows.follow_up_text()}",
                f"{est} (95% interval {lo} to {hi})",
                ans.label,
            ]
        )
    head = ["Source", "Population", "Outcome", "Window", "Effect", "Design"]
    return HTMLBlock(str(render("area_share.html.j2", sentences=sentences, head=head, rows=rows)))
