"""The level-shift screens on weekly data: a planted weekly break is found, unbroken weekly series are not flagged.

Simulated weekly panels (:mod:`tests.montecarlo.weekly_break_false_alarms`: 143 areas, 157 ISO weeks, Poisson
counts of about 50 to 500 a week, AR(1) noise that carries over for weeks) are screened at the monthly thresholds
per period. A break planted in one area's pre-period is found at its week, said by its Monday, and the site's
window cut there (the new pre-period start a Monday); the false-alarm rates measured over 100 panels per scenario
(:data:`MEASURED`) are the README's, and a few panels here hold them.
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


def _panel(**kw: object) -> object:
    return validate_panel(weekly_panel(11, **kw).assign(outcome=OUTCOME), "weekly", source="sim")  # type: ignore[arg-type]


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
#: flagged by the site screen, flagged by the pools' rule alone, three-area sites cut, not evaluable), 100 panels.
MEASURED = {
    "exchangeable, no effect": (14_300, 0, 0, 0, 0),
    "exchangeable, -20% from the start": (300, 0, 0, 0, 0),
    "first treated 3x volatile, no effect": (100, 0, 0, 0, 0),
}


@pytest.mark.integration
def test_unbroken_weekly_series_are_not_flagged() -> None:
    """A few panels of each scenario (the measured rates over 100 panels are :data:`MEASURED`)."""
    exchangeable = pd.DataFrame([screen_panel(60_000 + 2 * i) for i in range(3)])
    assert exchangeable["site"].sum() <= MEASURED["exchangeable, no effect"][1]
    assert set(exchangeable["outcome"]) == {"clean"}
    volatile = pd.DataFrame([screen_panel(70_000 + 2 * i, 3.0) for i in range(6)])
    assert volatile["site"].sum() == 0 and set(volatile["outcome"]) <= {"clean", "kept"}


@pytest.mark.unit
def test_measured_weekly_false_alarm_rates_are_the_readmes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    series, flagged = MEASURED["exchangeable, no effect"][:2]
    assert f"{flagged} of {series:,} simulated weekly series" in readme
