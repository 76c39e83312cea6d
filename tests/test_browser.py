"""The published site in headless Chromium, at a phone's 390x844 and a desktop's 1280x800.

On the index, the programme page, an evaluated vanguard (V04), an evaluated ICS (I12) and a site that
could not be evaluated (V45): no horizontal page scroll; the summary's effect sentence (and the programme
page's pooled answer per care model) inside the first viewport at 1280x800; every image loaded and its labels at least 10 px; no console errors;
contents links that land; sorting, filtering and searching the index change the visible rows; the
CSV download parses and matches ``results.json``; a report prints to A4. Screenshots and the PDF
are kept in ``$TMPDIR/evallib-screenshots`` (CI keeps them as artefacts).

Needs Debian's ``chromium`` (``.ci/run`` installs it) and pip's ``playwright`` (a test dependency; it
drives ``/usr/bin/chromium``: ``playwright install`` is never run); skipped with a reason where absent.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from evallib.pipeline.batch import run_batch

from .test_runner import _project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="pip's playwright is not installed (a test extra)")
VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 800)}
PAGES = ("index.html", "programme.html", "V04.html", "I12.html", "V45.html")
KEEP = Path(tempfile.gettempdir()) / "evallib-screenshots"
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _project(tmp_path_factory.mktemp("browser"), ["V04", "I12", "V45"], programme=True)
    assert run_batch(None, root=root, progress=False).exit_code == 0
    KEEP.mkdir(exist_ok=True)
    return root / "outputs" / "site"


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _open(browser, page_file: Path, viewport: tuple[int, int]):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def _svg_scale(src: str) -> tuple[float, float]:
    """(width in SVG units, smallest font size in SVG units) of an embedded matplotlib SVG."""
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    width = float(re.search(r'<svg[^>]*width="([0-9.]+)pt"', svg).group(1))
    sizes = [float(s) for s in re.findall(r"font(?:-size)?:\s*(?:[a-z]+ )*([0-9.]+)px", svg)]
    return width, min(sizes)


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_pages_fit_the_screen_with_images_loaded_labels_readable_and_no_errors(
    site: Path, browser, name: str, device: str
) -> None:
    page, problems = _open(browser, site / name, VIEWPORTS[device])
    shot = KEEP / f"{Path(name).stem}-{device}.png"
    page.screenshot(path=str(shot), full_page=True)
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.clientWidth, i.getAttribute('src')])"
    )
    for loaded, shown, src in images:
        assert loaded, f"{name}: an image did not load"
        assert shown <= width
        if src.startswith("data:image/svg+xml"):
            svg_width, font = _svg_scale(src)
            assert font * shown / svg_width >= 10, f"{name}: labels of {font * shown / svg_width:.1f} px at {device}"
    for href in page.evaluate("Array.from(document.links).map(a => a.getAttribute('href'))"):
        target = href.split("#")[0]
        if target and "://" not in target:
            assert (site / target).is_file(), f"{name}: broken link {href}"
    for href in page.evaluate("Array.from(document.querySelectorAll('nav.contents a')).map(a => a.hash.slice(1))"):
        assert page.evaluate(f"document.getElementById({json.dumps(href)}) !== null"), f"{name}: #{href} missing"
    assert problems == [], f"{name} at {device}: {problems}"
    page.context.close()


@pytest.mark.parametrize(
    ("name", "selector"),
    [
        ("V04.html", ".summary .effect"),
        ("I12.html", ".summary .effect"),
        ("V45.html", ".summary .not-evaluable"),
        ("programme.html", ".pooled-answer"),  # the programme's answer per care model, in words, first
    ],
)
def test_the_summary_is_read_without_scrolling_on_a_desktop(site: Path, browser, name: str, selector: str) -> None:
    page, _ = _open(browser, site / name, VIEWPORTS["desktop"])
    box = page.locator(selector).bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800, f"{name}: the summary ends at {box}"
    page.context.close()


def test_the_index_sorts_filters_and_searches(site: Path, browser) -> None:
    html = (site / "index.html").read_text()
    assert (
        "<script src" not in html and "<link" not in html and "http" not in re.sub(r"<p class=.attribution.*", "", html)
    )
    page, problems = _open(browser, site / "index.html", VIEWPORTS["desktop"])  # works offline: nothing fetched
    visible = "Array.from(document.querySelectorAll('#sites tbody tr')).filter(r => !r.hidden).map(r => r.cells[0].dataset.sort)"
    before = page.evaluate(visible)
    assert before == ["I12", "V04", "V45"]
    page.click("th[data-key=site] button")  # ascending: already in order
    page.click("th[data-key=site] button")  # descending
    assert page.evaluate(visible) == ["V45", "V04", "I12"]
    page.select_option("#f-status", "not evaluable")
    assert page.evaluate(visible) == ["V45"]
    page.select_option("#f-status", "")
    page.fill("#q", "Northumberland")
    assert page.evaluate(visible) == ["V04"]
    page.fill("#q", "")
    page.select_option("#f-model", "ICS")
    assert page.evaluate(visible) == ["I12"]
    assert "1 of 3 sites shown" in page.inner_text("#shown")
    page.screenshot(path=str(KEEP / "index-filtered-desktop.png"))
    assert problems == []
    page.context.close()


def test_the_csv_download_parses_and_matches_results_json(site: Path, browser) -> None:
    page, _ = _open(browser, site / "index.html", VIEWPORTS["desktop"])
    href = page.get_attribute("a[href$='results.csv']", "href")
    page.context.close()
    table = pd.read_csv(site / href)
    for sid in ("V04", "I12"):
        results = json.loads((site / "downloads" / f"{sid}.json").read_text())
        rows = table[table["site_id"] == sid]
        assert len(rows) == len(results["results"])
        expected = pd.DataFrame(results["results"])
        assert rows["estimate"].to_numpy() == pytest.approx(expected["estimate"].to_numpy())
        assert list(rows["method"]) == list(expected["method"])
        assert rows["primary"].sum() == 1
    assert pd.read_parquet(site / "downloads" / "results.parquet").shape == table.shape


def test_a_report_prints_as_a_clean_a4_paper(site: Path, browser) -> None:
    page, _ = _open(browser, site / "V04.html", VIEWPORTS["desktop"])
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('nav.top')).display") == "none"
    pdf = page.pdf(format="A4", path=str(KEEP / "V04-print.pdf"))
    assert pdf.startswith(b"%PDF")
    page.context.close()
