"""The calibration study: how each estimator behaves on the real data when there is no effect to find.

For every design the protocols use (site type, data source, outcome, windows and pool rule), every
comparison area in turn becomes a fake site, with the real windows and no intervention, and is
evaluated against the rest of the pool by every estimator. A method that holds its size rejects
"no effect" in about 5% of fake sites; among those, the most precise (narrowest median interval)
is the one a protocol of that kind should lead with. The study sees only comparison areas, never a
real site's outcome, so the choice is made before results are seen; `evallib make-params` writes it
into the protocols (``primary_estimator``).

Besides the headline estimators the study runs two contrasts that no protocol may lead with: the
DiD with cluster-robust (CR1) standard errors, and the site's own series (segmented regression
with Newey-West errors, the effect 12 months after the start or at the end of a shorter follow-up), to show on the real data why
design-based inference is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from evallib.errors import DataError, NotEvaluable
from evallib.evaluation.site.coverage import analysis_frame, load_source
from evallib.evaluation.site.estimators import HEADLINE_ESTIMATORS, DesignData, fit_headline, on_log_scale
from evallib.methods.base.design import Design as PanelDesign
from evallib.methods.did.twfe import DiD
from evallib.methods.inference.decision import ALPHA, rejection_rate
from evallib.methods.inference.volatility import pre_period_noise
from evallib.methods.its.segmented import SegmentedITS
from evallib.protocol.params import COVID_START, AnalysisSpec, SiteProtocol
from evallib.sources.bundled import RATE_OUTCOMES

#: Estimators shown for contrast only (model-based inference a protocol may not lead with; their words:
#: :data:`evallib.vocabulary.CONTRAST_LABELS`).
CONTRASTS: tuple[str, ...] = ("did_cr1", "own_series_its")
RESULT_COLUMNS = ["design", "fake_site", "estimator", "estimate", "ci_low", "ci_high", "p_value", "noise"]
#: The share of fake sites, the noisiest before the start, whose rejection rate is shown on its own.
NOISY_SHARE = 0.2
SUMMARY_COLUMNS = [
    "design",
    "site_type",
    "data_source",
    "outcome",
    "estimator",
    "fake_sites",
    "bias",
    "rmse",
    "rejection_rate",
    "rejection_mc_se",
    "rejection_rate_noisiest_fifth",
    "noisiest_fifth_mc_se",
    "rejection_rate_quietest_tenth",
    "rejection_rate_noisiest_tenth",
    "median_width",
    "holds_size",
    "chosen",
]


@dataclass(frozen=True)
class Design:
    """A kind of analysis the protocols run: its windows, pool rule and outcome, with one protocol standing for it."""

    name: str
    site_type: str
    data_source: str
    outcome: str
    protocol: SiteProtocol
    sites: tuple[str, ...]


def designs(protocols: Iterable[SiteProtocol]) -> list[Design]:
    """The distinct primary-outcome designs of the evaluable protocols (bundled data, follow-up before COVID-19)."""
    groups: dict[tuple[Any, ...], list[SiteProtocol]] = {}
    for p in protocols:
        if p.not_evaluable_reason or not isinstance(p.data_source, str) or p.windows.post_end >= COVID_START:
            continue
        key = (p.site_type, p.data_source, p.primary_outcome, p.windows, p.comparison_pool)
        groups.setdefault(key, []).append(p)
    out = []
    for (site_type, source, outcome, w, _), ps in sorted(groups.items(), key=lambda kv: kv[0]):
        name = (
            f"{site_type}: {outcome} ({source}), {w.pre_start:%b %Y} - {w.post_end:%b %Y}, start {w.post_start:%b %Y}"
        )
        stand_in = replace(ps[0], design_pool=())  # fake sites from the rule's whole pool, not one site's chosen pool
        out.append(Design(name, site_type, source, outcome, stand_in, tuple(p.site_id for p in ps)))
    return out


def _contrast(name: str, data: DesignData) -> tuple[float, float, float, float]:
    if name == "did_cr1":
        row = DiD(transform=data.transform, inference="cluster_cr1").fit(data.design).headline
    else:
        site = data.design.treated_series()
        h = min(12, int((site.index >= data.start).sum()))  # 12 months after the start, or the last month
        # As the reports fit it: GLS with REML AR(1) errors and bootstrap-t intervals (Newey-West would measure a
        # method no report publishes).
        its = SegmentedITS(
            start=data.start,
            transform=data.transform,
            harmonics=2,
            horizons=(h,),
            errors="ar1_reml",
        )
        row = on_log_scale(its.fit(site).row(f"effect_at_{h}"))
    return row.estimate, row.ci_low, row.ci_high, row.p_value


def fake_site_results(
    design: Design,
    *,
    estimators: tuple[str, ...] = HEADLINE_ESTIMATORS + CONTRASTS,
    max_fake_sites: int | None = None,
    seed: int = 2015,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Every estimator on every fake site of one design (estimates on the log scale, or points).

    Returns one row per fake site and estimator: ``design, fake_site, estimator, estimate,
    ci_low, ci_high, p_value, noise``, ``noise`` being the fake site's pre-period noise on the
    analysis scale (:func:`~evallib.methods.inference.volatility.pre_period_noise`, the scale of the
    studentized test). ``max_fake_sites`` takes a seeded random subset of the pool.
    """
    p = design.protocol
    spec = AnalysisSpec(p.primary_outcome, p.data_source, p.treated_units, True)
    try:
        values, denom, cov = analysis_frame(p, load_source(p.data_source), spec)
    except NotEvaluable:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    pool = list(cov.comparators)
    values = values[pool]
    per = RATE_OUTCOMES.get(p.primary_outcome)  # a rate per head: proportional effects, like counts
    is_prop = denom is not None and per is None
    if denom is not None:
        unit_values = (100 if per is None else per) * values / denom[pool]
    else:
        unit_values = values
    noise = _noise(unit_values, p.windows.post_start, log=not is_prop)
    fakes = pool
    if max_fake_sites is not None and max_fake_sites < len(pool):
        fakes = sorted(np.random.default_rng(seed).choice(pool, max_fake_sites, replace=False))
    start = p.windows.post_start
    rows = []
    for i, fake in enumerate(fakes):
        fake_design = PanelDesign.from_wide(
            unit_values,
            [fake],
            start,
            counts=values if denom is not None else None,
            exposure=denom[pool] if denom is not None else None,  # a proportion or a rate: the Poisson exposure
            measure="proportion" if is_prop else ("rate" if per is not None else "count"),
            per=per or 1,
            outcome=p.primary_outcome,
        )
        data = DesignData(
            fake_design, transform="identity" if is_prop else "log", n_draws=p.n_placebo_draws, seed=p.seed
        )
        for name in estimators:
            if name in CONTRASTS:
                est, lo, hi, pv = _contrast(name, data)
            else:
                row = on_log_scale(fit_headline(name, data).row)
                est, lo, hi, pv = row.estimate, row.ci_low, row.ci_high, row.p_value
            rows.append((design.name, fake, name, est, lo, hi, pv, float(noise[fake])))
        if progress is not None:
            progress(i + 1)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _noise(unit_values: pd.DataFrame, start: pd.Timestamp, *, log: bool) -> pd.Series:
    """Each unit's pre-period noise on the analysis scale (NaN for all when a unit has too little to measure)."""
    y = np.log(unit_values) if log else unit_values
    post = np.asarray(unit_values.index >= start)
    try:
        scale = pre_period_noise(y.to_numpy(dtype=float).T, post, np.asarray(unit_values.columns))
    except DataError:
        scale = np.full(unit_values.shape[1], np.nan)
    return pd.Series(scale, index=unit_values.columns)


