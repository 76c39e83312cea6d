"""Board papers: each evaluated site, and the programme, in at most two A4 pages (PDF) for a board or committee.

A paper says nothing the report does not: its parts are taken from the verified report page itself (the
summary box: the question, the answer in words with its interval, the hoped-for direction, the verdict and
every caution; the primary outcome's trend figure, or the note that withholds it; the data attribution), and
the design's minimum detectable effect is put in words by the same function the summary uses, from the same
``results.json``. So the numbers, the words and the disclosure control are the report's. The programme paper
takes the programme page's overview, pooled answer per care model and NHS England's comparison.

Each paper's HTML is kept in the published site (``papers/<id>.html``), so it is scanned with every page before
the site is replaced; the PDFs beside the reports (``<site>-board-paper.pdf``, ``programme-board-paper.pdf``) are
printed from it in one Chromium session (:mod:`evallib.reporting.pdf`), reusing the previous PDF when a paper's
HTML is unchanged. Without Chromium the papers are skipped with a one-line message and no link is shown.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

from markupsafe import Markup

from evallib.reporting.blocks import cap
from evallib.reporting.pdf import print_pdfs, unavailable
from evallib.reporting.publishing import SiteEntry
from evallib.reporting.sections import PRIMARY_TREND
from evallib.reporting.templating import environment, render, stylesheet
from evallib.reporting.words import is_points, mde_words
from evallib.sources.bundled import ATTRIBUTION

PAPER_SUFFIX = "-board-paper.pdf"
PROGRAMME_PAPER = "programme-board-paper.pdf"
#: Where each paper's HTML is kept in the published site.
SOURCES = "papers"
#: Left in every report page by its template; replaced by a link to the paper when one is published.
LINK_MARKER = "<!--board-paper-->"
_VOID = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


class _Finder(HTMLParser):
    """Outer HTML of every element carrying one of some classes, by position in the page, in one pass (an element
    inside one already found is part of it, not found again).
    """

    def __init__(self, html: str, classes: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=False)
        self.html, self.classes = html, classes
        self.found: dict[str, list[Markup]] = {c: [] for c in classes}
        self._lines = [0]
        for line in html.splitlines(keepends=True):
            self._lines.append(self._lines[-1] + len(line))
        self._open: tuple[str, int, int, str] | None = None  # tag, depth, start offset, class

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._lines[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._open is not None:
            name, depth, start, cls = self._open
            if tag == name:
                self._open = (name, depth + 1, start, cls)
            return
        classes = next((v or "" for k, v in attrs if k == "class"), "").split()
        wanted = next((c for c in self.classes if c in classes), None)
        if wanted is not None:
            start = self._offset()
            if tag in _VOID:
                self.found[wanted].append(Markup(self.html[start : start + len(self.get_starttag_text() or "")]))
            else:
                self._open = (tag, 1, start, wanted)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._open is None:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._open is None or tag != self._open[0]:
            return
        name, depth, start, cls = self._open
        if depth > 1:
            self._open = (name, depth - 1, start, cls)
            return
        end = self.html.index(">", self._offset()) + 1
        self.found[cls].append(Markup(self.html[start:end]))
        self._open = None


def find_classes(html: str, *classes: str) -> dict[str, list[Markup]]:
    """The outer HTML of each element with each class, in a page evallib made (already escaped: kept as is)."""
    finder = _Finder(html, classes)
    finder.feed(html)
    finder.close()
    return finder.found


def fragments(html: str, cls: str) -> list[Markup]:
    """The outer HTML of each element with class ``cls`` (see :func:`find_classes`)."""
    return find_classes(html, cls)[cls]


@dataclass(frozen=True)
class Part:
    """One headed part of a paper: sentences (escaped) and, optionally, HTML from the verified page."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    html: Markup | None = None


def _paper(
    title: str, subtitle: str, parts: list[Part], attributions: list[Markup], report: str, **extra: object
) -> str:
    css = environment().loader.get_source(environment(), "board_paper.css")[0]  # type: ignore[union-attr]
    return str(
        render(
            "board_paper.html.j2",
            title=title,
            subtitle=subtitle,
            blocks=parts,
            attributions=attributions or [render("attribution.html.j2", attributions=[ATTRIBUTION])],
            report=report,
            style=stylesheet(),
            paper_style=Markup(css),
            summary=extra.get("summary"),
        )
    )


def _month(value: object) -> str:
    try:
        return datetime.strptime(str(value), "%Y-%m").strftime("%B %Y")
    except ValueError:
        pass
    try:  # weekly data: the start is a Monday, "2017-07-03" -> "3 July 2017"
        day = datetime.strptime(str(value), "%Y-%m-%d")
        return f"{day.day} {day:%B %Y}"
    except ValueError:
        return str(value)


