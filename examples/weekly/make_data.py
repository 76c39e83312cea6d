"""Make ``clinics.csv``: weekly attendances at a service's areas, simulated with a known effect.

40 areas, weekly attendances for the ISO weeks from Monday 4 January 2016 to Monday 31 December 2018 (157
weeks, each row dated by its Monday). Three areas (W01, W02, W03) started the service in the week of Monday
1 January 2018 (ISO week 2018-W01); from then each has 8% fewer attendances than it would have had (a log
effect of log(0.92)). Every area has its own level and trend, week-to-week noise that carries over from one
week to the next (AR(1), 0.5), and all share a seasonal pattern over the year (a winter peak) and a national
trend. Run it from the project root (``python examples/weekly/make_data.py``); the seed makes the file the
same every time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

EFFECT = np.log(0.92)  # 8% fewer attendances from the start
TREATED = ("W01", "W02", "W03")
START = "2018-01-01"  # the Monday of ISO week 2018-W01


def clinics(seed: int = 2022, n_areas: int = 40) -> pd.DataFrame:
    """The simulated file: one row per area and ISO week (``area``, ``week``, ``attendances``)."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2016-01-04", "2018-12-31", freq="W-MON")
    t = np.arange(len(weeks)) / 52
    year = (weeks.day_of_year.to_numpy() - 1) / 365.25
    season = 0.10 * np.cos(2 * np.pi * year) + 0.03 * np.sin(4 * np.pi * year)
    national = 0.02 * t + np.cumsum(rng.normal(0, 0.005, len(weeks)))
    rows = []
    for i in range(n_areas):
        area = f"W{i + 1:02d}"
        level = np.log(rng.uniform(200, 900)) + rng.normal(0, 0.01) * t
        noise = np.zeros(len(weeks))
        shocks = rng.normal(0, 0.03, len(weeks))
        for j in range(len(weeks)):
            noise[j] = (0.5 * noise[j - 1] if j else 0.0) + shocks[j]
        log_mean = level + national + season + noise
        if area in TREATED:
            log_mean = log_mean + EFFECT * (weeks >= pd.Timestamp(START))
        counts = rng.poisson(np.exp(log_mean))
        rows.append(pd.DataFrame({"area": area, "week": weeks.strftime("%Y-%m-%d"), "attendances": counts}))
    return pd.concat(rows, ignore_index=True)


if __name__ == "__main__":
    out = Path(__file__).with_name("clinics.csv")
    clinics().to_csv(out, index=False)
    print(f"wrote {out}")
