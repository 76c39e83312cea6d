"""Building blocks of report pages: HTML blocks that display in Jupyter, embedded figures, effects in
words' units and the estimates table. Every block is rendered from a template with autoescaping
(:mod:`evallib.reporting.templating`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.evaluation.site.volatile import WITHHELD
from evallib.methods.base.results import Estimate
from evallib.reporting.glossary import INFERENCE_ENTRIES, term_link
from evallib.reporting.templating import figure_html, render
from evallib.reporting.words import p_text
from evallib.vocabulary import CHECK_LABELS, METHOD_LABELS, TERM_LABELS, inference_label

__all__ = ["HTMLBlock", "cap", "departures", "describe_effect", "estimate_table", "figure_html", "render"]


@dataclass(frozen=True)
class HTMLBlock:
    """A piece of report HTML (made by a template); displays itself in Jupyter."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        # The notebook keeps a text/plain form beside the HTML of every displayed block; the dataclass repr
        # repeated the whole HTML there (half of an executed site notebook's bytes, saved, read and scanned
        # again at every step of a batch). A summary says what it is; the HTML form is the page.
        return f"<report section: {len(self.html):,} characters of HTML>"

    def __str__(self) -> str:
        return self.html

    def __html__(self) -> str:  # safe HTML to Jinja2 and markupsafe
        return self.html


def block(*parts: object) -> HTMLBlock:
    """Join rendered parts (Markup, or HTMLBlocks) into one block; plain strings are escaped."""
    return HTMLBlock(str(render("block.html.j2", parts=[p for p in parts if p])))


def paragraph(text: str) -> Markup:
    """A paragraph of plain text (escaped)."""
    return Markup("<p>{}</p>").format(text)


def cap(text: str) -> str:
    """Capitalise the first letter only ("A&E attendances", not "A&e attendances")."""
    return text[:1].upper() + text[1:]


def departures(ev: SiteEvaluation) -> HTMLBlock:
    """A warning listing where the run departs from the site's params file (empty when it does not)."""
    if not ev.protocol.departures:
        return HTMLBlock("")
    return HTMLBlock(str(render("departures.html.j2", departures=ev.protocol.departures)))


def _fmt(v: float, digits: int = 1, signed: bool = True) -> str:
    if not math.isfinite(v):
        return "unbounded" if v > 0 else "-unbounded"
    return f"{v:+,.{digits}f}" if signed else f"{v:,.{digits}f}"


def _pct(v: float) -> float:
    return 100 * (math.exp(v) - 1) if math.isfinite(v) else v


def describe_effect(row: Estimate, *, proportion: bool) -> tuple[str, str, str]:
    """(estimate, low, high) in words' units: percent change, percentage points, ratio or count."""
    values = (row.estimate, row.ci_low, row.ci_high)
    conv: Callable[[float], float]
    if row.scale == "log":
        conv, unit, digits, signed = _pct, "%", 1, True
    elif row.scale == "percent":
        conv, unit, digits, signed = float, "%", 1, True
    elif row.scale == "count":
        conv, unit, digits, signed = float, "", 0, True
    elif row.scale == "rate_ratio":  # a ratio of 0.9 is a rate 10% lower: shown as the percent change
        conv, unit, digits, signed = (lambda v: 100 * (v - 1)), "%", 1, True
    elif row.scale == "log_per_year":  # a difference in log growth: percent a year relative to the comparison
        conv, unit, digits, signed = _pct, "% a year", 1, True
    elif row.scale.endswith("_per_year") and (proportion or row.scale.startswith("percentage_points")):
        conv, unit, digits, signed = float, " pts a year", 1, True
    elif proportion or row.scale.startswith("percentage_points"):
        conv, unit, digits, signed = float, " pts", 1, True
    elif row.scale == "statistic":
        conv, unit, digits, signed = float, "", 2, False
    else:
        conv, unit, digits, signed = float, "", 3, True
    out = ["unbounded" if not math.isfinite(v) else _fmt(conv(v), digits, signed) + unit for v in values]
    return out[0], out[1], out[2]


def _term(term: str, period: str) -> str:
    if term.startswith("effect_at_"):
        return f"effect at {period} {term.rsplit('_', 1)[1]}"
    if term.startswith("event_time_"):
        return f"{period}s {term.rsplit('_', 1)[1]} (binned)"
    return TERM_LABELS.get(term, term.replace("_", " "))


def quantity(r: Estimate, period: str = "month") -> str:
    """What a tidy row estimates, in words."""
    for ending, words in CHECK_LABELS.items():
        if r.method.endswith(ending):
            base = r.method.removesuffix(ending)
            return f"{METHOD_LABELS.get(base, base.replace('_', ' '))}, {words}"
    if r.method.startswith(("did_callaway_santanna", "did_stacked")):  # staggered rows: the caller words the term
        return r.term
    if r.method.startswith("its"):
        return f"{METHOD_LABELS.get(r.method, r.method)}: {_term(r.term, period)}"
    if r.method == "did_event_study":
        return f"event study: {_term(r.term, 'period')}"
    return METHOD_LABELS.get(r.method, r.term.replace("_", " "))


def estimate_rows(rows: list[tuple[str, Estimate, bool]], period: str = "month") -> list[dict[str, str | Markup]]:
    out = []
    for label, r, prop in rows:
        est, lo, hi = describe_effect(r, proportion=prop)
        withheld = r.inference == WITHHELD  # a plain placebo test on a volatile site: no interval to show
        # Both ends unbounded: too few assignments for the test to reject anything (e.g. 10 matched comparators).
        interval = "any effect (too few comparison units for a bound)" if lo == hi == "unbounded" else f"{lo} to {hi}"
        out.append(
            {
                "outcome": label,
                "quantity": quantity(r, period),
                "estimate": est,
                "interval": "" if r.scale == "statistic" else "withheld" if withheld else interval,
                "p": p_text(r.p_value).replace("p = ", "").replace("p ", ""),
                "inference": term_link(inference_label(r.inference), INFERENCE_ENTRIES[r.inference])
                if r.inference in INFERENCE_ENTRIES
                else inference_label(r.inference),
                "n": f"{r.n_treated} / {r.n_control}",
            }
        )
    return out


def estimate_table(rows: list[tuple[str, Estimate, bool]], period: str = "month") -> Markup:
    """The estimates table: one row per tidy row, effects in words' units, p-values as read."""
    return render("estimates.html.j2", rows=estimate_rows(rows, period))
