"""The programme page's comparisons with NHS England's figures screen the bundled data once per pair of windows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evallib.evaluation.studies import growth
from evallib.evaluation.studies.published import published_comparisons
from evallib.sources.bundled import load_bundled


@pytest.fixture
def fresh_caches():
    growth._bundled.cache_clear()
    growth._bundled_runs.cache_clear()
    yield
    growth._bundled.cache_clear()
    growth._bundled_runs.cache_clear()


def test_the_publications_share_one_suspect_month_screen_and_one_growth_set_up_per_pair_of_windows(
    fresh_caches, monkeypatch
):
    runs, set_ups = [], []
    real_runs, real_growth = growth.suspect_runs, growth._Growth
    monkeypatch.setattr(growth, "suspect_runs", lambda *a, **k: runs.append(a) or real_runs(*a, **k))
    monkeypatch.setattr(growth, "_Growth", lambda *a, **k: set_ups.append(a) or real_growth(*a, **k))
    first = published_comparisons()
    assert len(runs) == 1  # the runs are found on the whole series: one screen serves every window
    assert len(set_ups) == 4  # four publications, each with its pooled and site averages on one set-up
    again = published_comparisons()
    assert len(set_ups) == 4 and again.equals(first)


def test_a_panel_given_by_the_caller_is_never_served_from_the_bundled_cache(fresh_caches):
    base, follow = ("2014-04", "2015-03"), ("2016-10", "2017-09")
    bundled = growth.programme_growth(base, follow, drop_suspect=True)
    panel = load_bundled(growth.DATASET)
    doubled = replace(panel, data=panel.data.assign(value=panel.data["value"] * 2))
    given = growth.programme_growth(base, follow, drop_suspect=True, panel=doubled)
    assert list(given["base_total"]) == [2 * v for v in bundled["base_total"]]
