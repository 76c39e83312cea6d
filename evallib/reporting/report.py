"""A site report: its sections in reading order, for the site notebook and for Python without Jupyter.

The notebook calls these functions one per section (``report.findings(evaluation)``);
:func:`full_report` joins them into one HTML fragment. The summary box and the table of
contents come first; a section with nothing to say for a site (every technical section of a
site that could not be evaluated) is empty, and the published page leaves out its heading.
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.reporting.blocks import HTMLBlock, departures, render
from evallib.reporting.findings import attribution, findings, provenance_block, summary
from evallib.reporting.robustness_section import robustness
from evallib.reporting.sections import data_coverage, did, its, programme, trends, who_and_when
from evallib.reporting.staggered_section import staggered

__all__ = [
    "HTMLBlock",
    "SECTIONS",
    "attribution",
    "contents",
    "data_coverage",
    "departures",
    "did",
    "findings",
    "full_report",
    "its",
    "programme",
    "provenance_block",
    "robustness",
    "staggered",
    "summary",
    "trends",
    "who_and_when",
]

#: The sections after the summary, in reading order: (heading in the notebook, function).
SECTIONS: tuple[tuple[str, Callable[[SiteEvaluation], HTMLBlock]], ...] = (
    ("Findings", findings),
    ("Staggered starts", staggered),
    ("Who and when", who_and_when),
    ("Data coverage", data_coverage),
    ("Trends against the comparison pool", trends),
    ("Difference-in-differences", did),
    ("Interrupted time series", its),
    ("Robustness", robustness),
    ("ICS designation waves", programme),
    ("Provenance", provenance_block),
)


def anchor(title: str) -> str:
    """The id nbconvert gives a notebook heading ("Who and when" -> "Who-and-when")."""
    return title.replace(" ", "-")


def contents(ev: SiteEvaluation) -> HTMLBlock:
    """A table of contents of the sections this site's report shows (none for a site not evaluated)."""
    if not ev.evaluable:
        return HTMLBlock("")
    shown = [
        (anchor(t), t)
        for t, _ in SECTIONS
        if (t != "ICS designation waves" or ev.protocol.site_type == "ICS")
        and (t != "Staggered starts" or ev.staggered is not None)
    ]
    return HTMLBlock(str(render("contents.html.j2", sections=shown)))


def full_report(ev: SiteEvaluation) -> str:
    """The whole report as one HTML fragment, without Jupyter (the published page shows the same blocks)."""
    parts = [departures(ev).html, summary(ev).html, contents(ev).html]
    for title, fn in SECTIONS:
        html = fn(ev).html
        if html.strip():
            parts.append(str(Markup('<h2 id="{}">{}</h2>').format(anchor(title), title)) + html)
    title = Markup("<h1>{}: {}</h1>").format(ev.protocol.site_id, ev.protocol.site_name)
    return str(title) + "".join(parts) + attribution(ev).html
