"""Make ``clinics.csv``: weekly attendances at a service's areas, simulated with a known effect.

40 areas, weekly attendances for the ISO weeks from Monday 4 January 2016 to Monday 31 December 2018 (157
weeks, each row dated by its Monday). Three areas (W01, W02, W03) started the service in the week of Monday
1 January 2018 (ISO week 2018-W01); from then each has 8% fewer attendances than it would have had (a log
effect of log(0.92)). Every area has its own level and trend, week-to-week noise that carries over from one
week to the next (AR(1), 0.5), and all share a seasonal pattern over the year (a winter peak) and a national
trend (:func:`evallib.methods.simulate.simulate_weekly_counts`). Run it from the project root (``python
examples/weekly/make_data.py``); the seed makes the file the same every time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evallib.methods.simulate import simulate_weekly_counts

EFFECT = np.log(0.92)  # 8% fewer attendances from the start
TREATED = ("W01", "W02", "W03")
START = "2018-01-01"  # the Monday of ISO week 2018-W01


def clinics(seed: int = 2022, n_areas: int = 40) -> pd.DataFrame:
    """The simulated file: one row per area and ISO week (``area``, ``week``, ``attendances``)."""
    starts = dict.fromkeys(TREATED, START)
    return simulate_weekly_counts(np.random.default_rng(seed), starts, effect=EFFECT, n_areas=n_areas)


if __name__ == "__main__":
    out = Path(__file__).with_name("clinics.csv")
    clinics().to_csv(out, index=False)
    print(f"wrote {out}")
