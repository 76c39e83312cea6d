"""Render executed notebooks to HTML and build the static site in ``outputs/site/``.

Every page comes from the Jinja2 templates in ``templates/`` (autoescape on, one stylesheet
inlined so every page stands alone): the index (sortable, filterable and searchable with a few
lines of plain JavaScript, no network), the "how to read" page with its glossary, the downloads'
data dictionary, and each site report, whose body is the executed notebook rendered by
nbconvert's small "basic" template with code hidden (``--no-input``: ``--report-mode`` is ignored
by nbconvert 7.17). All text taken from params, data or results is HTML-escaped; absolute paths
are removed. What may be published, and the scan before the new site replaces the old one, are in
:mod:`evallib.reporting.publishing`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

from evallib.protocol import writing
from evallib.reporting.board_paper import PAPER_SUFFIX, link_papers, make_papers
from evallib.reporting.calibration_page import CalibrationFileError, calibration_context
from evallib.reporting.glossary import glossary_entries
from evallib.reporting.publishing import (
    Expected,
    SiteEntry,
    collect_sites,
    programme_verified,
    public_note,
    swap_in,
)
from evallib.reporting.results_table import (
    SCALES,
    SITE_COLUMNS,
    SITES_COLUMNS,
    TIDY_MEANINGS,
    results_frame,
    sites_frame,
    spreadsheet_safe,
)
from evallib.reporting.templating import render, stylesheet
from evallib.reporting.words import MARKERS, marker, percent, short_effect
from evallib.sources.bundled import ATTRIBUTION
from evallib.vocabulary import outcome_label


def scrub_paths(text: str, root: Path) -> str:
    """Remove absolute paths of this machine from text bound for publication.

    Only a prefix that starts a path and is followed by a separator is removed
    (``/tmp/x/report.ipynb`` becomes ``x/report.ipynb``); the words "/tmp" or "/root" in
    someone's notes, or ``/tmpfiles``, are left as written.
    """
    prefixes = {str(root.resolve()), str(root), sys.prefix, sys.base_prefix, str(Path.home()), tempfile.gettempdir()}
    for prefix in sorted((p for p in prefixes if p and p != os.sep), key=len, reverse=True):
        if (prefix := prefix.rstrip(os.sep) + os.sep) in text:  # a plain search first: the regex costs ~10 ms
            text = re.sub(r"(?<![\w./-])" + re.escape(prefix), "", text)
    return text


def _programme_page(outputs: Path, entries: list[SiteEntry]) -> Path | None:
    """The programme report, when it was made on this machine from exactly the results about to be published."""
    page_ = outputs / "programme" / "report.html"
    return page_ if page_.is_file() and programme_verified(outputs, entries) else None


def page(
    title: str,
    body: str,
    *,
    attribution: str | None = ATTRIBUTION,
    fingerprint: str | None = None,
    template: str = "page.html.j2",
    **context: Any,
) -> str:
    """A complete standalone HTML page from ``template`` (``title`` and every context value are escaped unless
    they are :class:`~markupsafe.Markup` from another template; ``body`` must be safe HTML).

    ``attribution=None`` for rendered notebooks, which carry their data attribution themselves.
    """
    html = render(
        template,
        title=title,
        body=Markup(body),
        attribution=attribution,
        fingerprint=fingerprint,
        style=stylesheet(),
        programme_link=context.pop("programme_link", False),
        calibration_link=context.pop("calibration_link", False),
        **context,
    )
    return html + "\n"


#: Tags of notebook cells left out of published pages: usage notes and exploration for JupyterLab.
UNPUBLISHED_TAGS = frozenset({"usage", "explore"})


def _empty_output(cell: Any) -> bool:
    """A code cell that showed nothing (a report section with nothing to say for this site)."""
    outputs = cell.get("outputs", [])
    for out in outputs:
        data = out.get("data", {})
        if out.get("output_type") == "stream" and out.get("text", "").strip():
            return False
        if "text/html" in data and str(data["text/html"]).strip():
            return False
        if data and "text/html" not in data:
            return False
    return True


def published_cells(cells: list[Any]) -> list[Any]:
    """The cells a published report shows: no usage or exploration cells, and no section heading whose
    section showed nothing (so a not-evaluable site says why once, in its summary).
    """
    kept = [c for c in cells if not UNPUBLISHED_TAGS & set(c.metadata.get("tags", []))]
    out = []
    for i, c in enumerate(kept):
        if c.cell_type == "code" and _empty_output(c):
            continue
        nxt = kept[i + 1] if i + 1 < len(kept) else None
        if c.cell_type == "markdown" and nxt is not None and nxt.cell_type == "code" and _empty_output(nxt):
            continue
        out.append(c)
    return out


@cache
def _exporter() -> Any:
    """One HTML exporter per process: building one compiles nbconvert's templates (half of a render)."""
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class PageExporter(HTMLExporter):
        """nbconvert's HTML exporter without its last step, which parses and re-serialises the whole page with
        BeautifulSoup (two thirds of a render) to give images without alternative text a placeholder and
        JupyterLab cells a tab stop: every figure here has its alternative text (``figure.html.j2``), and the
        basic template has no such cells (``tests/test_page_exporter.py`` checks the pages are the same).
        """

        def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> Any:
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            resources = self._init_resources(resources)
            self.register_filter(
                "highlight_code", self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
            )
            self.register_filter(
                "filter_data_type",
                WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources),
            )
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

        def _validate_preprocessor(self, nbc: Any, preprocessor: Any) -> None:
            # Re-validation after each of a dozen preprocessors (a third of a render) that only strip or reorder.
            return None

    return PageExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        anchor_link_text="",
    )


