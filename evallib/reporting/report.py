"""A site report: its sections in reading order, for the site notebook and for Python without Jupyter.

The notebook calls these functions one per section (``report.findings(evaluation)``);
:func:`full_report` joins them into one HTML fragment.
"""

from __future__ import annotations

from html import escape

from evallib.evaluation.site import SiteEvaluation
from evallib.reporting.blocks import HTMLBlock, departures
from evallib.reporting.findings import attribution, findings, provenance_block
from evallib.reporting.robustness_section import robustness
from evallib.reporting.sections import data_coverage, did, its, programme, trends, who_and_when

__all__ = [
    "HTMLBlock",
    "attribution",
    "data_coverage",
    "departures",
    "did",
    "findings",
    "full_report",
    "its",
    "programme",
    "provenance_block",
    "robustness",
    "trends",
    "who_and_when",
]


def full_report(ev: SiteEvaluation) -> str:
    """The whole report as one HTML fragment, without Jupyter."""
    sections = [
        ("Who and when", who_and_when),
        ("Findings", findings),
        ("Data coverage", data_coverage),
        ("Trends against the comparison pool", trends),
        ("Difference-in-differences", did),
        ("Interrupted time series", its),
        ("ICS designation waves", programme),
        ("Robustness", robustness),
    ]
    body = "".join(f"<h2>{escape(title)}</h2>{fn(ev).html}" for title, fn in sections)
    return (
        f"<h1>{escape(ev.protocol.site_id)}: {escape(ev.protocol.site_name)}</h1>{departures(ev).html}{body}"
        f"<h2>Provenance</h2>{provenance_block(ev).html}{attribution().html}"
    )
