"""NHS England's published comparisons (and Morciano et al.'s) reproduced from the bundled data, and the programme
page's section that shows them beside the published figures."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from evallib.evaluation.studies.growth import NO_VANGUARD, programme_growth, site_growth
from evallib.evaluation.studies.published import PUBLICATIONS, published_comparisons
from evallib.reporting.programme_page import nhs_england_comparison
from evallib.sources.bundled import load_ccg_populations, mar_rows


@pytest.fixture(scope="module")
def table():
    return published_comparisons().set_index(["publication", "group"])


def test_rest_of_england_per_head_within_a_point_of_april_2018(table) -> None:
    row = table.loc[("nhse_2018", NO_VANGUARD)]
    assert row["published_pct"] == 4.9
    assert abs(row["per_head_pooled_pct"] - 4.9) < 1


def test_rest_of_england_per_head_within_a_point_of_march_2017(table) -> None:
    row = table.loc[("nhse_2017_next_steps", NO_VANGUARD)]
    assert row["published_pct"] == 3.2
    assert abs(row["per_head_pooled_pct"] - 3.2) < 1


def test_morciano_window_in_counts_within_one_and_a_half_points(table) -> None:
    vanguard = table.loc[("morciano_2021", "PACS+MCP")]
    rest = table.loc[("morciano_2021", NO_VANGUARD)]
    assert abs(vanguard["counts_pooled_pct"] - 8.8) < 1.5
    assert abs(rest["counts_pooled_pct"] - 12.0) < 1.5


def test_per_head_is_counts_deflated_by_population_growth(table) -> None:
    # Population grew about 2% between 2014-15 and the 12 months to September 2017.
    row = table.loc[("nhse_2018", NO_VANGUARD)]
    deflator = (1 + row["counts_pooled_pct"] / 100) / (1 + row["per_head_pooled_pct"] / 100)
    assert 1.01 < deflator < 1.03


def test_every_published_group_is_reproduced_with_both_averages(table) -> None:
    for pub in PUBLICATIONS:
        for group in pub.figures:
            row = table.loc[(pub.key, group)]
            assert row["n_ccgs"] > 0 and row["counts_pooled_pct"] == row["counts_pooled_pct"]
            if group != NO_VANGUARD:
                assert row["n_sites"] > 0 and row["per_head_site_mean_pct"] == row["per_head_site_mean_pct"]


def test_per_head_growth_of_one_ccg_by_hand() -> None:
    base, follow = ("2014-04", "2015-03"), ("2016-10", "2017-09")
    lakeside = site_growth(base, follow, care_models=("MCP",)).set_index("site_id").loc["V22"]
    assert lakeside["growth_per_head_pct"] == pytest.approx(19.4, abs=0.1)  # Corby CCG, the README's figure
    pooled = programme_growth(base, follow, care_models=("MCP",))
    assert list(pooled.columns[-2:]) == ["n_units_per_head", "growth_per_head_pct"]


def test_programme_page_shows_published_figures_measures_and_reasons() -> None:
    html = str(nhs_england_comparison())
    text = re.sub(r"<[^>]+>", " ", html)
    for figure in ("+4.9% per head", "+3.2% per head", "+3.0% per head", "+8.8% counts", "+12.0% counts"):
        assert figure in text
    for words in ("Resident against registered", "Whole CCG against the vanguard", "Site mean against population"):
        assert words in html
    assert "Per head, pooled" in html and "Counts, site mean" in html


def test_per_head_growth_matches_a_plain_pandas_computation() -> None:
    """The same units' counts and populations, interpolated independently by day, give the same growth."""
    base, follow = ("2014-04", "2015-03"), ("2016-10", "2017-09")
    row = programme_growth(base, follow, care_models=("PACS",), drop_suspect=True).set_index("group").loc["PACS"]
    units = list(row["units"])
    mar = mar_rows()
    pop = load_ccg_populations().pivot(index="mid_year", columns="ccg_code", values="population")[units]
    daily = pop.set_axis(pd.to_datetime([f"{y}-06-30" for y in pop.index])).resample("D").interpolate("time")

    def window(lo: str, hi: str) -> tuple[float, float]:
        months = pd.date_range(lo, hi, freq="MS")
        counts = mar[mar["org_code"].isin(units) & mar["period"].isin(months)]["nonel_ga_total"].sum()
        people = daily.loc[months + pd.Timedelta(days=14)].sum(axis=1).mean()
        return float(counts), float(people)

    (bc, bp), (fc, fp) = window(*base), window(*follow)
    assert row["growth_per_head_pct"] == pytest.approx(100 * ((fc / fp) / (bc / bp) - 1), abs=1e-9)