def render_report(
    notebook: Path | Any,
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
    time so that identical inputs give identical files. ``notebook`` may be the notebook already read (a
    ``NotebookNode``, whose cells are then replaced by the published ones) rather than its file.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, Path) else notebook
    nb.cells = published_cells(nb.cells)
    body, _ = _exporter().from_notebook_node(nb)
    html = page(title, body, attribution=None, fingerprint=fingerprint, template="report_page.html.j2")
    if root is not None:
        html = scrub_paths(html, root)
    writing.write_atomic(html_out, html)
    return html_out


def _caution(flag: str) -> dict[str, str]:
    """A caution for the index: its first clause (the rest is in the report and the title)."""
    short = re.split(r"[:.;] ", flag, maxsplit=1)[0].strip().rstrip(".")
    short = re.sub(r" \([^()]*\)$", "", short)  # a trailing parenthesis (a test's p-value, codes) stays in the report
    return {"short": short, "full": flag}


def index_row(e: SiteEntry) -> dict[str, Any]:
    """What the index shows for one site (every value escaped by the template)."""
    r = e.results
    answer = r.get("answer") or {}
    outcome = str(r.get("primary_outcome") or "")
    row: dict[str, Any] = {
        "site_id": e.site_id,
        "site_name": str(r.get("site_name", "")),
        "care_model": str(r.get("care_model", "")),
        "status": e.status,
        "outcome": outcome_label(outcome) if outcome else "",
        "expected": str(r.get("expected_direction", "")) if outcome else "",
        "link": f"{e.site_id}.html" if e.page is not None else "",
        "effect": "",
        "interval": "",
        "sort_effect": "",
        "marker": "",
        "marker_symbol": "",
        "marker_words": "",
        "verdict": e.status,
        "verdict_class": "status-" + e.status.replace(" ", "-"),
        "cautions": [],
        "note": public_note(e),
    }
    if e.status == "not evaluable":
        cls, _, _ = marker("not evaluable", "")
        row.update(marker=cls, verdict_class=f"verdict-{cls}")
    if e.status == "evaluated" and answer.get("estimate") is not None:
        est, interval = short_effect(answer)
        verdict = str(answer.get("robustness_verdict") or answer.get("conclusion", ""))
        cls, symbol, words = marker(verdict, str(answer.get("direction", "")))
        row.update(
            effect=est,
            interval=interval,
            sort_effect=f"{percent(float(answer['estimate']), str(answer['scale'])):.4f}",
            marker=cls,
            marker_symbol=symbol,
            marker_words=words,
            verdict=verdict,
            verdict_class=f"verdict-{cls}",  # the verdict cell's colour follows the marker: one function decides both
            cautions=[_caution(f) for f in r.get("flags") or []],
        )
    return row


INDEX_COLUMNS = (
    ("site", "Site"),
    ("care_model", "Care model"),
    ("outcome", "Outcome"),
    ("effect", "Effect"),
    ("interval", "95% interval"),
    ("verdict", "Verdict"),
    ("cautions", "Cautions"),
)


def _write(path: Path, text: str) -> None:
    writing.write_atomic(path, text)


def write_downloads(staging: Path, entries: list[SiteEntry]) -> bool:
    """``downloads/``: results.csv, results.parquet (when pyarrow is installed), sites.csv and each verified
    results.json. Returns whether the parquet file was written.
    """
    shown = [e for e in entries if e.page is not None]
    folder = staging / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    tidy = results_frame(e.results for e in shown)
    # CSVs open in spreadsheets: formula-like text is neutralised there (the parquet and JSON keep it exact).
    # CSVs open in spreadsheets: formula-like text is neutralised there (the parquet and JSON keep it exact),
    # and lines end in CRLF (RFC 4180) so that a cell holding a carriage return is quoted, never split.
    spreadsheet_safe(tidy).to_csv(folder / "results.csv", index=False, lineterminator="\r\n")
    spreadsheet_safe(sites_frame(e.results for e in shown)).to_csv(
        folder / "sites.csv", index=False, lineterminator="\r\n"
    )
    for e in shown:
        assert e.page is not None  # shown: entries with a page
        writing.copy_file(e.page.parent / "results.json", folder / f"{e.site_id}.json")
    try:
        tidy.to_parquet(folder / "results.parquet", index=False)
    except ImportError:
        return False
    return True


