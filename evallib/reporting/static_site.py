"""Render executed notebooks to HTML and build the static site in ``outputs/site/``.

Pages use nbconvert's small "basic" template with code hidden (``--no-input``:
``--report-mode`` is ignored by nbconvert 7.17) inside one page template with
inline CSS, so every page stands alone and links never break. All text taken
from params, data or results is HTML-escaped; absolute paths are removed. What
may be published, and the scan before the new site replaces the old one, are in
:mod:`evallib.reporting.publishing`.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from evallib.reporting.publishing import (
    FINGERPRINT_META,
    Expected,
    SiteEntry,
    collect_sites,
    inputs_fingerprint,
    public_note,
    read_json,
    swap_in,
)
from evallib.sources.bundled import ATTRIBUTION

STYLE = """
body{font-family:Arial,Helvetica,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#212b32;line-height:1.45}
h1{color:#005eb8}h2{border-bottom:2px solid #005eb8;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #d8dde0;padding:.3em .55em;text-align:left;vertical-align:top}
th{background:#f0f4f5}table.facts th{width:16em}img.plot{max-width:100%;display:block;margin:.8em 0}
.not-evaluable{background:#fff9c4;border-left:6px solid #ffb81c;padding:.6em 1em}.flags li{color:#8a1538}
.attribution{font-size:.85em;color:#4c6272;border-top:1px solid #d8dde0;padding-top:.6em;margin-top:2em}
.codes{font-family:monospace;font-size:.85em}.status-failed{color:#d5281b;font-weight:bold}
.status-not-evaluable{color:#7a5b00}.status-evaluated{color:#007f3b}
pre{white-space:pre-wrap;font-size:.8em;background:#f7f7f7;padding:.5em}
"""


def scrub_paths(text: str, root: Path) -> str:
    """Remove absolute paths of this machine from text bound for publication.

    Only a prefix that starts a path and is followed by a separator is removed
    (``/tmp/x/report.ipynb`` becomes ``x/report.ipynb``); the words "/tmp" or "/root" in
    someone's notes, or ``/tmpfiles``, are left as written.
    """
    prefixes = {str(root.resolve()), str(root), sys.prefix, sys.base_prefix, str(Path.home()), tempfile.gettempdir()}
    for prefix in sorted((p for p in prefixes if p and p != os.sep), key=len, reverse=True):
        text = re.sub(r"(?<![\w./-])" + re.escape(prefix.rstrip(os.sep) + os.sep), "", text)
    return text


def page(title: str, body: str, *, attribution: bool = True, fingerprint: str | None = None) -> str:
    """A complete standalone HTML page (``title`` is escaped here; ``body`` must be safe HTML).

    ``attribution=False`` for rendered notebooks, which carry the data attribution themselves.
    """
    footer = f"<p class='attribution'>{escape(ATTRIBUTION)}</p>" if attribution else ""
    meta = f"<meta name='{FINGERPRINT_META}' content='{escape(fingerprint)}'>" if fingerprint else ""
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>{meta}"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}{footer}</body></html>\n"
    )


def render_report(
    notebook: Path,
    html_out: Path,
    *,
    title: str,
    root: Path | None = None,
    generated_at: str | None = None,
    fingerprint: str | None = None,
) -> Path:
    """Render an executed notebook to a standalone HTML page with code hidden.

    ``fingerprint`` (of the results the notebook wrote) goes into the page's ``<meta>``, so that
    publishing can check the page shows the numbers in ``results.json``. results.json carries no
    time so that identical inputs give identical files.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    # The notebook's usage note is for evaluators in JupyterLab, not for readers of the report.
    nb.cells = [c for c in nb.cells if "usage" not in c.metadata.get("tags", [])]
    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        anchor_link_text="",
    )
    body, _ = exporter.from_notebook_node(nb)
    html = page(
        title,
        f"<p><a href='index.html'>&larr; all sites</a></p><h1>{escape(title)}</h1>{body}",
        attribution=False,
        fingerprint=fingerprint,
    )
    if root is not None:
        html = scrub_paths(html, root)
    tmp = html_out.with_name(f".{html_out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(html_out)
    return html_out


def _headline(results: dict[str, Any]) -> tuple[str, str, str]:
    """(estimate, interval, p) text for the site's answer: its protocol's primary estimate."""
    r = results.get("answer")
    if not r:
        return "", "", ""

    def fmt(v: float | None) -> str:
        if v is None:
            return "unbounded"
        if r["scale"] == "log":
            return f"{100 * (math.exp(v) - 1):+.1f}%"
        if r["scale"] == "rate_ratio":
            return f"{v:.3f}"
        if r["scale"] == "percent":
            return f"{v:+.1f}%"
        return f"{v:+.2f}"

    p = r.get("p_value")
    return fmt(r["estimate"]), f"{fmt(r['ci_low'])} to {fmt(r['ci_high'])}", "" if p is None else f"{p:.2f}"


def _programme_page(outputs: Path, entries: list[SiteEntry]) -> Path | None:
    """The programme report, when it was made from exactly the results about to be published."""
    record = read_json(outputs / "programme" / "run.json")
    page_ = outputs / "programme" / "report.html"
    if record is None or not page_.is_file() or record.get("inputs") != inputs_fingerprint(entries):
        return None
    return page_


def build_site(
    outputs: Path,
    *,
    expected: dict[str, Expected] | None = None,
    root: Path | None = None,
    problems: list[str] | None = None,
) -> Path:
    """Write ``outputs/site/``: ``index.html``, one page per verified site report and the programme page.

    Sites are chosen by :func:`evallib.reporting.publishing.collect_sites` (``expected`` from the current
    params files: removed and draft sites are left out, stale ones shown without numbers). Every page is
    scanned before the new site replaces the old one. Returns the index; problems found (to report, never
    published) are appended to ``problems`` when a list is given.

    Raises
    ------
    PublishError
        When a page breaks a publication rule; the previous site is left as it was.
    """
    site = outputs / "site"
    staging = outputs / f".site-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    entries, found = collect_sites(outputs, expected)
    problems = problems if problems is not None else []
    problems.extend(found)
    programme_link = ""
    programme = _programme_page(outputs, entries)
    if programme is not None:
        shutil.copyfile(programme, staging / "programme.html")
        programme_link = (
            "<p class='front'><a href='programme.html'><strong>Programme summary</strong></a>: every site's effect "
            "by care model, pooled effects and growth against comparison areas (start here).</p>"
        )
    elif (outputs / "programme").is_dir() and any(e.page is not None for e in entries):
        problems.append("programme: its page was not made from the results now published; left out")
    body_rows = []
    counts: dict[str, int] = {}
    for e in entries:
        sid, r = e.site_id, e.results
        if e.page is not None:
            shutil.copyfile(e.page, staging / f"{sid}.html")
        counts[e.status] = counts.get(e.status, 0) + 1
        est, ci, p = _headline(r) if e.status in ("evaluated",) else ("", "", "")
        link = f"<a href='{escape(sid)}.html'>report</a>" if e.page is not None else ""
        body_rows.append(
            "<tr>"
            f"<td>{escape(sid)}</td><td>{escape(str(r.get('site_name', '')))}</td>"
            f"<td>{escape(str(r.get('care_model', '')))}</td>"
            f"<td class='status-{e.status.replace(' ', '-')}'>{escape(e.status)}</td>"
            f"<td>{escape(est)}</td><td>{escape(ci)}</td><td>{escape(p)}</td><td>{escape(public_note(e))}</td>"
            f"<td>{link}</td></tr>"
        )
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    body = (
        "<h1>New care models: site evaluations</h1>"
        "<p>Each New Care Models vanguard (2015) and Integrated Care System, evaluated against comparison areas on "
        "NHS England data (emergency admissions by commissioner, A&amp;E attendances by trust), following a protocol "
        "written before the results were seen. The headline is the "
        "difference-in-differences estimate for the site's primary outcome (percent change relative to the "
        "comparison areas, or percentage points), with its 95% interval and placebo-in-space p-value. "
        "Most sites are one or a few CCGs or trusts, so intervals are wide: read the interval, not just the estimate.</p>"
        f"{programme_link}<p><strong>{escape(summary)}</strong></p>"
        "<table class='index'><tr><th>Site</th><th>Name</th><th>Care model</th><th>Status</th><th>Estimate</th>"
        "<th>95% interval</th><th>p</th><th>Notes</th><th>Report</th></tr>" + "".join(body_rows) + "</table>"
    )
    (staging / "index.html").write_text(page("New care models: site evaluations", body), encoding="utf-8")
    swap_in(staging, site, root)
    return site / "index.html"
