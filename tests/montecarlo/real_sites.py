"""Fake sites on the bundled data, evaluated through ``evaluate_site`` exactly as a report is.

A real protocol (its windows, data source, outcome, pool rule and primary estimator) is re-pointed at one
eligible comparison CCG at a time (:func:`fake_protocol`): nothing happened there, so its answer's p-value tests a
true null. :func:`inject` multiplies the fake site's outcome after the start by ``exp(effect)`` (the panel passed to
``evaluate_site`` as ``panel=``), to check what the answer's reported minimum detectable effect claims.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from evallib.evaluation.site.coverage import analysis_frame, load_source
from evallib.evaluation.site.evaluate import evaluate_site
from evallib.methods.inference.volatility import pre_period_noise
from evallib.protocol.params import AnalysisSpec, SiteProtocol, find_params, load_params
from evallib.protocol.paths import project_root
from evallib.sources.bundled import RATE_OUTCOMES
from evallib.sources.panel import Panel

from .sim import run_all

#: The real vanguard windows on commissioner data: the protocols of V01 (start April 2015) and of a site starting
#: August 2015; both lead with synthetic DiD, their pools are the eligible non-vanguard CCGs.
PROTOCOLS = ("V01", "V30")


@cache
def real_protocol(site_id: str) -> SiteProtocol:
    """The committed protocol of a site."""
    for f in find_params(project_root() / "params"):
        p = load_params(f)
        if p.site_id == site_id:
            return replace(p, design_pool=())  # the rule's whole pool, whatever pool the design step chose
    raise KeyError(site_id)


def fake_protocol(p: SiteProtocol, unit: str) -> SiteProtocol:
    """The protocol with ``unit`` as its only treated area, its primary outcome alone (secondary analyses dropped)."""
    m = p.to_mapping()
    m.update(
        site_id=f"FAKE{unit}",
        site_name=f"Fake site {unit}",
        treated_units=[unit],
        secondary_outcomes=[],
        secondary_analyses=[],
        comparison_include=[],
        comparison_exclude=[],
    )
    return SiteProtocol.from_mapping(m)


def pool_and_noise(p: SiteProtocol) -> pd.Series:
    """The protocol's eligible comparison areas and each one's pre-period noise (the calibration study's measure)."""
    spec = AnalysisSpec(p.primary_outcome, p.data_source, p.treated_units, True)
    values, denom, cov = analysis_frame(p, load_source(p.data_source), spec)
    pool = list(cov.comparators)
    per = RATE_OUTCOMES.get(p.primary_outcome)
    unit_values = values[pool] if denom is None else (per or 100) * values[pool] / denom[pool]
    y = np.log(unit_values.to_numpy(float)).T
    post = np.asarray(unit_values.index >= p.windows.post_start)
    return pd.Series(pre_period_noise(y, post), index=pool, name="noise")


def inject(panel: Panel, unit: str, start: pd.Timestamp, effect: float) -> Panel:
    """The panel with ``unit``'s counts from ``start`` on multiplied by ``exp(effect)`` (every outcome of it)."""
    df = panel.data.copy()
    hit = (df["unit"] == unit) & (df["period"] >= start)
    df.loc[hit, "value"] = df.loc[hit, "value"] * math.exp(effect)
    return replace(panel, data=df)


@cache
def _source(name: str) -> Panel:
    return load_source(name)


@dataclass(frozen=True)
class Task:
    """One fake site: the real protocol it copies, the fake treated unit and an effect to inject (log; 0 for none)."""

    site_id: str
    unit: str
    effect: float = 0.0


def evaluate_fake(task: Task) -> dict[str, Any]:
    """The fake site's answer: estimator, estimate, p-value, conclusion, reported MDE, volatile-site rule."""
    t0 = time.process_time()
    p = fake_protocol(real_protocol(task.site_id), task.unit)
    panel = None
    if task.effect:
        panel = inject(_source(p.data_source), task.unit, p.windows.post_start, task.effect)
    ev = evaluate_site(p, panel=panel)
    a = ev.primary
    ans = ev.answer
    return {
        "site_id": task.site_id,
        "unit": task.unit,
        "effect": task.effect,
        "status": ev.status,
        "estimator": ans.estimator if ans else "",
        "estimate": ans.row.estimate if ans else math.nan,
        "p_value": ans.row.p_value if ans else math.nan,
        "conclusion": ans.conclusion if ans else "",
        "mde": ans.mde if ans else math.nan,
        "volatile": bool(a.volatile) if a is not None else False,
        "cpu_s": time.process_time() - t0,
    }


def evaluate_fakes(tasks: list[Task]) -> pd.DataFrame:
    """:func:`evaluate_fake` over the tasks, spread over the worker processes (``EVALLIB_MC_WORKERS``)."""
    return pd.DataFrame(run_all(evaluate_fake, tasks))
