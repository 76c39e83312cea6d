"""Matched comparators and balance diagnostics: comparison units an evaluator can defend.

Features of each unit's pre-period series: its level (mean log outcome, i.e. size),
its trend (log growth per year) and its seasonal profile (the first Fourier pair of
the log series). Distances are Euclidean on features standardised across the pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evallib.errors import DataError

FEATURES = ("level", "trend", "season_sin", "season_cos")
#: Label of the balance table's last row, the mean count per period (a count, not a model output).
MEAN_COUNT_FEATURE = "mean count per period"
FEATURE_LABELS = {
    "level": "size (mean log count per period)",
    "trend": "growth (log points per year)",
    "season_sin": "seasonal profile (sine)",
    "season_cos": "seasonal profile (cosine)",
}


def series_features(wide: pd.DataFrame) -> pd.DataFrame:
    """Features of each column of a period x unit table of positive counts (pre-period only)."""
    if (wide <= 0).any().any() or wide.isna().any().any():
        raise DataError("matching needs complete, positive pre-period series")
    y = np.log(wide.to_numpy(float))
    t = np.arange(len(wide), dtype=float)
    ppy = periods_per_year(pd.DatetimeIndex(wide.index))
    # Position within the year (month or quarter; weekly: the day of the year over 365.25); yearly data have no
    # seasonal profile (both columns zero).
    index = pd.DatetimeIndex(wide.index)
    if ppy == 52:
        phase = 2 * np.pi * (index.day_of_year.to_numpy(float) - 1) / 365.25
    else:
        phase = 2 * np.pi * ((index.month.to_numpy() - 1) // (12 // ppy) + 1) / ppy
    season = [np.sin(phase), np.cos(phase)] if ppy > 1 else [0 * t, 0 * t]
    X = np.column_stack([np.ones_like(t), t - t.mean(), *season])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return pd.DataFrame(
        {"level": coef[0], "trend": coef[1] * ppy, "season_sin": coef[2], "season_cos": coef[3]}, index=wide.columns
    )


def periods_per_year(index: pd.DatetimeIndex) -> int:
    """12, 4, 1 or 52 (weekly): how many periods a year a series' index holds (from the months it uses, or from
    its spacing when periods are under ten days apart).
    """
    if len(index) > 1 and np.median(np.diff(index.to_numpy()).astype("timedelta64[D]").astype(float)) < 10:
        return 52
    months = set(index.month)
    if len(months) <= 1:
        return 1
    return 4 if months <= {1, 4, 7, 10} else 12


@dataclass(frozen=True)
class MatchResult:
    """The ``k`` comparators nearest the site, with their distances and features."""

    table: pd.DataFrame = field(repr=False)  # unit, distance, features; sorted by distance
    site_features: pd.Series = field(repr=False)
    k: int

    @property
    def units(self) -> list[str]:
        """The matched comparators, nearest first."""
        return list(self.table["unit"])


def match_comparators(site: pd.Series, pool: pd.DataFrame, k: int = 10) -> MatchResult:
    """The ``k`` pool units closest to the site on standardised pre-period features.

    Parameters
    ----------
    site : Series
        The site's pre-period series (sum over its trusts), indexed by period.
    pool : DataFrame
        Pre-period series of the candidate comparators (period x unit).
    k : int
        How many to keep.

    Notes
    -----
    Each feature is divided by its standard deviation across the pool, so a feature
    that barely varies between trusts does not dominate. Ties keep pool order.
    """
    if k < 1:
        raise DataError("match_comparators: k must be at least 1")
    feats = series_features(pool)
    site_f = series_features(site.to_frame("site")).iloc[0]
    sd = feats.std(ddof=1).replace(0, 1.0)
    dist = np.sqrt((((feats - site_f) / sd) ** 2).sum(axis=1))
    order = np.argsort(dist.to_numpy(), kind="stable")[: min(k, len(dist))]
    table = feats.iloc[order].assign(distance=dist.iloc[order]).rename_axis("unit").reset_index()
    return MatchResult(table=table[["unit", "distance", *FEATURES]], site_features=site_f, k=len(order))


def balance_table(site: pd.Series, pool: pd.DataFrame, sets: dict[str, pd.Series]) -> pd.DataFrame:
    """Pre-period features of the site against each comparison set.

    ``sets`` maps a name to unit weights (e.g. equal weights over all eligible
    units, over the matched units, or synthetic-control weights). Returns one row
    per feature with the site's value, each set's weighted mean and its
    standardised difference (in pool standard deviations), plus a last row with the
    mean count per period (unrounded: a report that publishes it applies disclosure
    control).
    """
    feats = series_features(pool)
    site_f = series_features(site.to_frame("site")).iloc[0]
    sd = feats.std(ddof=1).replace(0, 1.0)
    out = pd.DataFrame({"feature": [FEATURE_LABELS[f] for f in FEATURES], "site": site_f[list(FEATURES)].to_numpy()})
    for name, w in sets.items():
        w = w.reindex(feats.index).fillna(0.0)
        mean = (feats[list(FEATURES)].mul(w, axis=0)).sum() / w.sum()
        out[name] = mean.to_numpy()
        out[f"{name} (std. diff.)"] = ((site_f[list(FEATURES)] - mean) / sd[list(FEATURES)]).to_numpy()
    size = {"feature": MEAN_COUNT_FEATURE, "site": float(site.mean())}
    for name, w in sets.items():
        w = w.reindex(pool.columns).fillna(0.0)
        size[name] = float((pool.mean() * w).sum() / w.sum())
        size[f"{name} (std. diff.)"] = np.nan
    return pd.concat([out, pd.DataFrame([size])], ignore_index=True)
