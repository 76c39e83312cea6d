"""The level-shift screens on weekly data: a planted weekly break is found, unbroken weekly series are not flagged.

Simulated weekly panels (:mod:`tests.montecarlo.weekly_break_false_alarms`: 143 areas, 157 ISO weeks, Poisson
counts of about 50 to 500 a week, AR(1) noise that carries over for weeks) are screened at the monthly thresholds
per period. A break planted in one area's pre-period is found at its week, said by its Monday, and the site's
window cut there (the new pre-period start a Monday); the false-alarm rates measured over 100 panels per scenario
(:data:`MEASURED`) are the README's, and a few panels here hold them; a weekly comparison pool is screened by
the site screen's rule, since the pools' rule alone reads weekly noise as a shift in 1 series in 8.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evallib.evaluation.site.breaks import find_shifts, screen_site
from evallib.sources.panel import validate_panel
from evallib.sources.quality import structural_breaks
from tests.montecarlo.weekly_break_false_alarms import (
    OUTCOME,
    START,
    WEEKS,
    screen_panel,
    weekly_panel,
    weekly_protocol,
)

from .conftest import ROOT

BREAK_WEEK = 40  # Monday 10 October 2016, in the pre-period


def _panel(seed: int = 11, **kw: object) -> object:
    return validate_panel(weekly_panel(seed, **kw).assign(outcome=OUTCOME), "weekly", source="sim")  # type: ignore[arg-type]


@pytest.mark.unit
def test_a_planted_weekly_break_is_found_at_its_week_and_said_by_its_monday() -> None:
    panel = _panel(breaks={5: (BREAK_WEEK, math.log(0.6))})
    found = structural_breaks(panel, OUTCOME, units=["T004", "T005", "T006"], own_noise=True)  # type: ignore[arg-type]
    assert list(found["unit"]) == ["T005"]
    (row,) = found.itertuples()
    assert abs((row.month - WEEKS[BREAK_WEEK]).days) <= 7 and row.change_pct == pytest.approx(-40, abs=6)
    assert f"in the week of {row.month.day} {row.month:%b %Y}" in row.reason and "week-to-week noise" in row.reason
    assert [s.unit for s in find_shifts(panel, OUTCOME, WEEKS[0], WEEKS[-1], ["T004", "T005", "T006"])] == ["T005"]  # type: ignore[arg-type]


@pytest.mark.unit
def test_a_weekly_break_in_the_sites_pre_period_cuts_the_window_at_its_monday() -> None:
    panel = _panel(breaks={2: (BREAK_WEEK, math.log(0.6))})
    p = weekly_protocol()
    cut, _, breaks = screen_site(p, panel, OUTCOME, p.treated_units, "admissions", "week")  # type: ignore[arg-type]
    (b,) = breaks
    assert (b.unit, b.action, b.frequency) == ("T002", "cut", "weekly")
    monday = b.month
    assert monday.day_of_week == 0 and abs((monday - WEEKS[BREAK_WEEK]).days) <= 7
    assert cut.pre_period_start == f"{monday:%Y-%m-%d}" and cut.post_period_end == p.post_period_end
    assert f"the pre-period now starts at the shift ({monday.day} {monday:%b %Y}, was 4 Jan 2016)" in b.detail
    assert "pre-period weeks remain" in b.detail
    assert f"in the week of {monday.day} {monday:%b %Y}" in b.words
    assert b.to_json_dict()["month"] == f"{monday:%Y-%m-%d}"


@pytest.mark.unit
def test_an_unbroken_weekly_site_is_left_alone() -> None:
    panel = _panel()
    p = weekly_protocol()
    cut, areas, breaks = screen_site(p, panel, OUTCOME, p.treated_units, "admissions", "week")  # type: ignore[arg-type]
    assert breaks == () and cut == p and areas.treated == p.treated_units


@pytest.mark.unit
def test_a_weekly_effect_at_the_start_is_kept_not_cut() -> None:
    panel = _panel(effect=math.log(0.6))
    p = weekly_protocol()
    cut, _, breaks = screen_site(p, panel, OUTCOME, p.treated_units, "admissions", "week")  # type: ignore[arg-type]
    assert cut == p and all(b.action == "at the start" for b in breaks)
    assert all(abs((b.month - WEEKS[START]).days) <= 21 for b in breaks)


#: ``python -m tests.montecarlo.weekly_break_false_alarms 100`` (the README quotes it): scenario -> (series,
#: flagged by the site screen, flagged by the monthly pools' rule alone, three-area sites cut, not evaluable), 100
#: panels each. The site screen, which weekly comparison pools now use too, flags 0.13% of unbroken weekly series
#: (monthly: 0.02%); the pools' rule alone, 12.6%. A -40% break is found in 76 of 100 panels.
MEASURED = {
    "exchangeable, no effect": (14_300, 19, 1_807, 2, 0),
    "exchangeable, -20% from the start": (300, 1, 35, 1, 0),
    "first treated 3x volatile, no effect": (100, 1, 89, 0, 1),
    "a -40% break in a treated area's pre-period": (100, 76, 0, 75, 2),
}


@pytest.mark.integration
def test_unbroken_weekly_series_are_not_flagged() -> None:
    """A few panels of each scenario (the measured rates over 100 panels are :data:`MEASURED`)."""
    exchangeable = pd.DataFrame([screen_panel(60_000 + 2 * i) for i in range(3)])  # 429 series
    assert exchangeable["site"].sum() <= 1 and set(exchangeable["outcome"]) == {"clean"}
    assert exchangeable["pool"].sum() / exchangeable["series"].sum() > 0.05  # why weekly pools use the site screen
    volatile = pd.DataFrame([screen_panel(70_000 + 2 * i, 3.0) for i in range(6)])
    assert volatile["site"].sum() == 0 and set(volatile["outcome"]) <= {"clean", "kept"}


@pytest.mark.unit
def test_measured_weekly_false_alarm_rates_are_the_readmes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    series, flagged, pool = MEASURED["exchangeable, no effect"][:3]
    assert f"{flagged} of {series:,} simulated weekly series" in readme
    assert f"{100 * pool / series:.1f}%" in readme
    found = MEASURED["a -40% break in a treated area's pre-period"][1]
    assert f"a -40% break planted in a site's pre-period is found in {found} of 100" in readme


@pytest.mark.unit
def test_a_weekly_comparison_pool_keeps_unbroken_units_the_pools_rule_alone_would_drop() -> None:
    from evallib.evaluation.site.units import area_data

    panel = _panel(60_000, breaks={7: (BREAK_WEEK, math.log(0.6))})  # a panel of the measured rates' first seed
    pools_rule = structural_breaks(panel, OUTCOME)  # type: ignore[arg-type]
    areas = area_data(panel, OUTCOME, ("T000",), WEEKS[0], WEEKS[-1])  # type: ignore[arg-type]
    assert len(pools_rule) > 10  # periods read as independent: weekly noise looks like shifts
    assert set(areas.screened) == {"T007"}  # the planted break only
    assert "in the week of" in areas.screened["T007"]
