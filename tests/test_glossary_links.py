"""Every glossary link on every page lands on an entry of the "how to read these reports" page, and every
estimator a protocol may lead with, and every inference a site page shows, has an entry pages link to."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from evallib import evaluate_site, load_params
from evallib.protocol.params import PRIMARY_ESTIMATORS
from evallib.reporting.glossary import (
    ENTRY_IDS,
    ESTIMATOR_ENTRIES,
    GLOSSARY,
    INFERENCE_ENTRIES,
    entry_id,
    glossary_entries,
    term_link,
)
from evallib.reporting.report import full_report
from evallib.reporting.static_site import page
from evallib.reporting.templating import environment
from evallib.vocabulary import ESTIMATOR_LABELS

from .conftest import ROOT

GLOSSARY_LINK = re.compile(r'href="how-to-read\.html#([^"]*)"')


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)


def how_to_read_ids() -> set[str]:
    """The anchors of the rendered "how to read" page, as a browser finds them."""
    parser = _Ids()
    parser.feed(page("How to read these reports", "", template="how_to_read.html.j2", glossary=glossary_entries()))
    return parser.ids


def test_every_entry_has_a_distinct_anchor_on_the_how_to_read_page() -> None:
    ids = [entry_id(t) for t, _ in GLOSSARY]
    assert len(set(ids)) == len(ids)
    assert set(ids) <= how_to_read_ids()


def test_every_estimator_and_inference_pages_name_has_an_entry() -> None:
    assert set(ESTIMATOR_ENTRIES) >= set(PRIMARY_ESTIMATORS) | set(ESTIMATOR_LABELS)
    assert set(INFERENCE_ENTRIES) >= {"placebo_in_space", "placebo_studentized", "ar1_reml_bootstrap_t"}
    assert set(ESTIMATOR_ENTRIES.values()) | set(INFERENCE_ENTRIES.values()) <= ENTRY_IDS
    terms = " ".join(t for t, _ in GLOSSARY).lower()
    for term in ("synthetic did", "studentized", "iau", "rate ratio", "placebo in time", "leave one out"):
        assert term in terms, term


def test_a_link_to_a_missing_entry_is_refused() -> None:
    assert 'href="how-to-read.html#rate-ratio"' in term_link("rate ratio", "rate-ratio")
    assert "&lt;b&gt;" in term_link("<b>", "rate-ratio")  # the text is escaped
    with pytest.raises(KeyError, match="no glossary entry"):
        term_link("x", "no-such-term")


def test_every_glossary_link_in_the_templates_and_notebooks_lands() -> None:
    ids = how_to_read_ids()
    env = environment()
    sources = {name: env.loader.get_source(env, name)[0] for name in env.list_templates()}  # type: ignore[union-attr]
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        sources[nb.name] = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
    linked = {name: GLOSSARY_LINK.findall(text) for name, text in sources.items()}
    assert any(linked.values())
    for name, anchors in linked.items():
        assert set(anchors) <= ids, (name, set(anchors) - ids)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("site", "kind", "must_link"),
    [
        ("V04", "vanguards", {"synthetic-difference-in-differences-synthetic-did", "placebo-test-placebo-in-space"}),
        ("V49", "vanguards", {"studentized-placebo-test"}),  # a volatile site: the studentized DiD answers
    ],
)
def test_every_glossary_link_on_a_site_page_lands_and_the_answer_links_its_terms(
    site: str, kind: str, must_link: set[str]
) -> None:
    html = full_report(evaluate_site(load_params(ROOT / "params" / kind / f"{site}.yaml")))
    anchors = set(GLOSSARY_LINK.findall(html))
    assert anchors <= how_to_read_ids(), anchors - how_to_read_ids()
    summary = html[html.index('class="summary"') : html.index("</section>")]
    assert must_link <= set(GLOSSARY_LINK.findall(summary)) | anchors
    assert must_link & set(GLOSSARY_LINK.findall(summary))  # the summary names its estimator and test by link


def test_a_board_papers_summary_links_the_glossary_from_the_papers_folder(tmp_path: Path) -> None:
    """A paper's HTML is published in ``papers/``: the summary's glossary links climb one folder."""
    from evallib.reporting.board_paper import site_paper
    from evallib.reporting.publishing import SiteEntry

    link = term_link("synthetic difference-in-differences", ESTIMATOR_ENTRIES["synthetic_did"])
    report = tmp_path / "V99.html"
    report.write_text(f'<section class="summary"><p>Primary estimate: {link}</p></section>', encoding="utf-8")
    results = {"site_id": "V99", "intervention_start": "2015-04", "answer": {"scale": "log", "conclusion": "decrease"}}
    paper = site_paper(SiteEntry("V99", "evaluated", results, report))
    assert paper is not None
    assert 'href="../how-to-read.html#synthetic-difference-in-differences-synthetic-did"' in paper
    assert 'href="how-to-read.html#' not in paper