def build_site(
    outputs: Path,
    *,
    expected: dict[str, Expected] | None = None,
    root: Path | None = None,
    problems: list[str] | None = None,
    collected: tuple[list[SiteEntry], list[str]] | None = None,
) -> Path:
    """Write ``outputs/site/``: ``index.html``, one page per verified site report, the programme page, the
    downloads with their data dictionary, the "how to read" page, the calibration study (from the
    project's ``params/calibration.csv``, when ``root`` is given) and a board paper (PDF) per evaluated site and
    for the programme (:mod:`evallib.reporting.board_paper`; skipped with a problem line without Chromium).

    Sites are chosen by :func:`evallib.reporting.publishing.collect_sites` (``expected`` from the current
    params files: removed and draft sites are left out, stale ones shown without numbers); ``collected`` is what
    that call just returned under the same lock, nothing run since (not read again). Every page and download is
    scanned before the new site replaces the old one. Returns the index; problems found (to report, never
    published) are appended to ``problems`` when a list is given.

    Raises
    ------
    PublishError
        When a page breaks a publication rule; the previous site is left as it was.
    """
    site = outputs / "site"
    writing.check_dir(site)  # a link there is refused before anything is built
    staging = writing.fresh_dir(outputs, ".site-staging-")
    try:
        entries, found = collected if collected is not None else collect_sites(outputs, expected)
        problems = problems if problems is not None else []
        problems.extend(found)
        programme = _programme_page(outputs, entries)
        if programme is not None:
            writing.copy_file(programme, staging / "programme.html")
        elif (outputs / "programme").is_dir() and any(e.page is not None for e in entries):
            problems.append("programme: its page was not made from the results now published; left out")
        counts: dict[str, int] = {}
        for e in entries:
            if e.page is not None:
                writing.copy_file(e.page, staging / f"{e.site_id}.html")
            counts[e.status] = counts.get(e.status, 0) + 1
        papers = make_papers(staging, entries, programme=programme is not None, previous=site, problems=problems)
        link_papers(staging, papers)
        rows = [index_row(e) for e in entries]
        for row in rows:
            row["paper"] = f"{row['site_id']}{PAPER_SUFFIX}" if row["site_id"] in papers.sites else ""
        parquet = write_downloads(staging, entries)
        try:
            calibration = calibration_context(root)
        except CalibrationFileError as exc:  # an optional page: reported, never blocking the rest
            calibration = None
            problems.append(f"calibration: params/calibration.csv {exc}; page left out")
        common: dict[str, Any] = {  # template context every page shares
            "programme_link": programme is not None,
            "calibration_link": calibration is not None,
            "parquet": parquet,
            "programme_paper": papers.programme,
        }
        if calibration is not None:
            _write(
                staging / "calibration.html",
                page("Calibration study", "", template="calibration.html.j2", **calibration, **common),
            )
        _write(
            staging / "index.html",
            page(
                "New care models: site evaluations",
                "",
                template="index.html.j2",
                rows=rows,
                columns=INDEX_COLUMNS,
                summary=", ".join(f"{v} {k}" for k, v in counts.items() if v),
                care_models=sorted({r["care_model"] for r in rows if r["care_model"]}),
                statuses=sorted({r["status"] for r in rows}),
                marker_options=[(cls, words) for cls, _, words in MARKERS.values()],
                **common,
            ),
        )
        _write(
            staging / "how-to-read.html",
            page(
                "How to read these reports", "", template="how_to_read.html.j2", glossary=glossary_entries(), **common
            ),
        )
        _write(
            staging / "data-dictionary.html",
            page(
                "Downloads and data dictionary",
                "",
                template="data_dictionary.html.j2",
                sites=[e.site_id for e in entries if e.page is not None],
                results_columns=[*SITE_COLUMNS, *TIDY_MEANINGS.items()],
                sites_columns=SITES_COLUMNS,
                scales=SCALES,
                **common,
            ),
        )
    except BaseException as exc:  # nothing half-built is left behind
        writing.remove_tree(staging)
        if writing.is_fault(exc):  # a full disk, no inodes: one line naming the outputs folder and the fix
            message = writing.fault_message(exc, outputs)  # type: ignore[arg-type]
            raise writing.WriteFault(message, getattr(exc, "errno", 0) or 0) from None
        raise
    with writing.faults(outputs):  # a full disk or an immutable site/: one line naming the folder
        swap_in(staging, site, root)
    return site / "index.html"
