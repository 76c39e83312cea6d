"""Bundled CCG populations: coverage, the compiler's checks, monthly interpolation and areas joined like counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.sources.areas import harmonise
from evallib.sources.bundled import load_bundled, load_ccg_populations, mar_rows
from evallib.sources.populations import area_populations, code_populations, monthly_populations

#: ONS mid-year estimates of England's population (the England totals of the shared data's
#: population_ccg21_2017_2019_2020.csv, which equal ONS's published figures).
ENGLAND = {2017: 55_619_430, 2019: 56_286_961}


def test_every_mar_ccg_code_has_a_population_each_year_2011_to_2020() -> None:
    pop = load_ccg_populations()
    ccgs = set(mar_rows().query("org_type == 'ccg'")["org_code"])
    years = pop.groupby("ccg_code")["mid_year"].apply(lambda y: sorted(y))
    missing = ccgs - set(years.index)
    assert missing == {"00G", "00H"}  # Newcastle to March 2015: no source splits Newcastle
    assert all(y == list(range(2011, 2021)) for y in years)
    assert len(ccgs) == 221


@pytest.mark.parametrize("year", sorted(ENGLAND))
def test_ccgs_reporting_in_july_sum_to_ons_england_total(year: int) -> None:
    pop = load_ccg_populations()
    mar = mar_rows()
    codes = set(mar.loc[(mar["org_type"] == "ccg") & (mar["period"] == f"{year}-07-01"), "org_code"])
    total = pop.loc[pop["ccg_code"].isin(codes) & (pop["mid_year"] == year), "population"].sum()
    assert abs(total / ENGLAND[year] - 1) < 0.0003


def test_method_a_reproduces_ons_published_mid_2015_ccg_estimates() -> None:
    pop = load_ccg_populations()
    a = pop[(pop["method"] == "A") & (pop["mid_year"] == 2015)]
    gap = (a["population"] / a["ons_sape_mid2015"] - 1).abs()
    assert len(a) > 70
    assert gap.median() < 0.005  # the compiler's check: median 0.16%


def test_months_interpolate_linearly_between_mid_years_and_stop_at_the_ends() -> None:
    pop = load_ccg_populations().query("ccg_code == '00C'").set_index("mid_year")["population"]
    months = pd.date_range("2011-01-01", "2020-12-01", freq="MS")
    m = monthly_populations(months, ["00C"])["00C"]
    assert m[:"2011-05-01"].isna().all() and m["2020-07-01":].isna().all()
    # 15 December 2015 lies 168 of 366 days from 30 June 2015 to 30 June 2016.
    expected = pop[2015] + (pop[2016] - pop[2015]) * 168 / 366
    assert m["2015-12-01"] == pytest.approx(expected)
    assert m["2015-06-01"] == pytest.approx(pop[2015] - (pop[2015] - pop[2014]) * 15 / 365)


def test_a_pct_continued_by_a_ccg_takes_its_population_and_other_codes_have_none() -> None:
    m = monthly_populations(["2012-06", "2012-07"], ["TAC", "00L", "5QJ", "XXX"])
    assert m["TAC"].tolist() == m["00L"].tolist()  # Northumberland Care Trust = Northumberland CCG
    assert m["XXX"].isna().all()


def test_merged_area_population_is_the_sum_of_its_reporting_codes() -> None:
    raw = load_bundled("mar_commissioner_2008_2019")
    panel, amap = harmonise(raw, "2016-04-01", "2019-03-01")
    pops = area_populations(raw, panel, amap, "nonelective_admissions")
    leeds = amap.area_of("02V")
    assert leeds == "15F" and set(amap.members[leeds]) >= {"02V", "03C", "03G", "15F"}
    parts = monthly_populations(["2017-06", "2018-06"], ["02V", "03C", "03G", "15F"])
    assert pops.loc["2017-06-01", leeds] == pytest.approx(parts.loc["2017-06-01", ["02V", "03C", "03G"]].sum())
    assert pops.loc["2018-06-01", leeds] == pytest.approx(parts.loc["2018-06-01", "15F"])
    # The merged population is continuous across the merger (April 2018).
    assert abs(pops.loc["2018-04-01", leeds] / pops.loc["2018-03-01", leeds] - 1) < 0.005


def test_an_area_whose_reporting_code_has_no_population_has_none_for_those_months() -> None:
    raw = load_bundled("mar_commissioner_2008_2019")
    panel, amap = harmonise(raw, "2013-04-01", "2018-03-01")
    pops = area_populations(raw, panel, amap, "nonelective_admissions")
    newcastle = amap.area_of("00G")
    assert pops.loc[:"2015-03-01", newcastle].isna().all()  # 00G and 00H reported to March 2015
    assert pops.loc["2015-04-01":, newcastle].notna().all()
    counts = panel.wide("nonelective_admissions")
    assert (pops.notna() <= counts.reindex(columns=pops.columns).notna()).all().all()


def test_window_mean_population_is_missing_unless_every_month_has_one() -> None:
    months = pd.date_range("2011-01-01", "2011-12-01", freq="MS")
    assert np.isnan(code_populations(["00C"], months)["00C"])
    assert code_populations(["00C"], months[6:])["00C"] > 100_000