def noisiest(results: pd.DataFrame, share: float = NOISY_SHARE) -> pd.Series:
    """Whether each row's fake site is among the noisiest ``share`` of its design's fake sites (by ``noise``).

    The noisiest ``ceil(share x fake sites)`` of each design, ties broken by order; all False for a design
    whose noise is unknown (no ``noise`` column, or NaN).
    """
    if "noise" not in results.columns:
        return pd.Series(False, index=results.index)
    flag = pd.Series(False, index=results.index)
    for _, g in results.groupby("design", sort=False):
        sites = g.drop_duplicates("fake_site").set_index("fake_site")["noise"]
        if sites.isna().any() or sites.empty:
            continue
        top = sites.rank(ascending=False, method="first") <= math.ceil(share * len(sites))
        flag[g.index] = g["fake_site"].map(top).to_numpy(dtype=bool)
    return flag


def _rate(g: pd.DataFrame) -> float:
    """Share of rows rejecting at 5% under the rule ``p <= alpha`` (NaN for no rows)."""
    return float(np.mean(g["p_value"] <= ALPHA)) if len(g) else float("nan")


def noise_tenth(results: pd.DataFrame) -> pd.Series:
    """Each row's tenth of pre-period noise among its design's fake sites: 0 the quietest, 9 the noisiest.

    Ranks within the design (ties by order), ``floor(10 x rank / fake sites)``; NaN for a design whose noise is
    unknown (no ``noise`` column, or NaN).
    """
    out = pd.Series(np.nan, index=results.index)
    if "noise" not in results.columns:
        return out
    for _, g in results.groupby("design", sort=False):
        sites = g.drop_duplicates("fake_site").set_index("fake_site")["noise"]
        if sites.isna().any() or sites.empty:
            continue
        tenth = (sites.rank(method="first") - 1) * 10 // len(sites)
        out[g.index] = g["fake_site"].map(tenth).to_numpy(dtype=float)
    return out


