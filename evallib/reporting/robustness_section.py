"""The robustness section of a site report: other comparison sets, a fake start, leave-one-out,
trend violations, matched comparators, synthetic control weights and pre-period balance.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, SupportsFloat

from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.methods.synth.matching import FEATURE_LABELS, MEAN_COUNT_FEATURE
from evallib.methods.synth.synthetic_did import LOO_ALL_UNITS, LOO_UNITS
from evallib.reporting import plots
from evallib.reporting.blocks import HTMLBlock, block, cap, estimate_table, figure_html, paragraph, render
from evallib.reporting.disclosure import count_cell, log_count_text
from evallib.reporting.words import p_text


def robustness(ev: SiteEvaluation) -> HTMLBlock:
    """The robustness section: whether the conclusions survive other comparison sets, a fake start, dropping
    comparators and violations of parallel trends.
    """
    if not ev.evaluable:
        return HTMLBlock("")
    a = ev.primary
    rb = ev.robustness  # re-fits of the answer's estimator (the staggered one for a roll-out)
    if rb is None or a is None:
        return block(paragraph("No robustness checks were run for this outcome."))
    main = rb.main
    if ev.staggered is not None:  # its rows' terms do not name the estimator: the table must
        main = replace(main, term=f"{rb.estimator_label}: overall effect")
    rows = [(a.label, main, a.is_proportion)] + [(a.label, r, a.is_proportion) for r in rb.rows]
    unit = a.coverage.unit_kind
    ctx: dict[str, Any] = {
        "estimator": rb.estimator_label,
        # A roll-out's checks: a fake start for every cohort, leave one out and the pre-trend test only.
        "staggered": ev.staggered is not None,
        "points": a.is_proportion,
        "units": a.coverage.units,
        "unit": unit,
        "period_word": a.coverage.period_word,
        "table": estimate_table(rows, a.coverage.period_word),
        "checks": rb.checks,
        "verdict": rb.verdict,
        "disagreements": ", ".join(c.name for c in rb.disagreements),
        "n_disagree": len(rb.disagreements),
        "untested": ", ".join(c.name for c in rb.untested),
        "matched": None,
        "synthetic": None,
        "balance": None,
    }
    if rb.matched is not None:
        t = rb.matched.table
        ctx["matched"] = {
            "head": [cap(unit), "Distance", "Pre-period growth (% a year)"],
            "rows": [
                [str(u), f"{d:.2f}", _pct_a_year(g)]
                for u, d, g in zip(t["unit"], t["distance"], t["trend"], strict=True)
            ],
        }
    if rb.synthetic is not None:
        s = rb.synthetic
        assert s.placebos is not None  # the synthetic control check is a placebo test
        sw = s.weights[s.weights > 0.005]
        fig = plots.plot_synthetic_control(
            s,
            title=f"{cap(a.label)}: site against its synthetic control, in percent (grey: placebos)",
            ylabel="site vs synthetic control",
        )
        plots.percent_axis(fig.axes[0], "y")
        ctx["synthetic"] = {
            "rmspe": f"{100 * math.expm1(s.pre_rmspe):.1f}%",
            "p": p_text(s.headline.p_value),
            "min_p": f"{s.min_p_value:.2f}",
            "ratio_p": p_text(s.rmspe_ratio_p_value),
            "n": len(s.placebos),
            "head": [cap(unit), "Weight"],
            "rows": [[str(u), f"{v:.3f}"] for u, v in sw.items()],
            "figure": figure_html(fig, "gap between the site and its synthetic control"),
        }
    if rb.balance is not None:
        b = rb.balance
        cols = [c for c in b.columns if c != "feature"]
        ctx["balance"] = {
            "head": ["feature", *cols],
            "rows": [
                [_feature_label(str(r["feature"])), *(_balance_cell(r["feature"], c, r[c]) for c in cols)]
                for _, r in b.iterrows()
            ],
            "figure": figure_html(plots.plot_balance(b, title="Pre-period balance by comparison set"), "balance plot"),
        }
    return HTMLBlock(str(render("robustness.html.j2", loo_all=LOO_ALL_UNITS, loo_top=LOO_UNITS, **ctx)))


#: Pre-period features on the log scale, in the unit the balance table shows them (percent, as every effect).
PERCENT_FEATURES = {
    FEATURE_LABELS["trend"]: "growth (% a year)",
    FEATURE_LABELS["season_sin"]: "seasonal profile, sine part (% swing)",
    FEATURE_LABELS["season_cos"]: "seasonal profile, cosine part (% swing)",
}


def _pct_a_year(g: float) -> str:
    """A log growth a year as the percent a year it stands for (``0.191`` -> ``+21.0%``)."""
    return f"{100 * math.expm1(g):+.1f}%" if math.isfinite(g) else ""


def _feature_label(feature: str) -> str:
    if feature == MEAN_COUNT_FEATURE:
        return f"{feature} (rounded)"
    return PERCENT_FEATURES.get(feature, feature)


def _balance_cell(feature: str, column: str, value: object) -> object:
    """Counts in the balance table, and logs of counts, are published through the disclosure rule."""
    if column.endswith("(std. diff.)") or not isinstance(value, int | float) or not math.isfinite(value):
        return _cell(value)
    if feature == MEAN_COUNT_FEATURE:
        return count_cell(float(value))
    if feature == FEATURE_LABELS["level"]:
        return log_count_text(float(value))
    if feature == FEATURE_LABELS["trend"]:
        return _pct_a_year(float(value))
    if feature in PERCENT_FEATURES:  # a seasonal coefficient of 0.03 on the log scale is a swing of about 3%
        return f"{100 * float(value):+.1f}%"
    return _cell(value)


def _cell(v: object) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    assert isinstance(v, SupportsFloat), f"not a number: {type(v).__name__}"
    return f"{v:,.0f}" if abs(float(v)) >= 100 else f"{float(v):.3f}"
