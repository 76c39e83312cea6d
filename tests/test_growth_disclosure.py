"""Disclosure to the digit (issue 20): the growth percentage in a site's results.json (its JSON download) must not
undo the rounding of the site's totals. With the baseline total published to the nearest 5 and the growth exact,
only one pair of whole totals fits; the published growth is rounded (or withheld) so that many pairs fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evallib.evaluation.site import evaluate as site
from evallib.evaluation.site.evaluate import published_growth_pct
from evallib.reporting import disclosure
from evallib.reporting.disclosure import safe_count

pytestmark = pytest.mark.unit


def _fits(published: float | None, rounded_base: int | str) -> set[tuple[int, int]]:
    """Every (baseline total, last-year total) pair a reader could infer from the two published values."""
    assert isinstance(rounded_base, int)
    pairs = set()
    for base in range(max(8, rounded_base - 2), rounded_base + 3):
        if safe_count(base) != rounded_base:
            continue
        for last in range(base // 2, 2 * base):
            if published_growth_pct(100 * (last / base - 1), base, last) == published:
                pairs.add((base, last))
    return pairs


@pytest.mark.parametrize(("base", "last"), [(48, 61), (103, 96), (487, 530), (1_234, 1_300), (20_011, 19_007)])
def test_a_published_growth_fits_many_pairs_of_totals(base: int, last: int) -> None:
    published = published_growth_pct(100 * (last / base - 1), base, last)
    pairs = _fits(published, safe_count(base))  # type: ignore[arg-type]
    assert (base, last) in pairs
    assert len({b for b, _ in pairs}) >= 2 and len({la for _, la in pairs}) >= 5, pairs
    exact = 100 * (last / base - 1)  # what results.json held before: one pair fits
    fits_exact = {
        (b, la)
        for b in range(base - 2, base + 3)
        if safe_count(b) == safe_count(base)
        for la in range(b // 2, 2 * b)
        if abs(100 * (la / b - 1) - exact) < 1e-9
    }
    assert fits_exact == {(base, last)}


def test_growth_of_small_totals_is_withheld() -> None:
    assert published_growth_pct(50.0, 6, 9) is None
    assert published_growth_pct(-100.0, 40, 0) is None
    assert published_growth_pct(float("nan"), 400, 400) is None


def test_the_rule_is_disclosure_control_s_rule() -> None:
    assert (site.SMALL_COUNT, site.COUNT_ROUNDING) == (disclosure.SMALL, disclosure.ROUND_TO)


@pytest.mark.e2e
def test_the_small_site_s_json_download_cannot_be_inverted(published_project: Path) -> None:
    results = json.loads((published_project / "outputs" / "S01" / "results.json").read_text())
    growth = results["growth"]
    # S01 counts 1-7 a month: about 48 a year, so its growth is published to the nearest 100% (or withheld).
    assert growth["site_growth_pct"] is None or growth["site_growth_pct"] % 100 == 0
    assert growth["comparison_growth_pct"] is not None  # the pool's totals are never published: left exact
