"""The programme-level view across all sites, built from their ``results.json`` files.

Reads what the site runs published (nothing is re-estimated), so the programme
summary always matches the site reports: every site's primary effect, a
random-effects pooled estimate per care model, and the growth table in the form
NHS England reported ("growth since baseline: each care model against the rest of
England", here against each site's comparison pool).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.methods.pooling import random_effects
from evallib.sources.bundled import BUNDLED

CARE_MODEL_ORDER = ("PACS", "MCP", "EHCH", "UEC", "ACC", "ICS", "other")


@dataclass(frozen=True)
class ProgrammeData:
    """One row per site: status, primary DiD estimate (log scale) with interval, growth."""

    sites: pd.DataFrame = field(repr=False)

    @property
    def evaluated(self) -> pd.DataFrame:
        """The sites that were evaluated (``status == "evaluated"``)."""
        return self.sites[self.sites["status"] == "evaluated"]

    @property
    def programme_sites(self) -> pd.DataFrame:
        """The sites analysed on the programme's own data (the bundled NHS datasets): the only ones pooled."""
        return self.sites[~self._own(self.sites)]

    @property
    def own_data_sites(self) -> pd.DataFrame:
        """The sites analysed on an evaluator's own file: reported in their own pages, never pooled with the
        programme's (their outcomes, units and populations are not the programme's).
        """
        return self.sites[self._own(self.sites)]

    @property
    def pooled_sites(self) -> pd.DataFrame:
        """The evaluated sites on the programme's own data, on the log scale: what the forest plot and the pooled
        effects stand on.
        """
        ev = self.evaluated
        return ev[~self._own(ev) & (ev["scale"] == "log")]

    @staticmethod
    def _own(frame: pd.DataFrame) -> pd.Series:
        """Which rows are own-data sites (none, in a frame made without the column)."""
        if "own_data" not in frame.columns:
            return pd.Series(False, index=frame.index)
        return frame["own_data"].astype(bool)


def _headline_row(res: dict[str, Any]) -> dict[str, Any] | None:
    """The site's answer (its protocol's primary estimate) on the log scale, for pooling; the DiD row if the file
    has no answer. A rate ratio becomes its log; a percent change ``log(1 + x/100)`` (its SE by the delta method).
    """
    row = res.get("answer") or next(
        (r for r in res.get("results", []) if r["method"] == "did_twfe" and r["outcome"] == res.get("primary_outcome")),
        None,
    )
    if row is None or row.get("estimate") is None:
        return None
    out = dict(row)
    out.setdefault("std_error", None)
    if row["scale"] in ("rate_ratio", "percent"):

        def conv(v: float | None) -> float | None:
            if v is None:
                return None
            return math.log(v) if row["scale"] == "rate_ratio" else math.log1p(v / 100)

        est = row["estimate"]
        out.update(estimate=conv(est), ci_low=conv(row["ci_low"]), ci_high=conv(row["ci_high"]), scale="log")
        if row["scale"] == "percent" and out.get("std_error") is not None:
            out["std_error"] = row["std_error"] / 100 / (1 + est / 100)
    if out.get("std_error") is None:  # the answer stores no SE: take it from the matching tidy row
        match = next(
            (r for r in res.get("results", []) if r["method"] == row.get("method") and r["term"] == row.get("term")),
            None,
        )
        out["std_error"] = match["std_error"] if match else None
    if out.get("scale") == "log":
        width_se = interval_std_error(out.get("ci_low"), out.get("ci_high"))
        if width_se is not None:
            out["std_error"] = width_se
    return out


def _own_data(res: dict[str, Any]) -> bool:
    """Whether a site was analysed on an evaluator's own file (its primary data source is no bundled dataset)."""
    source = (res.get("provenance") or {}).get("data_source")
    return source is not None and str(source) not in BUNDLED


def interval_std_error(ci_low: float | None, ci_high: float | None, level: float = 0.95) -> float | None:
    """The standard error a site's own interval implies: its width over ``2 z`` (``z`` = 1.96 at 95%).

    A placebo test's interval comes from the test the site's answer uses (studentized for a volatile
    site, synthetic DiD's own placebo fits), while the SD of its placebo estimates measures the plain
    spread of the comparison units: for a site noisier than its comparators the SD understates the
    uncertainty the site's interval shows (a median 0.67 of it for the volatile sites on the bundled
    data), and pooling with it would give such sites too much weight. ``None`` without a finite,
    positive width (the caller keeps the SD).
    """
    if ci_low is None or ci_high is None:
        return None
    width = float(ci_high) - float(ci_low)
    if not (math.isfinite(width) and width > 0):
        return None
    return width / (2 * float(NormalDist().inv_cdf(0.5 + level / 2)))


