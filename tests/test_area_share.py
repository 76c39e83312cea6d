"""The share of its CCGs a vanguard serves (registry), what the report says it means for the detectable effect, and
published site evaluations cited beside the project's estimate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evallib import evaluate_site, load_params
from evallib.errors import DataError
from evallib.reporting.area_share import share_sentences
from evallib.reporting.sections import who_and_when
from evallib.sources import registry
from evallib.sources.registry import AreaCoverage, area_coverage, load_registry, published_evaluations

ROOT = Path(__file__).resolve().parents[1]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def test_shares_come_from_published_populations_and_are_never_guessed() -> None:
    sites = {s.site_id for s in load_registry()}
    for sid in ("V03", "V06", "V13", "V14", "V16", "V17", "V22"):
        cov = area_coverage(sid)
        assert sid in sites and cov.note
        if cov.share is not None:  # a share always stands on two published figures, and is their ratio (capped)
            assert cov.vanguard_population and cov.ccg_population and cov.vanguard_population_source
            assert cov.share == pytest.approx(min(1.0, cov.vanguard_population / cov.ccg_population), abs=0.001)
    assert area_coverage("V03").share == pytest.approx(0.23, abs=0.005)  # South Somerset of all Somerset
    assert area_coverage("V22").share is None  # Lakeside is larger than Corby CCG: not computable
    assert area_coverage("V01").share is None and "no published population" in area_coverage("V01").note


def test_a_share_outside_zero_to_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "site_coverage.csv").write_text(
        "site_id,vanguard_population,vanguard_population_source,ccg_population,ccg_population_source,"
        "coverage_share,note\nV03,1,a,1,b,1.4,c\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(registry, "bundled_data_dir", lambda: tmp_path)
    registry._coverage.cache_clear()
    try:
        with pytest.raises(DataError, match="V03: coverage_share must lie between 0 and 1"):
            area_coverage("V03")
    finally:
        registry._coverage.cache_clear()


def test_dilution_and_detectable_effect_in_words() -> None:
    cov = AreaCoverage("VX", 0.25, 100_000, "dashboard", 400_000, "lists", "part of the CCG")
    words = " ".join(share_sentences(cov, 20.0))
    assert "about 25% of its CCGs' population" in words
    assert "a 20% fall in their emergency admissions is about a 5.0% fall at CCG level" in words
    assert "only a fall of about 80% or more among the vanguard's own patients could be detected" in words
    small = " ".join(share_sentences(AreaCoverage("VX", 0.1, 1, "a", 10, "b", "c"), 20.0))
    assert "cannot detect an effect confined to them" in small
    unknown = " ".join(share_sentences(area_coverage("V13"), 20.0))
    assert "is unknown" in unknown and "minimum detectable effect is about 20%" in unknown


def test_published_evaluations_recorded_for_the_iau_sites() -> None:
    ids = {e.site_id for e in published_evaluations()}
    assert ids == {"V07", "V23", "V24", "V27", "V28"}
    rushcliffe = {e.outcome: e.effect_pct for e in published_evaluations("V23")}
    assert rushcliffe == {"emergency admissions": -23.0, "A&E attendances": -29.0}
    for e in published_evaluations():
        assert e.source and e.url.startswith("http") and e.population and e.window and e.effect


@pytest.mark.parametrize(
    ("site", "says"),
    [
        ("V03", "This vanguard served about 23% of its CCGs' population"),
        ("V22", "The share of its CCGs' population this vanguard serves is unknown"),
    ],
)
def test_v03_and_v22_reports_state_the_share_and_the_detectable_effect(site: str, says: str) -> None:
    ev = evaluate_site(load_params(ROOT / "params" / "vanguards" / f"{site}.yaml"))
    text = _text(who_and_when(ev).html)
    assert says in text
    assert "minimum detectable effect is about" in text


def test_published_evaluation_cited_beside_the_projects_estimate() -> None:
    ev = evaluate_site(load_params(ROOT / "params" / "vanguards" / "V23.yaml"))
    text = _text(who_and_when(ev).html)
    assert "23% fewer emergency admissions" in text
    assert "This report (primary estimate)" in text and "95% interval" in text
