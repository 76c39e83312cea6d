"""The robustness section of a site report: other comparison sets, a fake start, leave-one-out,
trend violations, matched comparators, synthetic control weights and pre-period balance."""

from __future__ import annotations

import math
from html import escape

from evallib.evaluation.site import SiteEvaluation
from evallib.methods.matching import FEATURE_LABELS, MEAN_COUNT_FEATURE
from evallib.reporting import plots
from evallib.reporting.blocks import HTMLBlock, cap, estimate_table, figure_html, not_evaluable, paragraph
from evallib.reporting.disclosure import count_cell, log_count_text


def robustness(ev: SiteEvaluation) -> HTMLBlock:
    """Do the conclusions survive other comparison sets, a fake start, dropping comparators, trend violations?"""
    if not ev.evaluable:
        return not_evaluable(ev)
    a = ev.primary
    rb = a.robustness if a is not None else None
    if rb is None:
        return HTMLBlock(paragraph("No robustness checks were run for this outcome."))
    rows = [(a.label, rb.main, a.is_proportion)] + [(a.label, r, a.is_proportion) for r in rb.rows]
    units, unit = a.coverage.units, a.coverage.unit_kind
    marks = {"agrees": "agrees", "disagrees": "<strong>disagrees</strong>", "not run": "not run"}
    checks = "".join(f"<li>{marks[c.status]}: {escape(c.name)}: {escape(c.detail)}.</li>" for c in rb.checks)
    verdict = {
        "confirmed": "<p><strong>Confirmed:</strong> every check that could run agrees with the main estimate.</p>",
        "not confirmed": "<p><strong>Not confirmed</strong>: the main estimate is significant, but "
        f"{escape(', '.join(c.name for c in rb.disagreements))} disagree(s); treat it with caution and look at "
        "which comparison drives it.</p>",
        "no clear effect": "<p><strong>No clear effect</strong>: the main estimate is not significant, so there is no "
        "effect for the checks to confirm; they are shown as descriptions.</p>",
    }[rb.verdict]
    parts = [
        paragraph(
            f"The main estimate is re-estimated against other comparison sets (the 10 {units} most like the site "
            f"before the start, and a synthetic control: a weighted mix of comparison {units} that tracks the site's "
            "pre-period trajectory), judged by whether they agree with it (same direction, overlapping intervals) "
            "rather than by their own significance; with a fake start date in the pre-period (where no effect can "
            f"exist); dropping each comparison {unit} in turn; and asking how large a departure from parallel trends "
            "after the start, relative to the largest one before it, would overturn the conclusion (Rambachan and "
            "Roth's relative magnitudes). A check that could not run says so."
        ),
        estimate_table(rows),
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
            f"<h4>Matched comparators</h4><table class='estimates'><tr><th>{escape(cap(unit))}</th><th>Distance</th>"
            f"<th>Pre-period growth per year</th></tr>{body}</table>"
        )
    if rb.synthetic is not None:
        sw = rb.synthetic.weights[rb.synthetic.weights > 0.005]
        body = "".join(f"<tr><td>{escape(str(u))}</td><td>{v:.3f}</td></tr>" for u, v in sw.items())
        parts.append(
            f"<h4>Synthetic control weights</h4><p>Pre-period fit (RMSPE, log scale): {rb.synthetic.pre_rmspe:.3f}; "
            f"the mean post-period gap's placebo p-value is {rb.synthetic.row.p_value:.2f} (smallest attainable: "
            f"{rb.synthetic.min_p_value:.2f}); as a diagnostic, the post/pre RMSPE ratio ranks with p = "
            f"{rb.synthetic.rmspe_ratio_p_value:.2f} among {len(rb.synthetic.placebos)} placebos.</p>"
            f"<table class='estimates'><tr><th>{escape(cap(unit))}</th><th>Weight</th></tr>{body}</table>"
        )
        fig = plots.plot_synthetic_control(
            rb.synthetic,
            title=f"{cap(a.label)}: site minus synthetic control (grey: placebos)",
            ylabel="log difference",
        )
        parts.append(figure_html(fig, "gap between the site and its synthetic control"))
    if rb.balance is not None:
        b = rb.balance
        cols = [c for c in b.columns if c != "feature"]
        head = "".join(f"<th>{escape(c)}</th>" for c in ["feature", *cols])
        body = "".join(
            "<tr>"
            + f"<td>{escape(_feature_label(r['feature']))}</td>"
            + "".join(_balance_cell(r["feature"], c, r[c]) for c in cols)
            + "</tr>"
            for _, r in b.iterrows()
        )
        parts.append(f"<h4>Balance before the start</h4><table class='estimates'><tr>{head}</tr>{body}</table>")
        parts.append(figure_html(plots.plot_balance(b, title="Pre-period balance by comparison set"), "balance plot"))
    return HTMLBlock("".join(parts))


def _feature_label(feature: object) -> str:
    return f"{feature} (rounded)" if feature == MEAN_COUNT_FEATURE else str(feature)


def _balance_cell(feature: str, column: str, value: object) -> str:
    """Counts in the balance table, and logs of counts, are published through the disclosure rule."""
    if column.endswith("(std. diff.)") or not isinstance(value, int | float) or not math.isfinite(value):
        return f"<td>{_cell(value)}</td>"
    if feature == MEAN_COUNT_FEATURE:
        return count_cell(float(value))  # type: ignore[arg-type]
    if feature == FEATURE_LABELS["level"]:
        return f"<td>{log_count_text(float(value))}</td>"  # type: ignore[arg-type]
    return f"<td>{_cell(value)}</td>"


def _cell(v: object) -> str:
    if isinstance(v, str):
        return escape(v)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:,.0f}" if abs(float(v)) >= 100 else f"{float(v):.3f}"
