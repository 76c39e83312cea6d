"""How often the level-shift screens read noise as a break in weekly series, on simulated weekly panels.

Run as ``python -m tests.montecarlo.weekly_break_false_alarms [panels]`` (default 100). Each panel is
:func:`weekly_panel`: 143 CCG-like areas over 157 ISO weeks (three years, Monday 4 January 2016 on), no break
anywhere (and a fourth scenario with a -40% break planted in week 40 of the first treated area: how often the
site screen finds it); each area's log mean is its level (weekly counts of about 50 to 500) plus its own drift, a shared
52-week season and national path, and its own AR(1) noise (lag-one correlation 0.85 a week: about the monthly
0.6 of :func:`evallib.methods.simulate.simulate_nhs_panel` over a month's four weeks; marginal SD 0.05 times a
log-normal volatility, spread 0.5), counts Poisson given the mean. A weekly series therefore has several times a
monthly one's Poisson noise per period, and noise that carries over for weeks. The screens run at the same
thresholds per period as on monthly data (:mod:`evallib.sources.quality`: 6-period means either side, a step
beyond 0.2 log points and 5 standard errors; for a site's own series 5 robust SDs of its own steps); every series
is screened as a site's own area would be (:func:`evallib.evaluation.site.breaks.find_shifts`) and by the
comparison pools' rule alone, and the whole site's screen runs on three treated areas; with a true -20% effect
from the start, the treated series are screened past the shift at the start, as a site's are. The numbers are in
``tests/test_weekly_breaks.py`` and the README.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pandas as pd

from evallib.errors import NotEvaluable
from evallib.evaluation.site.breaks import find_shifts, near_start, screen_site
from evallib.protocol.params import SiteProtocol
from evallib.sources.panel import validate_panel
from evallib.sources.quality import structural_breaks

WEEKS = pd.date_range("2016-01-04", periods=157, freq="W-MON")
START = 78  # the site's start: the week of Monday 3 July 2017
N_AREAS = 143
OUTCOME = "admissions"


def weekly_panel(
    seed: int,
    n_areas: int = N_AREAS,
    *,
    n_treated: int = 3,
    effect: float = 0.0,
    treated_volatility: float | None = None,
    breaks: dict[int, tuple[int, float]] | None = None,
) -> pd.DataFrame:
    """Long frame (``unit``, ``period``, ``value``) of weekly counts; the first ``n_treated`` units ``T000``.. are
    treated (``effect``, a log, from week :data:`START`); ``breaks`` maps a unit's index to (week, log step).
    """
    rng = np.random.default_rng(seed)
    t_ = len(WEEKS)
    years = np.arange(t_) / 52
    day = (WEEKS.day_of_year.to_numpy() - 1) / 365.25
    season = 0.08 * np.cos(2 * np.pi * day) + 0.03 * np.sin(4 * np.pi * day)
    national = 0.02 * years + np.cumsum(rng.normal(0, 0.004, t_))
    vol = np.exp(rng.normal(0, 0.5, n_areas))
    if treated_volatility is not None:
        vol[0] = treated_volatility
    level = np.log(rng.uniform(50, 500, n_areas))
    drift = rng.normal(0, 0.02, n_areas) * vol
    rho, sd = 0.85, 0.05
    shocks = rng.normal(0, sd * math.sqrt(1 - rho**2), (n_areas, t_)) * vol[:, None]
    ar = np.zeros((n_areas, t_))
    ar[:, 0] = rng.normal(0, sd, n_areas) * vol
    for j in range(1, t_):
        ar[:, j] = rho * ar[:, j - 1] + shocks[:, j]
    log_mu = level[:, None] + drift[:, None] * years + season + national + ar
    log_mu[:n_treated, START:] += effect
    for i, (week, step) in (breaks or {}).items():
        log_mu[i, week:] += step
    counts = rng.poisson(np.exp(log_mu))
    units = [f"T{i:03d}" for i in range(n_areas)]
    return pd.DataFrame(
        {"unit": np.repeat(units, t_), "period": np.tile(WEEKS, n_areas), "value": counts.ravel().astype(float)}
    )


def weekly_protocol(treated: tuple[str, ...] = ("T000", "T001", "T002"), **changes: object) -> SiteProtocol:
    """A weekly site of ``treated`` starting in week :data:`START`, a pre-period from the first week."""
    m: dict[str, object] = {
        "site_id": "weekly_sim",
        "site_name": "Simulated weekly site",
        "site_type": "other",
        "care_model": "other",
        "membership_confidence": "high",
        "treated_units": list(treated),
        "intervention_start": f"{WEEKS[START]:%Y-%m-%d}",
        "primary_outcome": OUTCOME,
        "expected_direction": "decrease",
        "pre_period_start": f"{WEEKS[0]:%Y-%m-%d}",
        "pre_period_end": f"{WEEKS[START - 1]:%Y-%m-%d}",
        "post_period_end": f"{WEEKS[-1]:%Y-%m-%d}",
        "min_pre_periods": 26,
        "min_post_periods": 13,
        "comparison_pool": "all_eligible",
        "type1_comparators_only": False,
        "data_source": {
            "path": "sim.csv",
            "unit": "area",
            "period": "week",
            "frequency": "weekly",
            "outcomes": [OUTCOME],
        },
    }
    m.update(changes)
    return SiteProtocol.from_mapping(m, "weekly_sim.yaml")


def screen_panel(seed: int, treated_volatility: float | None = None, effect: float = 0.0) -> dict[str, Any]:
    """One simulated weekly panel: series flagged by the site screen and by the pools' rule, and the site's outcome."""
    frame = weekly_panel(seed, effect=effect, treated_volatility=treated_volatility)
    panel = validate_panel(frame.assign(outcome=OUTCOME), "weekly", source="sim")
    start, end = WEEKS[0], WEEKS[-1]
    units = ["T000", "T001", "T002"] if treated_volatility or effect else sorted(frame["unit"].unique())
    if treated_volatility:
        units = units[:1]
    p = weekly_protocol()
    near = near_start(WEEKS, p)  # a shift there is the effect, kept and said, not a false alarm
    site = [s for s in find_shifts(panel, OUTCOME, start, end, units) if s.month not in near]
    pool = structural_breaks(panel, OUTCOME, start, end, units=units)
    pool = pool[~pool["month"].isin(near)]
    try:
        cut, _, found = screen_site(p, panel, OUTCOME, p.treated_units, "admissions", "week")
        outcome = "cut" if cut != p else ("kept" if found else "clean")
    except NotEvaluable:
        outcome = "not evaluable"
    return {"series": len(units), "site": len(site), "pool": len(pool), "outcome": outcome}


def detect_panel(seed: int, step: float = math.log(0.6), week: int = 40) -> dict[str, Any]:
    """One weekly panel with a break of ``step`` (a log) at ``week`` in the first treated area's pre-period:
    whether the site screen finds it within a week of its Monday, and what the site's screen did.
    """
    frame = weekly_panel(seed, breaks={0: (week, step)})
    panel = validate_panel(frame.assign(outcome=OUTCOME), "weekly", source="sim")
    found = find_shifts(panel, OUTCOME, WEEKS[0], WEEKS[-1], ["T000"])
    hit = any(abs((s.month - WEEKS[week]).days) <= 7 for s in found)
    p = weekly_protocol()
    try:
        cut, _, _ = screen_site(p, panel, OUTCOME, p.treated_units, "admissions", "week")
        outcome = "cut" if cut != p else "clean"
    except NotEvaluable:
        outcome = "not evaluable"
    return {"series": 1, "site": int(hit), "pool": 0, "outcome": outcome}


def measure(panels: int) -> pd.DataFrame:
    """Each scenario over ``panels`` panels."""
    rows = []
    scenarios = (
        ("exchangeable, no effect", None, 0.0, 60_000),
        ("exchangeable, -20% from the start", None, math.log(0.8), 65_000),
        ("first treated 3x volatile, no effect", 3.0, 0.0, 70_000),
    )
    for name, vol, effect, seed in scenarios:
        for i in range(panels):
            rows.append({"scenario": name, **screen_panel(seed + 2 * i, vol, effect=effect)})
    for i in range(panels):  # the power side: a -40% break planted in the site's pre-period
        rows.append({"scenario": "a -40% break in a treated area's pre-period", **detect_panel(75_000 + 2 * i)})
    return pd.DataFrame(rows)


def main(panels: int = 100) -> None:
    r = measure(panels)
    for name, g in r.groupby("scenario", sort=False):
        n = int(g["series"].sum())
        print(
            f"{name}: {len(g)} panels, {n} series; site screen flags {int(g['site'].sum())} "
            f"({100 * g['site'].sum() / n:.2f}%), the monthly pools' rule alone {int(g['pool'].sum())} "
            f"({100 * g['pool'].sum() / n:.2f}%); three-area sites: "
            + ", ".join(f"{k} {v}" for k, v in g["outcome"].value_counts().items())
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
