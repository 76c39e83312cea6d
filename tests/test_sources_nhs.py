"""The bundled commissioner data (Monthly Activity Return), areas stitched across mergers on the real files,
the PCT -> CCG rule, suspect months and level shifts, and NHS England's growth comparison reproduced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.studies.growth import programme_growth, site_growth, vanguard_ccgs
from evallib.sources.areas import harmonise, resolve
from evallib.sources.bundled import (
    ATTRIBUTION,
    BUNDLED,
    england_total,
    load_bundled,
    load_successions,
    mar_rows,
)
from evallib.sources.commissioners import match_pcts_to_ccgs, pct_ccg_joins
from evallib.sources.quality import level_steps, structural_breaks, suspect_runs
from evallib.sources.registry import get_site, type1_trusts

from .conftest import FIXTURES
from .reference import values

pytestmark = pytest.mark.integration

MAR = "mar_commissioner_2008_2019"
FY13, FY17 = ("2013-04", "2014-03"), ("2017-04", "2018-03")


@pytest.fixture(scope="module")
def mar():
    return load_bundled(MAR)


def test_mar_commissioner_rows_sum_to_the_england_row_every_month() -> None:
    rows = mar_rows()
    commissioners = rows[rows["org_type"] != "england_total"].groupby("period")["nonel_ga_total"].sum()
    england = england_total(MAR)
    assert len(england) == 141
    pd.testing.assert_series_equal(commissioners.astype(float), england, check_names=False, check_index_type=False)


def test_mar_panel_holds_pct_then_ccg_codes_and_no_england_row(mar) -> None:
    assert BUNDLED[MAR].unit_kind == "CCG" and BUNDLED["ae_monthly_2010_2021"].unit_kind == "trust"
    assert "Monthly Activity Return" in ATTRIBUTION
    assert mar is load_bundled(MAR)  # cached
    kinds = mar_rows().groupby("org_code")["org_type"].first()
    span = mar.data.groupby("unit")["period"].agg(["min", "max"])
    pcts, ccgs = span[kinds[span.index] == "pct"], span[kinds[span.index] == "ccg"]
    assert len(pcts) + len(ccgs) == len(span) and "ENGLAND" not in span.index
    assert pcts["max"].max() == pd.Timestamp("2013-03-01") and pcts["min"].min() == pd.Timestamp("2008-04-01")
    assert ccgs["min"].min() == pd.Timestamp("2013-04-01") and ccgs["max"].max() == pd.Timestamp("2019-12-01")
    assert len(ccgs) == 221
    assert mar.outcomes == ["nonelective_admissions", "nonelective_admissions_per_head"]  # counts, and per head


def test_successions_hold_commissioner_and_trust_links_from_2008() -> None:
    succ = load_successions()
    assert succ["effective_date"].min() >= pd.Timestamp("2008-01-01")
    assert set(succ["old_kind"]) | set(succ["new_kind"]) <= {"ccg", "pct", "care_trust", "nhs_trust"}
    pairs = set(zip(succ["old_code"], succ["new_code"], strict=True))
    assert {("RW3", "R0A"), ("RM2", "R0A"), ("RR1", "RRK"), ("00F", "13T"), ("07V", "36L")} <= pairs


def test_registry_sites_carry_their_ccg_codes() -> None:
    assert get_site("V13").ccg_codes == ("05L", "13P")
    assert get_site("V32").ccg_codes == ()
    assert vanguard_ccgs(["PACS"])["PACS"][:3] == ("12F", "04E", "04H")


def test_newcastle_gateshead_is_the_sum_of_its_three_predecessors(mar) -> None:
    out, area_map = harmonise(mar, "2013-04-01", "2018-03-01")
    assert area_map.members["13T"] == ("00F", "00G", "00H", "13T")
    raw = mar.wide("nonelective_admissions").loc["2013-04-01":"2018-03-01"]
    expected = raw[["00F", "00G", "00H", "13T"]].sum(axis=1)
    pd.testing.assert_series_equal(out.wide("nonelective_admissions")["13T"], expected, check_names=False)
    assert "13T" in " ".join(area_map.notes("13T")) and not area_map.notes("00F")


def test_areas_depend_on_the_window(mar) -> None:
    _, vanguard = harmonise(mar, "2013-04-01", "2018-03-01")
    _, ics = harmonise(mar, "2016-04-01", "2019-12-01")
    assert {"02V", "03C", "03G"} <= set(vanguard.members) and "15F" not in vanguard.members
    assert ics.members["15F"] == ("02V", "03C", "03G", "15F")
    assert ics.members["15N"] == ("15N", "99P", "99Q")  # Devon, merged April 2019
    assert "after the window" in " ".join(vanguard.notes("02V"))


def test_ics_codes_formed_in_2020_resolve_to_their_predecessors(mar) -> None:
    _, area_map = harmonise(mar, "2016-04-01", "2019-12-01")
    areas, notes = resolve(get_site("I20").ccg_codes, area_map)  # South West London 36L
    assert areas == ("07V", "08J", "08P", "08R", "08T", "08X")
    assert "formed after the window" in notes[0]
    areas, _ = resolve(["26A"], area_map)  # Norfolk and Waveney
    assert areas == ("06M", "06V", "06W", "06Y", "07J")
    assert resolve(["15N"], area_map)[0] == ("15N",)
    areas, notes = resolve(["13P"], area_map)  # Modality's Birmingham CCG merged into 15E in April 2018
    assert areas == ("15E",) and any("partly covered" in n for n in notes)


def test_pct_ccg_rule_accepts_coterminous_pairs_and_rejects_divided_or_merged_pcts() -> None:
    joins = pct_ccg_joins().set_index("ccg_code")
    assert joins.loc["00L", ["pct_code", "accepted"]].tolist() == ["TAC", True]  # Northumberland
    assert joins.loc["00C", ["pct_code", "accepted"]].tolist() == ["5J9", True]  # Darlington
    assert not joins.loc["99J", "accepted"] and joins.loc["99J", "share_ratio"] < 0.7  # West Kent PCT was divided
    assert not joins.loc["11J", "accepted"] and joins.loc["11J", "share_ratio"] > 1.5  # Dorset + Bournemouth/Poole
    assert joins.loc["00G", "pct_code"] == ""  # Newcastle PCT went to two CCGs of other names
    assert joins["accepted"].sum() == 83


def test_pct_ccg_rule_rejects_a_same_named_ccg_with_60_percent_of_the_volume() -> None:
    rows = mar_rows()
    darlington_ccg = rows["org_code"] == "00C"
    rows.loc[darlington_ccg, "nonel_ga_total"] = (rows.loc[darlington_ccg, "nonel_ga_total"] * 0.6).round()
    joins = match_pcts_to_ccgs(rows).set_index("ccg_code")
    assert joins.loc["00C", "pct_code"] == "5J9" and not joins.loc["00C", "accepted"]
    assert joins.loc["00C", "share_ratio"] == pytest.approx(0.63, abs=0.03)
    assert joins.loc["00L", "accepted"]


def test_accepted_joins_extend_ccg_series_back_to_2008(mar) -> None:
    out, area_map = harmonise(mar, "2008-04-01", "2018-03-01")
    northumberland = out.wide("nonelective_admissions")["00L"].dropna()
    assert northumberland.index.min() == pd.Timestamp("2008-04-01") and len(northumberland) == 120
    assert any("continues TAC" in n for n in area_map.notes("00L"))
    # Newcastle PCT has no CCG of its name, so the merged area 13T cannot reach back: the stitch is refused.
    assert out.wide("nonelective_admissions")["13T"].dropna().index.min() == pd.Timestamp("2013-04-01")
    assert any("not used" in n for n in area_map.notes("13T"))


def test_annual_ccg_sums_agree_with_hes_emergency_admissions(mar) -> None:
    hes = pd.read_csv(FIXTURES / "hes_ccg_emergency_2015_2021.csv", dtype={"ccg_code": str})
    wide = mar.wide("nonelective_admissions")
    for year in (2015, 2016, 2017, 2018):
        months = pd.date_range(f"{year}-04-01", f"{year + 1}-03-01", freq="MS")
        mar_year = wide.reindex(months).dropna(axis=1).sum()
        hes_year = hes[hes["fin_year"] == f"{year}-{(year + 1) % 100:02d}"].set_index("ccg_code")["emergency"]
        both = pd.concat([mar_year, hes_year], axis=1, join="inner").dropna()
        assert len(both) > 190
        assert np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1] > 0.98
        assert (both.iloc[:, 0] / both.iloc[:, 1]).median() == pytest.approx(1, abs=0.05)


def test_suspect_runs_found_in_the_monthly_activity_return(mar) -> None:
    runs = suspect_runs(mar, "nonelective_admissions").set_index(["unit", "first"])
    for unit in ("05P", "05Q", "13P"):  # Birmingham and Solihull under-reporting
        assert runs.loc[(unit, pd.Timestamp("2014-07-01")), "months"] == 9
    assert runs.loc[("11M", pd.Timestamp("2016-12-01")), "months"] == 7
    for unit in ("02T", "03A"):
        run = runs.loc[(unit, pd.Timestamp("2017-05-01"))]
        assert run["months"] == 3 and run["last"] == pd.Timestamp("2017-07-01") and run["ratio"] < 0.2
    assert ("07Y", pd.Timestamp("2016-06-01")) in runs.index
    ccg_runs = runs[runs.index.get_level_values("first") >= pd.Timestamp("2013-04-01")]
    assert len(ccg_runs) == 21 and (ccg_runs["months"] == 1).sum() == 15


@pytest.mark.parametrize(
    ("name", "outcome"), [("ae_attendances_2016_2019", "ae_attendances"), ("ae_monthly_2010_2021", "ae_attendances")]
)
def test_stitched_trust_series_is_continuous_across_its_merger(name: str, outcome: str) -> None:
    panel = load_bundled(name)
    out, area_map = harmonise(panel, "2016-04-01", "2019-01-01")
    assert set(area_map.members["R0A"]) >= {"RW3", "RM2", "R0A"}  # Manchester University FT, October 2017
    steps, sigma = level_steps(out.wide(outcome))
    assert abs(steps.loc["2017-10-01", "R0A"]) < 5 * sigma["R0A"] * np.sqrt(2 / 6)
    assert "R0A" not in set(structural_breaks(out, outcome)["unit"])


def test_trust_merger_rolled_up_removes_the_break_the_raw_codes_show() -> None:
    panel = load_bundled("ae_attendances_2016_2019")
    raw_breaks = structural_breaks(panel, "ae_attendances").set_index("unit")
    assert raw_breaks.loc["RRK", "month"] == pd.Timestamp("2018-07-01") and raw_breaks.loc["RRK", "step"] > 1
    out, area_map = harmonise(panel, "2016-04-01", "2019-03-01")
    assert area_map.members["RRK"] == ("RR1", "RRK")  # Heart of England into UHB, April 2018
    assert "RRK" not in set(structural_breaks(out, "ae_attendances")["unit"])
    assert set(area_map.combined()) == {"R0A", "RDE", "RGN", "RQ3", "RRK", "RTG", "RW4"}
    assert not (area_map.events["kind"] == "not_stitched").any()


def test_trusts_whose_predecessors_are_absent_from_the_2010_file_are_not_stitched() -> None:
    out, area_map = harmonise(load_bundled("ae_monthly_2010_2021"), "2011-04-01", "2019-01-01")
    refused = area_map.events[area_map.events["kind"] == "not_stitched"].set_index("area")["date"]
    assert refused.to_dict() == {
        "RAL": pd.Timestamp("2014-07-01"),  # Barnet and Chase Farm's rows are absent
        "RDU": pd.Timestamp("2014-10-01"),  # Heatherwood and Wexham Park
        "RGN": pd.Timestamp("2017-04-01"),  # Hinchingbrooke
        "RQM": pd.Timestamp("2015-09-01"),  # West Middlesex
        "RRK": pd.Timestamp("2018-07-01"),  # Heart of England
    }
    wide = out.wide("ae_attendances")
    assert wide["RAL"].dropna().index.min() == pd.Timestamp("2014-07-01")


def test_level_shift_screen_on_real_type1_attendances() -> None:
    out, _ = harmonise(load_bundled("ae_attendances_2016_2019"), "2016-04-01", "2019-03-01")
    flagged = structural_breaks(out, "ae_type1_attendances")
    assert set(flagged["unit"]) <= type1_trusts()
    assert 5 <= len(flagged) <= 20  # 11 of 134 type-1 trusts when written
    assert (flagged["step"].abs() > 0.2).all()


def test_nhs_england_growth_comparison_reproduced() -> None:
    raw = programme_growth(FY13, FY17).set_index("group")
    # The same comparison in plain pandas (tests/reference/nhs_growth: the script and its stored output) ...
    independent = values("nhs_growth/pandas_programme_growth.out")
    for group, key in (("PACS+MCP", "pacs_mcp"), ("no vanguard", "no_vanguard")):
        assert raw.loc[group, "n_units"] == independent[f"{key}.n_ccgs"]
        assert raw.loc[group, "growth_pct"] == pytest.approx(independent[f"{key}.growth_pct"], abs=1e-6)
    # ... and the data compilers' published figures: +8.1% (28 CCGs) against +12.9% (155).
    assert raw.loc["PACS+MCP", ["n_units", "growth_pct"]].tolist() == [28, pytest.approx(8.1, abs=0.05)]
    assert raw.loc["no vanguard", ["n_units", "growth_pct"]].tolist() == [155, pytest.approx(12.9, abs=0.05)]
    clean = programme_growth(FY13, FY17, drop_suspect=True).set_index("group")
    assert clean.loc["PACS+MCP", ["n_units", "growth_pct"]].tolist() == [27, pytest.approx(8.9, abs=0.05)]
    assert clean.loc["no vanguard", ["n_units", "growth_pct"]].tolist() == [152, pytest.approx(13.1, abs=0.05)]


def test_new_care_models_baseline_comparison_reproduced() -> None:
    out = programme_growth(
        ("2014-04", "2015-03"), ("2016-10", "2017-09"), care_models=("PACS", "MCP"), average="site", drop_suspect=True
    ).set_index("group")
    assert out.loc["no vanguard", ["n_units", "growth_pct"]].tolist() == [151, pytest.approx(6.6, abs=0.05)]
    assert out.loc["PACS", ["n_units", "growth_pct"]].tolist() == [9, pytest.approx(3.9, abs=0.05)]
    assert out.loc["MCP", ["n_units", "growth_pct"]].tolist() == [13, pytest.approx(7.1, abs=0.05)]
    sites = site_growth(("2014-04", "2015-03"), ("2016-10", "2017-09"), care_models=["MCP"], drop_suspect=True)
    assert sites.set_index("site_id").loc["V10", "n_units"] == 0  # Calderdale's suspect months
