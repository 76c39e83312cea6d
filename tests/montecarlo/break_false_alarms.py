"""How often the screen of a site's own series reads noise as a level shift, on the Monte Carlo suite's panels.

Run as ``python -m tests.montecarlo.break_false_alarms [panels]`` (default 300; about a second a panel). Each
panel is the site suite's simulated vanguard design (:data:`.site_sim.VANGUARD`: 143 CCG-like series, 60 months,
no break anywhere) with the seeds of its exchangeable and volatile scenarios; every series is screened as a
site's own area would be (:func:`evallib.evaluation.site.breaks.find_shifts`), and the whole site's screen
(:func:`evallib.evaluation.site.breaks.screen_site`, its three treated areas) is run on each panel too; with a
true -20% effect from the start, the treated series are screened past the shift at the start, as a site's are. Printed:
the share of series flagged by the site screen and by the comparison pools' rule alone, and the share of
three-area sites the site screen cuts or makes not evaluable. The numbers are in ``tests/test_site_breaks.py``
and the README.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import pandas as pd

from evallib.errors import NotEvaluable
from evallib.evaluation.site.breaks import find_shifts, near_start, screen_site
from evallib.methods.simulate import simulate_nhs_panel
from evallib.sources.panel import validate_panel
from evallib.sources.quality import structural_breaks

from .site_sim import VANGUARD, protocol


def screen_panel(
    seed: int, treated_volatility: float | None = None, n_treated: int = 3, effect: float = 0.0
) -> dict[str, Any]:
    """One simulated panel: series flagged by the site screen and by the pools' rule, and the site's outcome."""
    d = VANGUARD
    frame = simulate_nhs_panel(
        d.n_comparators + n_treated,
        d.n_pre + d.n_post,
        n_treated=n_treated,
        start_period=d.n_pre,
        effect=effect,
        treated_volatility=treated_volatility,
        noise_spread=d.noise_spread,
        first_month=d.first_month,
        seed=seed,
    )
    panel = validate_panel(frame[["unit", "period", "value"]].assign(outcome=d.outcome), "monthly", source="sim")
    start, end = d.months[0], d.months[-1]
    # Every series of an exchangeable null panel; otherwise the treated ones (the volatile one, those with the effect).
    units = [f"T{i:03d}" for i in range(n_treated)] if treated_volatility or effect else sorted(frame["unit"].unique())
    if treated_volatility:
        units = units[:1]
    p = protocol(d, n_treated)
    near = near_start(d.months, p)  # a shift there is the effect, kept and said, not a false alarm
    site = [s for s in find_shifts(panel, d.outcome, start, end, units) if s.month not in near]
    pool = structural_breaks(panel, d.outcome, start, end, units=units)
    pool = pool[~pool["month"].isin(near)]
    try:
        cut, _, breaks = screen_site(p, panel, d.outcome, p.treated_units, "admissions", "month")
        outcome = "cut" if cut != p else ("kept" if breaks else "clean")
    except NotEvaluable:
        outcome = "not evaluable"
    return {"series": len(units), "site": len(site), "pool": len(pool), "outcome": outcome}


def measure(panels: int) -> pd.DataFrame:
    """Each scenario over ``panels`` panels (seeds of ``test_mc_site``'s 3-treated sites)."""
    rows = []
    scenarios = (
        ("exchangeable, no effect", None, 0.0, 20_000),
        ("exchangeable, -20% from the start", None, math.log(0.8), 25_000),
        ("first treated 3x volatile, no effect", 3.0, 0.0, 40_000),
    )
    for name, vol, effect, seed in scenarios:
        for i in range(panels):
            rows.append({"scenario": name, **screen_panel(seed + 2 * i, vol, effect=effect)})
    return pd.DataFrame(rows)


def main(panels: int = 300) -> None:
    r = measure(panels)
    for name, g in r.groupby("scenario", sort=False):
        n = int(g["series"].sum())
        print(
            f"{name}: {len(g)} panels, {n} series; site screen flags {int(g['site'].sum())} "
            f"({100 * g['site'].sum() / n:.2f}%), the pools' rule alone {int(g['pool'].sum())} "
            f"({100 * g['pool'].sum() / n:.2f}%); three-area sites: "
            + ", ".join(f"{k} {v}" for k, v in g["outcome"].value_counts().items())
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
