"""NHS-like replications for the Monte Carlo suite: many panels drawn at once, served as DataFrames."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd

from evallib.methods.simulate import nhs_log_panels, panel_frame

N_UNITS, N_PERIODS, START = 130, 96, 60
START_DATE = pd.Timestamp("2016-04-01")  # period 60 of months from 2011-04
ALPHA = 0.05


def mc_se(p: float, reps: int) -> float:
    """Monte Carlo standard error of a rejection or coverage rate ``p`` over ``reps`` replications."""
    return float(np.sqrt(p * (1 - p) / reps))


def within(rate: float, nominal: float, reps: int) -> bool:
    """True when ``rate`` is within 3 Monte Carlo standard errors of ``nominal``."""
    return abs(rate - nominal) <= 3 * mc_se(nominal, reps)


def panels(reps: int, *, seed: int, n_treated: int = 1, chunk: int = 100, **kw: object) -> Iterator[pd.DataFrame]:
    """``reps`` panels of monthly counts (130 trusts x 96 months, start at month 60) in long form."""
    template: pd.DataFrame | None = None
    done = 0
    while done < reps:
        m = min(chunk, reps - done)
        log_mu, vol = nhs_log_panels(
            m, N_UNITS, N_PERIODS, n_treated=n_treated, start_period=START, seed=seed + done, **kw
        )
        counts = np.random.default_rng(seed + 10_000 + done).poisson(np.exp(log_mu)).astype(float)
        for r in range(m):
            if template is None:
                template = panel_frame(counts[r], log_mu[r], vol[r], n_treated, START)
            yield template.assign(value=counts[r].ravel())
        done += m


def rate(hits: list[bool]) -> float:
    return float(np.mean(hits))


def record(estimator: str, scenario: str, reps: int, **rates: float) -> None:
    """Append measured rates to the JSON-lines file named by ``EVALLIB_MC_RECORD`` (for the README table)."""
    path = os.environ.get("EVALLIB_MC_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"estimator": estimator, "scenario": scenario, "reps": reps, **rates}) + "\n")