def load_programme(outputs: str | Path) -> ProgrammeData:
    """Collect every ``outputs/<site>/results.json``."""
    root = Path(outputs)
    rows = []
    for f in sorted(root.glob("*/results.json")):
        res = json.loads(f.read_text(encoding="utf-8"))
        did = _headline_row(res)
        growth = res.get("growth") or {}
        coverage = res.get("coverage") or {}
        rows.append(
            {
                "site_id": res["site_id"],
                "inputs": "|".join(
                    [
                        str(res.get("primary_outcome")),
                        str(res.get("intervention_start")),
                        *coverage.get("treated_units", []),
                    ]
                ),
                "site_name": res.get("site_name", ""),
                "care_model": res.get("care_model", "other"),
                "data_source": str((res.get("provenance") or {}).get("data_source") or ""),
                "own_data": _own_data(res),
                "status": res["status"],
                "scale": did["scale"] if did else None,
                "estimate": did["estimate"] if did else np.nan,
                "std_error": did["std_error"] if did and did["std_error"] is not None else np.nan,
                "ci_low": did["ci_low"] if did and did["ci_low"] is not None else (-np.inf if did else np.nan),
                "ci_high": did["ci_high"] if did and did["ci_high"] is not None else (np.inf if did else np.nan),
                "p_value": did["p_value"] if did and did.get("p_value") is not None else np.nan,
                "site_growth_pct": growth.get("site_growth_pct", np.nan),
                "comparison_growth_pct": growth.get("comparison_growth_pct", np.nan),
                "window_cut": bool((coverage.get("window") or {}).get("cut", False)),
            }
        )
    if not rows:
        raise DataError(f"no results.json under {root.name}/: run the site evaluations first (evallib run)")
    return ProgrammeData(pd.DataFrame(rows))


def pooled_by_care_model(data: ProgrammeData) -> pd.DataFrame:
    """Random-effects pooled effect per care model, on the log scale and as percent.

    Notes
    -----
    Each site's estimate (log scale) is weighted by ``1 / (se^2 + tau^2)`` with ``se`` the one its
    own interval implies (:func:`interval_std_error`; the SD of its placebo estimates without one); tau^2 by REML, the interval by Hartung-Knapp (t with k - 1
    degrees of freedom), see :func:`evallib.methods.pooling.random_effects`. Only sites analysed on the
    programme's own data (bundled NHS datasets) are pooled: an evaluator's own file measures other outcomes on
    other units (:attr:`ProgrammeData.pooled_sites`). Sites standing
    on the same data are merged first (:func:`merge_duplicate_sites`); sites sharing some
    units or comparators are still treated as independent, which is approximate.
    """
    ev = data.pooled_sites  # an evaluator's own-data sites are never pooled with the programme's
    out = []
    for model in [m for m in CARE_MODEL_ORDER if m in set(ev["care_model"])]:
        g = merge_duplicate_sites(ev[ev["care_model"] == model])
        g = g[np.isfinite(g["estimate"]) & np.isfinite(g["std_error"]) & (g["std_error"] > 0)]
        if g.empty:
            continue
        pooled = random_effects(g["estimate"].to_numpy(), g["std_error"].to_numpy())
        out.append(
            {
                "care_model": model,
                "sites": pooled.k,
                "site_ids": ", ".join(g["site_id"]),
                "estimate": pooled.estimate,
                "ci_low": pooled.ci_low,
                "ci_high": pooled.ci_high,
                "p_value": pooled.p_value,
                "percent": 100 * (math.exp(pooled.estimate) - 1),
                "percent_low": 100 * (math.exp(pooled.ci_low) - 1),
                "percent_high": 100 * (math.exp(pooled.ci_high) - 1),
                "tau2": pooled.tau2,
                "i2": pooled.i2,
            }
        )
    return pd.DataFrame(out)


def merge_duplicate_sites(sites: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct analysis: sites with the same outcome, start and treated units are one observation.

    Two registry sites can stand on identical data (two vanguards of the same CCG or
    trust, starting the same month): their estimates are the same number, and pooling
    both would count it twice. The merged row keeps the first site's estimate and
    lists every site id (``"V14 + V24"``).
    """
    if sites.empty:
        return sites
    merged = sites.groupby("inputs", sort=False, as_index=False).agg(
        {**{c: "first" for c in sites.columns if c not in ("inputs", "site_id")}, "site_id": " + ".join}
    )
    return merged[list(sites.columns)]


def growth_table(data: ProgrammeData) -> pd.DataFrame:
    """Mean growth (last 12 months of follow-up vs the baseline year) of sites and their comparison pools.

    Each site's growth is over the window it was analysed on: a site whose own series shifts level is cut to the
    clean stretch holding its start (:mod:`evallib.evaluation.site.breaks`), so no growth spans an unexplained
    shift; ``cut_sites`` lists those sites for each care model.
    """
    ev = data.evaluated.dropna(subset=["site_growth_pct", "comparison_growth_pct"])
    ev = pd.concat([merge_duplicate_sites(g) for _, g in ev.groupby("care_model", sort=False)]) if len(ev) else ev
    g = ev.groupby("care_model").agg(
        sites=("site_id", "size"),
        site_growth_pct=("site_growth_pct", "mean"),
        comparison_growth_pct=("comparison_growth_pct", "mean"),
    )
    # Sites whose window was cut at a level shift in their own series: growth over the shortened window.
    cut = ev[ev["window_cut"].fillna(False).astype(bool)] if "window_cut" in ev.columns else ev.iloc[:0]
    g["cut_sites"] = [", ".join(cut.loc[cut["care_model"] == m, "site_id"]) for m in g.index]
    g["difference_points"] = g["site_growth_pct"] - g["comparison_growth_pct"]
    order = [m for m in CARE_MODEL_ORDER if m in g.index]
    return g.loc[order].reset_index()
