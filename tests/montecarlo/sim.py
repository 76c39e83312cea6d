"""NHS-like replications for the Monte Carlo suite: many panels drawn at once, served as DataFrames, and a
process pool to spread replications over the cores."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
import pandas as pd

from evallib.methods.inference.decision import ALPHA, rejects
from evallib.methods.simulate import nhs_log_panels, panel_frame

N_UNITS, N_PERIODS, START = 130, 96, 60
START_DATE = pd.Timestamp("2016-04-01")  # period 60 of months from 2011-04
__all__ = ["ALPHA", "rejects"]  # the library's one rule for a rejection, shared by every Monte Carlo test


def mc_se(p: float, reps: int) -> float:
    """Monte Carlo standard error of a rejection or coverage rate ``p`` over ``reps`` replications."""
    return float(np.sqrt(p * (1 - p) / reps))


def within(rate: float, nominal: float, reps: int) -> bool:
    """True when ``rate`` is within 3 Monte Carlo standard errors of ``nominal``."""
    return abs(rate - nominal) <= 3 * mc_se(nominal, reps)


def panel_chunk(m: int, *, seed: int, done: int = 0, n_treated: int = 1, **kw: object) -> Iterator[pd.DataFrame]:
    """The ``m`` panels of one chunk of :func:`panels` (the one starting at replication ``done``)."""
    log_mu, vol = nhs_log_panels(m, N_UNITS, N_PERIODS, n_treated=n_treated, start_period=START, seed=seed + done, **kw)
    counts = np.random.default_rng(seed + 10_000 + done).poisson(np.exp(log_mu)).astype(float)
    template = panel_frame(counts[0], log_mu[0], vol[0], n_treated, START)
    for r in range(m):
        yield template.assign(value=counts[r].ravel())


def panels(reps: int, *, seed: int, n_treated: int = 1, chunk: int = 100, **kw: object) -> Iterator[pd.DataFrame]:
    """``reps`` panels of monthly counts (130 trusts x 96 months, start at month 60) in long form."""
    for done in range(0, reps, chunk):
        yield from panel_chunk(min(chunk, reps - done), seed=seed, done=done, n_treated=n_treated, **kw)


def workers() -> int:
    """Processes for the replications: ``EVALLIB_MC_WORKERS``, by default 2 (the suite's budget is 2 cores)."""
    return max(1, int(os.environ.get("EVALLIB_MC_WORKERS", "2")))


def run_all(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
    """``fn`` over ``tasks`` in a pool of forked processes, results in order (serially with one worker).

    ``fn`` must be a module-level function (or a ``functools.partial`` of one) so that it can be pickled.
    """
    n = min(workers(), len(tasks))
    if n <= 1:
        return [fn(t) for t in tasks]
    with ProcessPoolExecutor(n, mp_context=get_context("fork")) as pool:
        return list(pool.map(fn, tasks, chunksize=max(1, len(tasks) // (8 * n))))


def _chunk_job(job: tuple[Callable[[pd.DataFrame], Any], int, int, int, dict[str, Any]]) -> list[Any]:
    fn, m, seed, done, kw = job
    return [fn(d) for d in panel_chunk(m, seed=seed, done=done, **kw)]


def over_panels(fn: Callable[[pd.DataFrame], Any], reps: int, *, seed: int, chunk: int = 100, **kw: Any) -> list[Any]:
    """``fn(panel)`` for each panel of ``panels(reps, seed=seed, **kw)``, in order, one process task per chunk.

    The panels are those :func:`panels` draws with the same arguments, so results do not depend on the
    number of workers.
    """
    jobs = [(fn, min(chunk, reps - done), seed, done, kw) for done in range(0, reps, chunk)]
    return [x for part in run_all(_chunk_job, jobs) for x in part]


def rate(hits: list[bool]) -> float:
    return float(np.mean(hits))


def record(estimator: str, scenario: str, reps: int, **rates: float) -> None:
    """Append measured rates to the JSON-lines file named by ``EVALLIB_MC_RECORD`` (for the README table)."""
    path = os.environ.get("EVALLIB_MC_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"estimator": estimator, "scenario": scenario, "reps": reps, **rates}) + "\n")
