"""The design step's data: a site's primary outcome before its planned start, and the candidate comparison pools.

Read through the protocol's windows moved to end at ``pre_period_end``, with the protocol's pool rules, so the
follow-up's values are never read (:mod:`evallib.evaluation.studies.design` uses them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from evallib.errors import DataError, NotEvaluable
from evallib.evaluation.site.coverage import (
    PERIODS_PER_YEAR,
    Coverage,
    analysis_frame,
    excluded_by_rule,
    load_source,
    unit_kind,
)
from evallib.evaluation.site.volatile import VOLATILE_PERCENTILE, site_noise_percentile
from evallib.methods.inference.volatility import pre_period_noise, volatility_rank
from evallib.protocol.params import AnalysisSpec, SiteProtocol
from evallib.protocol.windows import period_label, period_text
from evallib.sources.bundled import RATE_OUTCOMES
from evallib.sources.files import FileSource
from evallib.sources.panel import Panel
from evallib.sources.regions import unit_region

#: The "nearest" pool: this many comparison units closest to the site before the start.
NEAREST = 30
#: Fewest comparison units a candidate pool may have (a 95% placebo interval needs 19).
MIN_POOL = 19
#: Extra months of history before the earliest fake window (more fake starts, more drift seen).
EXTRA_HISTORY = 24


@dataclass(frozen=True)
class History:
    """The site's data before the planned start, on the analysis scale (log, or points for a percentage).

    ``values`` is periods x units (the site's units first); ``pools`` names each candidate pool's comparison
    units; ``pre_periods`` is the protocol's pre-period length.
    """

    values: pd.DataFrame = field(repr=False)
    treated: tuple[str, ...]
    pools: dict[str, tuple[str, ...]] = field(repr=False)
    pre_periods: int
    periods_per_year: int
    scale: str
    outcome: str
    notes: tuple[str, ...] = ()


def _months(ts: pd.Timestamp, n: int) -> pd.Timestamp:
    return ts + pd.DateOffset(months=n)


def _periods(ts: pd.Timestamp, n: int, frequency: str) -> pd.Timestamp:
    """``ts`` moved by ``n`` periods of the data: weeks for weekly data, else ``n`` months (a period's months)."""
    return ts + pd.Timedelta(weeks=n) if frequency == "weekly" else _months(ts, n)


#: The last few histories built, each with the protocol, data and length it was built from (a notebook trying
#: options on one site builds its history once, as R synthdid's ``panel.matrices`` is built once per panel).
_BUILT: list[tuple[SiteProtocol, Panel, int, History]] = []
_KEEP = 4


def design_history(protocol: SiteProtocol, panel: Panel | None = None, *, longest: int = 36) -> History:
    """The primary outcome's data up to ``pre_period_end`` with the protocol's pool rules, and the candidate pools.

    As far back as the data allow, up to the pre-period plus the longest follow-up plus two years (more fake
    starts); if the site's series is incomplete that far back, the protocol's pre-period alone. Built once for the
    same protocol (equal), data (the same ``Panel`` object; loaded data are cached) and ``longest``.
    """
    panel = load_source(protocol.data_source) if panel is None else panel
    for p, data, n, hist in _BUILT:
        if data is panel and n == longest and p == protocol:
            return hist
    hist = _build_history(protocol, panel, longest)
    _BUILT[:] = [(protocol, panel, longest, hist), *_BUILT[: _KEEP - 1]]
    return hist


def forget_histories() -> None:
    """Drop the histories kept by :func:`design_history` (the next call builds its history afresh)."""
    _BUILT.clear()


def _build_history(protocol: SiteProtocol, panel: Panel, longest: int) -> History:
    w = protocol.windows
    kind = unit_kind(protocol.data_source)
    spec = AnalysisSpec(protocol.primary_outcome, protocol.data_source, protocol.treated_units, True)
    if spec.outcome not in panel.outcomes:
        raise DataError(f"site {protocol.site_id}: outcome {spec.outcome!r} is not in data source {panel.source!r}")
    ppy = PERIODS_PER_YEAR.get(panel.frequency, 12)
    freq = panel.frequency
    weekly = freq == "weekly"
    # A step of one period: months per period, or one week (weekly windows are Mondays, moved by whole weeks).
    step = 1 if weekly else 12 // ppy
    exclude = () if protocol.comparison_include else tuple(sorted(excluded_by_rule(protocol, kind)))
    first, last = panel.periods(spec.outcome).min(), panel.periods(spec.outcome).max()
    end = min(w.pre_end, last)  # a start planned after the data end: the history stops where the data do
    far = max(first, _months(w.pre_start, -(max(0, longest - 0) + EXTRA_HISTORY)))
    if weekly:  # the same span back in time, on a Monday a whole number of years before the pre-period's start
        far = max(first, w.pre_start - pd.Timedelta(weeks=52 * math.ceil((w.pre_start - far).days / 364)))

    def frame(start: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame | None, Coverage]:
        split = _periods(end, -step * max(1, ppy // 2) + step, freq)  # any split: both sides are history
        hist = replace(
            protocol,
            pre_period_start=period_label(start, freq),
            pre_period_end=period_label(_periods(split, -step, freq), freq),
            post_period_start=period_label(split, freq),
            intervention_start=period_label(split, freq),
            post_period_end=period_label(end, freq),
            comparison_pool="all_eligible",
            comparison_exclude=tuple(protocol.comparison_exclude) + exclude,
            min_pre_periods=1,
            min_post_periods=1,
        )
        return analysis_frame(hist, panel, spec)

    # The pool is the units complete over the protocol's own pre-period, as the analysis's is (so far as data
    # before the start can tell); the history goes back as far as every one of them (and the site) is complete,
    # in steps of a year: a longer history that silently dropped units would size a different pool.
    values, denom, cov = frame(w.pre_start)
    want = set(cov.comparators)
    start = w.pre_start
    candidate = far
    while candidate < w.pre_start:
        try:
            v, d, c = frame(candidate)
        except NotEvaluable:
            v = None
        if v is not None and want <= set(c.comparators) and tuple(c.treated_used) == tuple(cov.treated_used):
            keep = [*cov.treated_used, *cov.comparators]
            values, denom, cov, start = v[keep], None if d is None else d[keep], cov, candidate
            break
        candidate = _periods(candidate, 52, freq) if weekly else _months(candidate, 12)
    per = RATE_OUTCOMES.get(spec.outcome)
    if isinstance(protocol.data_source, FileSource) and denom is not None:
        measure, per = protocol.data_source.kind, protocol.data_source.per
    else:
        measure = "count" if denom is None else ("rate" if per is not None else "proportion")
    if measure == "proportion":
        y, scale = 100 * values / denom, "points"
    elif measure == "rate":
        y, scale = np.log((per or 1) * values / denom), "log"
    else:
        y, scale = np.log(values), "log"
    treated = tuple(cov.treated_used)
    comps = list(cov.comparators)
    pre = w.pre_periods(freq) if weekly else max(1, w.pre_months // step)  # the protocol's pre-period, in periods
    pools: dict[str, tuple[str, ...]] = {"protocol": tuple(comps)}
    notes: list[str] = []
    if end < w.pre_end:
        notes.append(f"the data end in {period_text(end, freq)}, before the planned start: the history stops there")
    if start != far:
        notes.append(
            f"the history starts in {period_text(start, freq)}: not every unit of the pool has complete data before"
        )
    if len(comps) > NEAREST:
        recent = y[[*treated, *comps]].iloc[-pre:].to_numpy(dtype=float).T
        rows = nearest_sets(recent, len(treated), min(pre, recent.shape[1]), 1, NEAREST)[0][len(treated) :]
        pools["nearest"] = tuple(sorted(comps[i - len(treated)] for i in rows))
    else:
        notes.append(f"the pool has {len(comps)} comparison units, no more than the {NEAREST} nearest")
    regions = {unit_region(u) for u in treated} - {""}
    if len(regions) == 1:
        region = regions.pop()
        same = tuple(u for u in comps if unit_region(u) == region)
        if len(same) >= MIN_POOL:
            pools["same_region"] = same
        else:
            notes.append(f"only {len(same)} comparison units in the site's region (a pool needs {MIN_POOL})")
    else:
        notes.append("no single NHS region known for the site's units, so no same-region pool")
    return History(y[[*treated, *comps]], treated, pools, pre, ppy, scale, spec.outcome, tuple(notes))


def answer_estimator(protocol: SiteProtocol, hist: History) -> str:
    """The estimator the site's answer will come from: the studentized DiD when the volatile-site rule fires on the
    protocol's pre-period (:func:`evallib.evaluation.site.outcome.fit_answers`), else the protocol's primary one.
    """
    units = [*hist.treated, *hist.pools["protocol"]]
    y = hist.values[units].iloc[-hist.pre_periods :].to_numpy(dtype=float).T
    is_treated = np.arange(len(units)) < len(hist.treated)
    try:
        noise = pre_period_noise(y, np.zeros(y.shape[1], bool), np.asarray(units))
    except DataError:
        return protocol.primary_estimator
    pct = site_noise_percentile(volatility_rank(noise, is_treated, np.asarray(units)), protocol.seed)
    return "did_studentized" if pct >= VOLATILE_PERCENTILE else protocol.primary_estimator


def nearest_sets(Y: np.ndarray, n_treated: int, pre: int, n_starts: int, k: int) -> list[np.ndarray]:
    """At each fake start, the site's rows and the ``k`` comparison rows nearest it over that start's own
    pre-period (mean squared gap between paths about their means, as the "nearest" pool is chosen).

    Choosing at each fake start from its own pre-period keeps the pretend follow-up out of the choice, as the real
    follow-up is: chosen once over the whole history, the nearest units look closer than they will stay (on the
    CCG vanguards that made the predicted MDE 2-4 times too small).
    """
    out = []
    for s in range(n_starts):
        w = Y[:, s : s + pre]
        dev = w - w.mean(axis=1, keepdims=True)
        gap = ((dev[n_treated:] - dev[:n_treated].mean(axis=0)) ** 2).mean(axis=1)
        chosen = n_treated + np.argsort(gap, kind="stable")[:k]
        out.append(np.concatenate([np.arange(n_treated), chosen]))
    return out