def site_paper(entry: SiteEntry) -> str | None:
    """A site's board paper (HTML), from its verified report page and results; None when it has no answer."""
    r, answer = entry.results, entry.results.get("answer")
    if entry.status != "evaluated" or entry.page is None or not isinstance(answer, dict):
        return None
    found = find_classes(entry.page.read_text(encoding="utf-8"), "summary", PRIMARY_TREND, "attribution")
    summary = found["summary"]
    if not summary:
        return None  # a page made before summaries were published whole
    start = _month(r.get("intervention_start", ""))
    by = "week by week" if len(str(r.get("intervention_start", ""))) == len("2017-07-03") else "month by month"
    parts = []
    figure = found[PRIMARY_TREND]
    if figure:
        parts.append(
            Part(
                "The site against its comparison",
                [
                    f"The site's primary outcome against its comparison pool, {by}; the vertical line marks "
                    f"the start ({start})."
                ],
                figure[0],
            )
        )
    scale = str(answer.get("scale", ""))
    mde = mde_words(answer.get("minimum_detectable_effect"), "percentage_points" if is_points(scale) else "log")
    if mde:
        why = (
            "A real change smaller than that could go unseen, so 'no clear effect' is not evidence that the care "
            "model did nothing."
            if answer.get("conclusion") == "no clear effect"
            else "Changes of that size or larger were likely to be found; the interval above says how large this "
            "one may be."
        )
        parts.append(Part("What the design could have detected", [f"{cap(mde)}. {why}"]))
    sid = entry.site_id
    return _paper(
        str(r.get("site_name") or sid),
        f"{sid} \u00b7 {r.get('care_model', '')} \u00b7 started {start}",
        parts,
        found["attribution"],
        f"Every method, check and figure behind this paper is in the full report, {sid}.html on the published "
        f"site, with the site's results in downloads/{sid}.json.",
        # the paper's HTML lives in papers/: the summary's glossary links climb one folder
        summary=Markup(str(summary[0]).replace('href="how-to-read.html#', 'href="../how-to-read.html#')),
    )


def programme_paper(page: Path) -> str | None:
    """The programme's board paper (HTML) from its verified page; None when the page has none of its parts."""
    html = page.read_text(encoding="utf-8")
    found = find_classes(html, "board-overview", "board-pooled", "board-nhse", "attribution")
    if not found["board-pooled"] and not found["board-nhse"]:
        return None
    parts = [
        Part(
            "The question",
            [
                "Did emergency admissions of the new care models' sites change, relative to comparable areas, after "
                "the care models started? Each site was evaluated against its own comparison areas following a "
                "protocol written before results were seen; here the sites' answers are pooled by care model."
            ],
        )
    ]
    for cls, heading in (
        ("board-overview", "The sites"),
        ("board-pooled", "The answer for each care model"),
        ("board-nhse", "NHS England's comparison"),
    ):
        if found[cls]:
            parts.append(Part(heading, [], found[cls][0]))
    return _paper(
        "New care models: the programme",
        "every evaluated site, pooled by care model",
        parts,
        found["attribution"],
        "Every site's effect (a forest plot), growth since the baseline year and each site's report are on the "
        "published site: programme.html and index.html.",
    )


@dataclass(frozen=True)
class Papers:
    """What was published: the sites with a paper, and whether the programme has one."""

    sites: frozenset[str] = frozenset()
    programme: bool = False


def _plain_file(path: Path) -> bool:
    """A regular file reached through no link (a planted link must never bring another file into the site)."""
    try:
        return all(not p.is_symlink() for p in (path, *path.parents[:2])) and stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def make_papers(
    staging: Path, entries: list[SiteEntry], *, programme: bool, previous: Path, problems: list[str]
) -> Papers:
    """Write each paper's HTML to ``staging/papers/`` and print the PDFs beside the pages (one browser session).

    ``previous`` is the site being replaced: an unchanged paper's PDF is copied from it rather than printed.
    Never raises for a missing or failing Chromium: the papers are skipped and one line goes to ``problems``.
    """
    reason = unavailable()
    if reason is not None:
        problems.append(f"board papers skipped: {reason}")
        return Papers()
    wanted: list[tuple[str, str, str]] = []  # key, pdf name, html
    for e in entries:
        html = site_paper(e)
        if html is not None:
            wanted.append((e.site_id, f"{e.site_id}{PAPER_SUFFIX}", html))
    if programme:
        html = programme_paper(staging / "programme.html")
        if html is not None:
            wanted.append(("programme", PROGRAMME_PAPER, html))
    folder = staging / SOURCES
    folder.mkdir(exist_ok=True)
    jobs = []
    for key, name, html in wanted:
        (folder / f"{key}.html").write_text(html, encoding="utf-8")
        old_html, old_pdf = previous / SOURCES / f"{key}.html", previous / name
        if _plain_file(old_pdf) and _plain_file(old_html) and old_html.read_text(encoding="utf-8") == html:
            shutil.copyfile(old_pdf, staging / name)
        else:
            jobs.append((html, staging / name))
    try:
        print_pdfs(jobs)
    except RuntimeError as exc:
        problems.append(f"board papers skipped: {exc}")
        shutil.rmtree(folder, ignore_errors=True)
        for _, name, _ in wanted:
            (staging / name).unlink(missing_ok=True)
        return Papers()
    return Papers(frozenset(k for k, _, _ in wanted if k != "programme"), any(k == "programme" for k, _, _ in wanted))


def link_papers(staging: Path, papers: Papers) -> None:
    """Put a link to each published paper at the top of its report (the marker its template left there)."""
    pages = [(f"{sid}.html", f"{sid}{PAPER_SUFFIX}") for sid in papers.sites]
    if papers.programme:
        pages.append(("programme.html", PROGRAMME_PAPER))
    for page_name, pdf in pages:
        page = staging / page_name
        html = page.read_text(encoding="utf-8")
        page.write_text(html.replace(LINK_MARKER, str(render("board_paper_link.html.j2", href=pdf)), 1), "utf-8")
