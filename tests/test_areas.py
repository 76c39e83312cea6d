"""Areas stable over a window, code resolution and the data-quality rules, on small simulated panels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from evallib.sources.areas import harmonise, resolve
from evallib.sources.commissioners import name_key
from evallib.sources.panel import Panel, validate_panel
from evallib.sources.quality import (
    BREAK_FLOOR,
    impute_suspect,
    structural_breaks,
    suspect_runs,
)

pytestmark = pytest.mark.unit

MONTHS = pd.date_range("2013-04-01", "2019-03-01", freq="MS")


def _series(rng: np.random.Generator, level: float, n: int = len(MONTHS)) -> np.ndarray:
    season = 1 + 0.05 * np.sin(2 * np.pi * np.arange(n) / 12)
    return np.round(level * season * np.exp(rng.normal(0, 0.02, n)))


def _panel(spans: dict[str, tuple[str, str, float]], *, seed: int = 1, extra: int = 20) -> Panel:
    """Codes reporting from..to at a level; plus ``extra`` steady comparison units so medians are stable."""
    rng = np.random.default_rng(seed)
    frames = []
    for code, (lo, hi, level) in spans.items():
        values = _series(rng, level)
        keep = (MONTHS >= lo) & (MONTHS <= hi)
        frames.append(pd.DataFrame({"unit": code, "period": MONTHS[keep], "value": values[keep]}))
    for i in range(extra):
        frames.append(pd.DataFrame({"unit": f"Z{i:02d}", "period": MONTHS, "value": _series(rng, 1000 + 50 * i)}))
    long = pd.concat(frames).assign(outcome="admissions")
    return validate_panel(long, "monthly", source="simulated")


def _links(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["old_code", "new_code", "effective_date"])


def _values(panel: Panel, unit: str) -> pd.Series:
    return panel.wide("admissions")[unit].dropna()


def test_merger_inside_the_window_is_summed_into_one_area_named_by_the_latest_code() -> None:
    raw = _panel(
        {"A": ("2013-04", "2015-03", 500), "B": ("2013-04", "2015-03", 700), "C": ("2015-04", "2019-03", 1200)}
    )
    links = _links(("A", "C", "2015-04-01"), ("B", "C", "2015-04-01"))
    out, area_map = harmonise(raw, "2013-04-01", "2019-03-01", links=links)
    assert area_map.members["C"] == ("A", "B", "C")
    assert "A" not in out.units and "B" not in out.units
    w = raw.wide("admissions")
    expected = (w["A"].fillna(0) + w["B"].fillna(0) + w["C"].fillna(0)).loc["2013-04-01":"2019-03-01"]
    pd.testing.assert_series_equal(_values(out, "C"), expected, check_names=False, check_freq=False)
    assert (area_map.events["kind"] == "merge").sum() == 1
    assert not (area_map.events["kind"] == "not_stitched").any()


def test_merger_after_the_window_is_ignored_and_noted() -> None:
    raw = _panel({"D": ("2013-04", "2019-03", 800), "E": ("2013-04", "2019-03", 900)})
    links = _links(("D", "F", "2020-04-01"), ("E", "F", "2020-04-01"))
    out, area_map = harmonise(raw, "2013-04-01", "2019-03-01", links=links)
    assert {"D", "E"} <= set(out.units)
    assert area_map.members["D"] == ("D",)
    assert set(area_map.events.loc[area_map.events["kind"] == "after_window", "area"]) == {"D", "E"}


def test_merger_before_the_window_leaves_the_successor_alone() -> None:
    raw = _panel({"A": ("2013-04", "2015-03", 500), "C": ("2015-04", "2019-03", 1200)})
    out, area_map = harmonise(raw, "2016-04-01", "2019-03-01", links=_links(("A", "C", "2015-04-01")))
    assert area_map.members["C"] == ("C",)
    areas, notes = resolve(["A"], area_map)
    assert areas == ("C",) and "closed before the window" in notes[0]


def test_split_keeps_the_divided_code_and_its_successors_together() -> None:
    raw = _panel(
        {"S": ("2013-04", "2016-03", 1500), "T": ("2016-04", "2019-03", 900), "U": ("2016-04", "2019-03", 600)}
    )
    links = _links(("S", "T", "2016-04-01"), ("S", "U", "2016-04-01"))
    out, area_map = harmonise(raw, "2013-04-01", "2019-03-01", links=links)
    (area,) = [a for a in area_map.members if a in {"S", "T", "U"}]
    assert set(area_map.members[area]) == {"S", "T", "U"}
    assert len(_values(out, area)) == len(MONTHS)
    assert "split" in set(area_map.events["kind"])


def test_a_month_missing_for_one_code_while_the_others_report_is_dropped() -> None:
    raw = _panel({"A": ("2013-04", "2019-03", 500), "B": ("2013-04", "2015-03", 700)})
    data = raw.data[~((raw.data["unit"] == "A") & (raw.data["period"] == pd.Timestamp("2014-06-01")))]
    raw = Panel(data.reset_index(drop=True), "monthly", "simulated")
    out, area_map = harmonise(
        raw, "2013-04-01", "2019-03-01", links=_links(("B", "A", "2015-04-01")), check_continuity=False
    )
    assert pd.Timestamp("2014-06-01") not in _values(out, "A").index
    assert len(_values(out, "A")) == len(MONTHS) - 1
    assert "gap" in set(area_map.events["kind"])


def test_a_stitch_whose_predecessor_has_no_rows_fails_the_continuity_check() -> None:
    # C absorbs B in April 2016 but B's rows are absent: C's series jumps, so its months before are not used.
    rng = np.random.default_rng(3)
    raw = _panel({}, extra=20)
    c = _series(rng, 700) * np.where(MONTHS >= "2016-04-01", 2.0, 1.0)
    long = pd.concat([raw.data, pd.DataFrame({"unit": "C", "period": MONTHS, "outcome": "admissions", "value": c})])
    raw = validate_panel(long, "monthly", source="simulated")
    out, area_map = harmonise(raw, "2013-04-01", "2019-03-01", links=_links(("B", "C", "2016-04-01")))
    assert _values(out, "C").index.min() == pd.Timestamp("2016-04-01")
    text = " ".join(area_map.notes("C"))
    assert "not used" in text and "B: no rows" in text
    shift = float(re.search(r"shifts by \+(\d+)%", text)[1])
    assert shift == pytest.approx(100, abs=10)


def test_rates_sum_numerator_and_denominator_separately() -> None:
    frames = []
    for code, (lo, hi) in {"A": ("2015-01", "2015-12"), "B": ("2015-01", "2015-12")}.items():
        months = pd.date_range(lo, hi, freq="MS")
        frames.append(
            pd.DataFrame({"unit": code, "period": months, "outcome": "perf", "value": 90.0, "denominator": 100.0})
        )
    raw = validate_panel(pd.concat(frames), "monthly", source="simulated")
    out, _ = harmonise(raw, "2015-01-01", "2015-12-01", links=_links(("A", "B", "2015-06-01")), check_continuity=False)
    assert out.units == ["B"]
    assert (out.data["value"] == 180).all() and (out.data["denominator"] == 200).all()


def test_resolve_maps_a_code_formed_after_the_window_to_its_predecessors() -> None:
    raw = _panel({"D": ("2013-04", "2019-03", 800), "E": ("2013-04", "2019-03", 900)})
    _, area_map = harmonise(
        raw, "2013-04-01", "2019-03-01", links=_links(("D", "F", "2020-04-01"), ("E", "F", "2020-04-01"))
    )
    areas, notes = resolve(["F"], area_map)
    assert areas == ("D", "E")
    assert "formed after the window" in notes[0]
    assert not any("partly" in n for n in notes)


def test_resolve_says_when_an_area_is_only_partly_covered() -> None:
    raw = _panel(
        {"A": ("2013-04", "2015-03", 500), "B": ("2013-04", "2015-03", 700), "C": ("2015-04", "2019-03", 1200)}
    )
    _, area_map = harmonise(
        raw, "2013-04-01", "2019-03-01", links=_links(("A", "C", "2015-04-01"), ("B", "C", "2015-04-01"))
    )
    areas, notes = resolve(["A"], area_map)
    assert areas == ("C",)
    assert any("partly covered" in n and "B" in n for n in notes)
    areas, notes = resolve(["C"], area_map)  # the merged code covers its predecessors wholly
    assert areas == ("C",) and not any("partly" in n for n in notes)


def test_level_shift_screen_finds_a_simulated_jump_and_nothing_else() -> None:
    rng = np.random.default_rng(7)
    frames = []
    for i in range(30):
        values = _series(rng, 2000 + 100 * i)
        if i == 4:  # a walk-in centre moves into this trust's return
            values = values * np.where(MONTHS >= "2016-10-01", 1.6, 1.0)
        frames.append(pd.DataFrame({"unit": f"T{i:02d}", "period": MONTHS, "outcome": "att", "value": values}))
    panel = validate_panel(pd.concat(frames), "monthly", source="simulated")
    flagged = structural_breaks(panel)
    assert list(flagged["unit"]) == ["T04"]
    row = flagged.iloc[0]
    assert row["month"] == pd.Timestamp("2016-10-01")
    assert row["change_pct"] == pytest.approx(60, abs=5)
    assert abs(row["step"]) > BREAK_FLOOR and "level shift of +" in row["reason"]


def test_suspect_run_is_found_and_imputed_from_the_usual_share() -> None:
    rng = np.random.default_rng(11)
    frames = []
    for i in range(25):
        values = _series(rng, 1000 + 40 * i)
        truth = values.copy() if i == 3 else None
        if i == 3:
            values = values * np.where((MONTHS >= "2014-07-01") & (MONTHS <= "2015-03-01"), 0.1, 1.0)
        frames.append(pd.DataFrame({"unit": f"C{i:02d}", "period": MONTHS, "outcome": "adm", "value": values}))
        if truth is not None:
            true_c03 = pd.Series(truth, index=MONTHS)
    panel = validate_panel(pd.concat(frames), "monthly", source="simulated")
    runs = suspect_runs(panel)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert (run["unit"], run["first"], run["last"], run["months"]) == (
        "C03",
        pd.Timestamp("2014-07-01"),
        pd.Timestamp("2015-03-01"),
        9,
    )
    assert run["ratio"] == pytest.approx(0.1, abs=0.02)
    fixed, notes = impute_suspect(panel, runs)
    imputed = fixed.wide("adm")["C03"].loc["2014-07-01":"2015-03-01"]
    assert np.allclose(imputed, true_c03.loc["2014-07-01":"2015-03-01"], rtol=0.08)
    assert len(notes) == 1 and "9 months Jul 2014 - Mar 2015 imputed" in notes[0]
    untouched = fixed.wide("adm").drop(columns="C03")
    pd.testing.assert_frame_equal(untouched, panel.wide("adm").drop(columns="C03"))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NORTHUMBERLAND CARE TRUST", "NORTHUMBERLAND"),
        ("NHS NORTHUMBERLAND CCG", "NORTHUMBERLAND"),
        ("BLACKBURN WITH DARWEN TEACHING CARE TRUST PLUS", "BLACKBURN WITH DARWEN"),
        ("STOCKTON-ON-TEES TEACHING PCT", "STOCKTON ON TEES"),
        ("NHS Bath & North East Somerset CCG", "BATH AND NORTH EAST SOMERSET"),
    ],
)
def test_name_key_strips_organisation_words(name: str, key: str) -> None:
    assert name_key(name) == key


@pytest.mark.unit
def test_covered_ignores_links_with_missing_codes() -> None:
    # The old groupby dropped missing codes; the loop keys them, so a missing code becomes "covered" and then
    # covers every code whose only predecessor is missing (C here). harmonise() accepts user links.
    from evallib.sources.area_map import _covered

    links = pd.DataFrame({"old_code": ["A", None, "B"], "new_code": ["B", "C", None]})
    assert _covered({"A"}, links) == {"A", "B"}
