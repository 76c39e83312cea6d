"""Board papers (``reporting/board_paper.py``): a PDF of at most two A4 pages per evaluated site and for the
programme, made from the verified report page and ``results.json``, linked from the report and the index.

On one real run of V04 (a vanguard), I12 (an ICS), V45 (not evaluable) and the programme: each paper has at most
two pages (counted with pypdfium2), its text carries ``results.json``'s answer (estimate, interval, p-value, the
minimum detectable effect) and no path of this machine; each page is rendered to PNG and kept with the PDFs in
``$TMPDIR/evallib-artefacts/board-papers`` (CI keeps them as artefacts). A hostile site name is escaped in the
paper's HTML and printed as text. Without Chromium, or when it fails, the papers are skipped with one line and no
link is shown; an unchanged paper is not printed again.

Printing needs Debian's ``chromium`` (``.ci/run`` installs it); those tests are skipped without it. The skip and
failure paths run everywhere (``tests/test_pdf_chromium.py`` has the browser's own failures).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from evallib.pipeline.batch import run_batch
from evallib.reporting import board_paper
from evallib.reporting.board_paper import LINK_MARKER, PAPER_SUFFIX, PROGRAMME_PAPER, fragments, site_paper
from evallib.reporting.pdf import print_pdfs, unavailable
from evallib.reporting.publishing import SiteEntry
from evallib.reporting.static_site import build_site

from . import test_templates
from .test_runner import _project

pytestmark = pytest.mark.e2e
KEEP = Path(tempfile.gettempdir()) / "evallib-artefacts" / "board-papers"
needs_chromium = pytest.mark.skipif(unavailable() is not None, reason=f"cannot print PDFs here: {unavailable()}")
HOSTILE = "<script>alert('x')</script> & \"Trust\" <b>bold</b>"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _project(tmp_path_factory.mktemp("papers"), ["V04", "I12", "V45"], programme=True)
    assert run_batch(None, root=root, jobs=2, progress=False).exit_code == 0
    return root


def _pdf_pages(path: Path) -> list[str]:
    """The text of each page of a PDF (whitespace collapsed), and each page kept as a PNG artefact."""
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 is a test extra")
    KEEP.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, KEEP / path.name)
    doc = pdfium.PdfDocument(str(path))
    texts = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            texts.append(" ".join(page.get_textpage().get_text_range().split()))
            page.render(scale=1.5).to_pil().save(KEEP / f"{path.stem}-page{i + 1}.png")
    finally:
        doc.close()
    return texts


def _pct(log_value: float) -> str:
    """A log effect as the reports write its size: 100 (e^x - 1), one decimal, no sign."""
    return f"{abs(100 * (math.exp(log_value) - 1)):.1f}%"


@needs_chromium
@pytest.mark.parametrize("sid", ["V04", "I12"])
def test_a_site_paper_is_at_most_two_pages_with_results_json_answer(project: Path, sid: str) -> None:
    site = project / "outputs" / "site"
    results = json.loads((project / "outputs" / sid / "results.json").read_text())
    a = results["answer"]
    assert a["scale"] == "log"
    pages = _pdf_pages(site / f"{sid}{PAPER_SUFFIX}")
    assert 1 <= len(pages) <= 2
    text = " ".join(pages)
    for value in (a["estimate"], a["ci_low"], a["ci_high"]):
        assert _pct(value) in text, f"{sid}: {_pct(value)} from results.json is not in the paper"
    p = a["p_value"]
    assert (f"p = {p:.2f}" if p >= 0.01 else f"p = {p:.3f}" if p >= 0.001 else "p < 0.001") in text
    mde = f"{100 * (math.exp(a['minimum_detectable_effect']) - 1):.0f}%"
    assert f"could have detected a change of about {mde}" in text
    assert results["site_name"] in text and "Open Government Licence v3.0" in text
    assert f"{sid}.html" in text and ("Cautions" in text or "No cautions were raised" in text)
    assert str(project) not in text and tempfile.gettempdir() + "/" not in text
    html = (site / f"{sid}.html").read_text()
    assert f'href="{sid}{PAPER_SUFFIX}"' in html and LINK_MARKER not in html
    assert f'href="{sid}{PAPER_SUFFIX}"' in (site / "index.html").read_text()


@needs_chromium
def test_the_programme_paper_is_at_most_two_pages_with_the_pooled_answers(project: Path) -> None:
    site = project / "outputs" / "site"
    pages = _pdf_pages(site / PROGRAMME_PAPER)
    assert 1 <= len(pages) <= 2
    text = " ".join(pages)
    assert "The answer for each care model" in text and "NHS England's comparison" in text
    programme = (site / "programme.html").read_text()
    pooled = re.sub(r"<[^>]+>", " ", str(fragments(programme, "board-pooled")[0]))
    for cell in re.findall(r"[+-]\d+\.\d%", pooled):  # every pooled effect and interval end, as on the page
        assert cell in text
    assert 'href="programme-board-paper.pdf"' in programme
    assert 'href="programme-board-paper.pdf"' in (site / "index.html").read_text()


@needs_chromium
def test_no_paper_for_a_site_that_could_not_be_evaluated(project: Path) -> None:
    site = project / "outputs" / "site"
    assert not (site / f"V45{PAPER_SUFFIX}").exists()
    assert "board-paper" not in (site / "V45.html").read_text().replace(LINK_MARKER, "")
    index = (site / "index.html").read_text()
    assert "V45-board-paper" not in index


@needs_chromium
def test_a_hostile_site_name_is_escaped_in_the_paper_and_printed_as_text(project: Path, tmp_path: Path) -> None:
    out = project / "outputs"
    results = json.loads((out / "V04" / "results.json").read_text())
    results["site_name"] = HOSTILE
    entry = SiteEntry(site_id="V04", status="evaluated", results=results, page=out / "V04" / "report.html")
    html = site_paper(entry)
    assert html is not None
    assert "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;Trust&#34; &lt;b&gt;bold&lt;/b&gt;" in html
    pdf = tmp_path / f"hostile{PAPER_SUFFIX}"
    print_pdfs([(html, pdf)])
    assert HOSTILE in " ".join(_pdf_pages(pdf))


def test_a_hostile_name_in_a_page_cannot_pass_for_a_paper_part() -> None:
    """Names are escaped in pages, so text that looks like a summary or figure is never taken as one."""
    page = (
        '<h1>&lt;section class="summary"&gt;fake&lt;/section&gt;</h1>'
        '<section aria-label="summary" class="summary"><p>real <b>one</b></p><section>inner</section></section>'
        '<p>&lt;img class="primary-trend" src="x"&gt;</p><img alt="a" class="plot primary-trend" src="data:,">'
    )
    assert [str(f) for f in fragments(page, "summary")] == [
        '<section aria-label="summary" class="summary"><p>real <b>one</b></p><section>inner</section></section>'
    ]
    assert [str(f) for f in fragments(page, "primary-trend")] == [
        '<img alt="a" class="plot primary-trend" src="data:,">'
    ]


def _published_copy(project: Path, tmp_path: Path) -> Path:
    out = tmp_path / "outputs"
    shutil.copytree(project / "outputs", out, symlinks=True)
    return out


def test_without_chromium_the_papers_are_skipped_with_one_line_and_no_link(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _published_copy(project, tmp_path)
    monkeypatch.setenv("EVALLIB_CHROMIUM", "")
    problems: list[str] = []
    build_site(out, root=project, problems=problems)
    skipped = [p for p in problems if p.startswith("board papers skipped")]
    assert len(skipped) == 1 and "\n" not in skipped[0] and "Chromium" in skipped[0]
    site = out / "site"
    assert not list(site.glob("*.pdf")) and not (site / "papers").exists()
    for page in ("index.html", "V04.html", "I12.html", "programme.html"):
        assert "board-paper.pdf" not in (site / page).read_text()


def test_a_failing_chromium_skips_the_papers_and_publishes_the_rest(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _published_copy(project, tmp_path)
    monkeypatch.setattr(board_paper, "unavailable", lambda: None)

    def fail(jobs: list[tuple[str, Path]]) -> None:
        for _, pdf in jobs[:1]:
            pdf.write_bytes(b"%PDF half")  # a partial file is removed
        raise RuntimeError("Chromium failed: crashed")

    monkeypatch.setattr(board_paper, "print_pdfs", fail)
    problems: list[str] = []
    build_site(out, root=project, problems=problems)
    assert "board papers skipped: Chromium failed: crashed" in problems
    site = out / "site"
    assert not list(site.glob("*.pdf")) and "board-paper.pdf" not in (site / "index.html").read_text()
    assert (site / "V04.html").is_file()


def test_an_unchanged_paper_is_not_printed_again(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _published_copy(project, tmp_path)
    monkeypatch.setattr(board_paper, "unavailable", lambda: None)
    printed: list[list[str]] = []

    def fake(jobs: list[tuple[str, Path]]) -> None:
        printed.append(sorted(p.name for _, p in jobs))
        for _, pdf in jobs:
            pdf.write_bytes(b"%PDF-1.4 stand-in")

    monkeypatch.setattr(board_paper, "print_pdfs", fake)
    shutil.rmtree(out / "site")
    build_site(out, root=project)
    build_site(out, root=project)
    assert printed == [sorted([f"V04{PAPER_SUFFIX}", f"I12{PAPER_SUFFIX}", PROGRAMME_PAPER]), []]
    assert (out / "site" / f"V04{PAPER_SUFFIX}").read_bytes() == b"%PDF-1.4 stand-in"


@needs_chromium
def test_a_planted_link_in_the_previous_site_is_never_copied_into_the_papers(project: Path, tmp_path: Path) -> None:
    """An unchanged paper's PDF is reused from the previous site only when it is a plain file, never via a link."""
    out = _published_copy(project, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t-TOKEN-value")
    pdf = out / "site" / f"V04{PAPER_SUFFIX}"
    pdf.unlink()
    pdf.symlink_to(secret)
    build_site(out, root=project)
    assert b"s3cr3t" not in (out / "site" / f"V04{PAPER_SUFFIX}").read_bytes()
    assert not (out / "site" / f"V04{PAPER_SUFFIX}").is_symlink()


hostile_site = test_templates.hostile_site  # the site whose every name is hostile markup, with its papers


@needs_chromium
def test_every_hostile_name_is_escaped_in_a_published_paper(hostile_site: Path) -> None:
    html = (hostile_site / "papers" / "H01.html").read_text()
    assert "<img src=x" not in html
    for field in ("Site ", "credit "):  # the name and the evaluator's attribution
        assert f"{field}{test_templates.ESCAPED}" in html
    text = " ".join(_pdf_pages(hostile_site / f"H01{PAPER_SUFFIX}"))
    assert f"Site {test_templates.HOSTILE}" in text and f"credit {test_templates.HOSTILE}" in text
    assert "NHS England" not in text  # the evaluator's own data is credited, not NHS England's