#: The estimators a report can lead with: the headline estimators (the studentized DiD among them, which the
#: volatile-site rule leads with).
LEADING = HEADLINE_ESTIMATORS


def size_by_noise_tenth(results: pd.DataFrame, estimators: tuple[str, ...] = LEADING) -> pd.DataFrame:
    """Rejection rate at 5% (rule ``p <= alpha``) by tenth of pre-period noise, over every design.

    One row per estimator (those a report can lead with, in that order) and tenth (1 the quietest, 10 the
    noisiest; :func:`noise_tenth`, within each design, then pooled): ``estimator, tenth, fake_sites,
    rejection_rate, mc_se`` (the Monte Carlo error at 5%). A test that assumes the site is like its comparators
    fails where it is not: a plain placebo test for the noisiest sites, a test scaled by month-to-month noise for
    the quietest.
    """
    columns = ["estimator", "tenth", "fake_sites", "rejection_rate", "mc_se"]
    tenth = noise_tenth(results)
    rows = []
    for est in estimators:
        mask = (results["estimator"] == est) & tenth.notna()
        for t in range(10):
            g = results[mask & (tenth == t)]
            n = len(g)
            if not n:
                continue
            rows.append((est, t + 1, n, float(np.mean(g["p_value"] <= ALPHA)), math.sqrt(ALPHA * (1 - ALPHA) / n)))
    return pd.DataFrame(rows, columns=columns)


def summarise(results: pd.DataFrame, designs_: list[Design]) -> pd.DataFrame:
    """Bias, RMSE, rejection rate at 5% (with its Monte Carlo error) and median interval width by design and estimator.

    ``rejection_rate_noisiest_fifth`` is the rejection rate among the fifth of fake sites noisiest before the
    start (:func:`noisiest`), with ``noisiest_fifth_mc_se`` its Monte Carlo error at 5%: a plain placebo test
    assumes the site is exchangeable with its comparators, and over-rejects for sites much noisier than them
    (NaN when the noise is unknown); ``rejection_rate_quietest_tenth`` and ``rejection_rate_noisiest_tenth``
    the same among the quietest and noisiest tenth (:func:`noise_tenth`; rule ``p <= alpha``). ``holds_size``: the rejection rate is within 3 Monte Carlo standard errors
    of 5% or below it. ``chosen``: per design, the headline estimator that holds its size with the narrowest
    median interval.
    """
    by_name = {d.name: d for d in designs_}
    noisy = noisiest(results)
    tenth = noise_tenth(results)
    out = []
    for (name, est), g in results.groupby(["design", "estimator"], sort=False):
        d = by_name[name]
        n = len(g)
        rej = rejection_rate(g["p_value"].to_numpy(), ALPHA)  # the rule every report and interval uses
        se = math.sqrt(ALPHA * (1 - ALPHA) / n) if n else float("nan")
        loud = g[noisy[g.index]]
        n_loud = len(loud)
        quiet10, loud10 = g[tenth[g.index] == 0], g[tenth[g.index] == 9]
        width = (g["ci_high"] - g["ci_low"]).replace([np.inf, -np.inf], np.nan)
        out.append(
            {
                "design": name,
                "site_type": d.site_type,
                "data_source": d.data_source,
                "outcome": d.outcome,
                "estimator": est,
                "fake_sites": n,
                "bias": float(g["estimate"].mean()),
                "rmse": float(np.sqrt(np.mean(g["estimate"] ** 2))),
                "rejection_rate": rej,
                "rejection_mc_se": se,
                "rejection_rate_noisiest_fifth": rejection_rate(loud["p_value"].to_numpy(), ALPHA),
                "noisiest_fifth_mc_se": math.sqrt(ALPHA * (1 - ALPHA) / n_loud) if n_loud else float("nan"),
                "rejection_rate_quietest_tenth": _rate(quiet10),
                "rejection_rate_noisiest_tenth": _rate(loud10),
                "median_width": float(width.median()) if width.notna().any() else float("inf"),
                "holds_size": bool(rej <= ALPHA + 3 * se),
                "chosen": False,
            }
        )
    table = pd.DataFrame(out, columns=SUMMARY_COLUMNS)
    for _, g in table.groupby("design", sort=False):
        eligible = g[g["estimator"].isin(HEADLINE_ESTIMATORS) & g["holds_size"]]
        if len(eligible):
            table.loc[eligible["median_width"].idxmin(), "chosen"] = True
    return table
