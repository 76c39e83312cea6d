"""Make ``rollout.csv``: a service rolled out area by area, simulated with a known effect.

40 areas, monthly emergency admissions January 2012 to December 2018. Four areas started the service at three
dates (A01 and A02 in April 2016, A03 in January 2017, A04 in October 2017); from its own start each of them
has 12% fewer admissions than it would have had (a log effect of log(0.88)). Every area has its own level,
trend and monthly noise, and all share a seasonal pattern and a national trend. Run it from the project root
(``python examples/staggered/make_data.py``); the seed makes the file the same every time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

EFFECT = np.log(0.88)  # 12% fewer admissions from each area's own start
STARTS = {"A01": "2016-04", "A02": "2016-04", "A03": "2017-01", "A04": "2017-10"}


def rollout(seed: int = 2021, n_areas: int = 40) -> pd.DataFrame:
    """The simulated file: one row per area and month (``area``, ``month``, ``admissions``)."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2012-01", "2018-12", freq="MS")
    t = np.arange(len(months)) / 12
    season = 0.08 * np.cos(2 * np.pi * (months.month - 1) / 12)
    national = 0.02 * t + np.cumsum(rng.normal(0, 0.01, len(months)))
    rows = []
    for i in range(n_areas):
        area = f"A{i + 1:02d}"
        level = np.log(rng.uniform(800, 3000)) + rng.normal(0, 0.01) * t
        log_mean = level + national + season + rng.normal(0, 0.03, len(months))
        if area in STARTS:
            log_mean = log_mean + EFFECT * (months >= pd.Timestamp(STARTS[area]))
        counts = rng.poisson(np.exp(log_mean))
        rows.append(pd.DataFrame({"area": area, "month": months.strftime("%Y-%m"), "admissions": counts}))
    return pd.concat(rows, ignore_index=True)


if __name__ == "__main__":
    out = Path(__file__).with_name("rollout.csv")
    rollout().to_csv(out, index=False)
    print(f"wrote {out}")
