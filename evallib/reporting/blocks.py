"""Building blocks of report pages: HTML blocks that display in Jupyter, embedded figures, effects in
words' units and the estimates table. Every string from params or data is escaped here or by the caller."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from html import escape

from matplotlib.figure import Figure

from evallib.evaluation.site import SiteEvaluation
from evallib.methods.results import Estimate


@dataclass(frozen=True)
class HTMLBlock:
    """A piece of report HTML; displays itself in Jupyter."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def figure_html(fig: Figure, alt: str) -> str:
    """Embed a figure as a PNG image (PNG, not SVG: smaller pages, stable nbval)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{data}"/>'


def cap(text: str) -> str:
    """Capitalise the first letter only ("A&E attendances", not "A&e attendances")."""
    return text[:1].upper() + text[1:]


def paragraph(text: str) -> str:
    return f"<p>{text}</p>"


def departures(ev: SiteEvaluation) -> HTMLBlock:
    """A warning listing where the run departs from the site's params file (empty when it does not)."""
    if not ev.protocol.departures:
        return HTMLBlock("")
    items = "".join(f"<li>{escape(d)}</li>" for d in ev.protocol.departures)
    return HTMLBlock(
        "<div class='not-evaluable departures'><strong>Exploration, not the protocol:</strong> these parameters "
        f"depart from the site's params file, so these results are never published.<ul>{items}</ul></div>"
    )


def not_evaluable(ev: SiteEvaluation) -> HTMLBlock:
    return HTMLBlock(f'<div class="not-evaluable"><strong>Not evaluable:</strong> {escape(ev.reason)}.</div>')


def _fmt(v: float, digits: int = 1, signed: bool = True) -> str:
    if not math.isfinite(v):
        return "unbounded" if v > 0 else "-unbounded"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _pct(v: float) -> float:
    return 100 * (math.exp(v) - 1) if math.isfinite(v) else v


def describe_effect(row: Estimate, *, proportion: bool) -> tuple[str, str, str]:
    """(estimate, low, high) in words' units: percent change, percentage points, ratio or count."""
    values = (row.estimate, row.ci_low, row.ci_high)
    if row.scale == "log":
        conv, unit, digits, signed = _pct, "%", 1, True
    elif row.scale == "percent":
        conv, unit, digits, signed = float, "%", 1, True
    elif row.scale == "count":
        conv, unit, digits, signed = float, "", 0, True
    elif row.scale == "rate_ratio":
        conv, unit, digits, signed = float, "", 3, False
    elif row.scale == "log_per_year":
        conv, unit, digits, signed = (lambda v: 100 * v), " points", 1, True
    elif proportion or row.scale.startswith("percentage_points"):
        conv, unit, digits, signed = float, "", 1, True
    else:
        conv, unit, digits, signed = float, "", 3, True
    out = ["unbounded" if not math.isfinite(v) else _fmt(conv(v), digits, signed) + unit for v in values]
    return out[0], out[1], out[2]


_QUANTITY = {
    "did_twfe_placebo_in_time": "placebo in time (fake start)",
    "did_twfe_matched": "DiD, 10 matched comparators",
    "synthetic_control_outcome": "synthetic control (mean gap)",
    "synthetic_control_nested": "synthetic control (mean gap)",
    "its_controlled_difference": "controlled ITS (model-based)",
    "its_controlled_two_group": "controlled ITS (two groups)",
    "its_controlled_placebo": "controlled ITS",
    "its_arima": "ITS, ARIMA errors",
    "its_gls_ar1": "own series ITS (approximate)",
    "did_synthetic": "synthetic difference-in-differences",
    "did_twfe": "difference-in-differences",
    "did_poisson_fe": "rate ratio (Poisson)",
    "did_pretrend": "pre-trend difference per year",
    "its_segmented": "ITS",
    "its_poisson": "ITS (Poisson)",
}


def _quantity(r: Estimate) -> str:
    if r.method.startswith("did_callaway_santanna"):
        return r.term
    if r.method.startswith("its"):
        term = r.term.replace("effect_at_", "effect at month ").replace("_", " ")
        return f"{_QUANTITY.get(r.method, r.method)}: {term}"
    return _QUANTITY.get(r.method, r.term.replace("_", " "))


def estimate_table(rows: list[tuple[str, Estimate, bool]]) -> str:
    head = "<tr><th>Outcome</th><th>Quantity</th><th>Estimate</th><th>95% interval</th><th>p-value</th><th>Inference</th><th>Treated / comparison</th></tr>"
    body = []
    for label, r, prop in rows:
        est, lo, hi = describe_effect(r, proportion=prop)
        body.append(
            f"<tr><td>{escape(label)}</td><td>{escape(_quantity(r))}</td><td>{escape(est)}</td>"
            f"<td>{escape(lo)} to {escape(hi)}</td><td>{r.p_value:.3f}</td><td>{escape(r.inference.replace('_', ' '))}</td>"
            f"<td>{r.n_treated} / {r.n_control}</td></tr>"
        )
    return f"<table class='estimates'>{head}{''.join(body)}</table>"
