"""What every interrupted time series fit shares: the design matrix (trend, level and slope changes,
seasonality), input checks, residual diagnostics and the read-only :class:`ITSResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson

from evallib.errors import DataError
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.inference.decision import rejects

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Seasonality = Literal["fourier", "month", "none"]
SlopeCoding = Literal["itsa", "bernal2017"]


@dataclass(frozen=True)
class ITSSpec:
    """The settings every ITS fitting routine needs, passed to it explicitly (it never calls back into an estimator).

    ``transform`` decides the scales: proportional level changes and growth changes on a log scale, changes
    in the outcome's units otherwise; ``back`` returns fitted values to the outcome's own scale.
    """

    alpha: float = 0.05
    horizons: tuple[int, ...] = (12, 24)
    transform: Literal["log", "identity"] = "log"
    outcome_label: str = "outcome"
    periods_per_year: int = 12
    seed: int = 2015
    n_boot: int = 999
    arima_order: tuple[int, int, int] = (1, 0, 0)

    def back(self, v: np.ndarray) -> np.ndarray:
        """Values on the analysis scale back on the outcome's own scale."""
        return np.exp(v) if self.transform == "log" else v

    def scales(self) -> tuple[str, str]:
        """The scale names of level changes and of slope changes."""
        return ("log", "log_per_year") if self.transform == "log" else ("level", "level_per_year")

    def change_rows(
        self,
        X: pd.DataFrame,
        beta: np.ndarray,
        se: np.ndarray,
        dof: int,
        method: str,
        inference: str,
        normal: bool = False,
    ) -> list[Estimate]:
        """Tidy rows of the level and slope changes (slopes per year) with t (or normal) intervals."""
        crit = stats.norm.ppf(1 - self.alpha / 2) if normal else stats.t.ppf(1 - self.alpha / 2, dof)
        level_scale, slope_scale = self.scales()
        rows = []
        for j, col in enumerate(X.columns):
            if not col.startswith(("level_change", "slope_change")):
                continue
            mult = float(self.periods_per_year) if col.startswith("slope") else 1.0
            b, e = beta[j] * mult, se[j] * mult
            p = 2 * (stats.norm.sf(abs(b / e)) if normal else stats.t.sf(abs(b / e), dof))
            scale = slope_scale if col.startswith("slope") else level_scale
            rows.append(its_row(self.outcome_label, col, b, e, b - crit * e, b + crit * e, p, method, inference, scale))
        return rows


@dataclass(frozen=True)
class ITSResult(EstimatorResult):
    """Read-only result of an ITS fit.

    ``observed``, ``fitted`` and ``counterfactual`` are on the outcome's own scale
    (counts, not logs), indexed by period; ``counterfactual`` is the fitted series
    with every intervention term set to zero, and ``counterfactual_low`` /
    ``counterfactual_high`` its interval in the post-period. ``rows`` holds the
    level and slope changes and, for :class:`SegmentedITS`, the effects at the
    chosen horizons and the cumulative effect.
    """

    rows: tuple[Estimate, ...]
    observed: pd.Series = field(repr=False)
    fitted: pd.Series = field(repr=False)
    counterfactual: pd.Series = field(repr=False)
    intervention_start: pd.Timestamp
    n_pre: int
    n_post: int
    durbin_watson: float
    ljung_box_p: float
    ljung_box_lags: int
    hac_lags: int | None = None
    dispersion: float | None = None
    warnings: tuple[str, ...] = ()
    counterfactual_low: pd.Series | None = field(default=None, repr=False)
    counterfactual_high: pd.Series | None = field(default=None, repr=False)
    residuals: pd.Series | None = field(default=None, repr=False)
    residual_acf: np.ndarray | None = field(default=None, repr=False)
    excluded: tuple[pd.Timestamp, ...] = ()
    errors: str = "newey_west"
    trend_per_year: float | None = None
    ar1_rho: float | None = None

    @property
    def headline(self) -> Estimate:
        """The first effect at a horizon (e.g. ``effect_at_12``), else the level change."""
        return next((r for r in self.rows if r.term.startswith(("effect_at_", "mean_post"))), self.rows[0])

    @property
    def autocorrelated(self) -> bool:
        """True when Ljung-Box rejects no residual autocorrelation at 5%."""
        return rejects(self.ljung_box_p)

    def plot(self, *, ax: Axes | None = None, title: str = "", ylabel: str = "", scale: float = 1.0) -> Figure:
        """Observed series, fitted model and the counterfactual on ``ax`` (a new figure when None)."""
        from evallib.methods.base.plotting import plot_its

        return plot_its(self, ax=ax, title=title, ylabel=ylabel, scale=scale)


def fourier_terms(index: pd.DatetimeIndex, harmonics: int, periods_per_year: int = 12) -> pd.DataFrame:
    """Sine and cosine pairs of the calendar month (as R's ``tsModel::harmonic``).

    Weekly data (52 periods a year) are placed in the year by the day of the year over 365.25, so the
    period is the year's 52.18 weeks and the pattern does not drift in ISO years of 53 weeks.
    """
    if periods_per_year == 52:
        x, period = index.day_of_year.to_numpy(float) - 1, 365.25
    else:
        x, period = _season_position(index, periods_per_year), float(periods_per_year)
    cols = {}
    for k in range(1, harmonics + 1):
        cols[f"sin{k}"] = np.sin(2 * np.pi * k * x / period)
        cols[f"cos{k}"] = np.cos(2 * np.pi * k * x / period)
    return pd.DataFrame(cols, index=index)


def _season_position(index: pd.DatetimeIndex, periods_per_year: int) -> np.ndarray:
    if periods_per_year == 12:
        return index.month.to_numpy(float)
    if periods_per_year == 4:
        return index.quarter.to_numpy(float)
    if periods_per_year == 52:  # ISO week of the year; week 53 shares week 52's effect
        return np.minimum(index.isocalendar().week.to_numpy(float), 52)
    return np.zeros(len(index))


def newey_west_lags(n: int) -> int:
    """Newey & West (1994) rule of thumb: floor(4 (n/100)^(2/9))."""
    return int(math.floor(4 * (n / 100) ** (2 / 9)))


def _suffix(k: int) -> str:
    return "" if k == 0 else f"_{k + 1}"


def its_design(
    index: pd.DatetimeIndex,
    interruptions: list[pd.Timestamp],
    *,
    slope: bool = True,
    phase_in: int = 0,
    seasonality: Seasonality = "fourier",
    harmonics: int = 2,
    periods_per_year: int = 12,
    slope_coding: SlopeCoding = "itsa",
) -> pd.DataFrame:
    """Design matrix: constant, trend, a level (and slope) change per interruption, seasonality.

    With ``phase_in = m`` each change starts ``m`` periods after its interruption
    (those periods are then left out of the fit by the caller). With the default
    ``slope_coding="itsa"`` the slope term counts periods since the change (0 in the
    first changed period, as Linden's itsa), so ``level_change`` is the whole jump in
    the first changed period; ``"bernal2017"`` counts from the last period before it
    (1 in the first changed period, as Bernal, Cummins & Gasparrini 2017), so the jump
    there is ``level_change`` plus one ``slope_change``. The two fit identically.
    Terms of the second and later interruptions carry a suffix (``level_change_2``).
    """
    n = len(index)
    X = pd.DataFrame({"const": 1.0, "time": np.arange(n, dtype=float)}, index=index)
    for k, start in enumerate(sorted(interruptions)):
        first = int(np.searchsorted(index.values, np.datetime64(start))) + phase_in
        post = (np.arange(n) >= first).astype(float)
        X[f"level_change{_suffix(k)}"] = post
        if slope:
            origin = first - (1 if slope_coding == "bernal2017" else 0)
            X[f"slope_change{_suffix(k)}"] = np.where(post > 0, np.arange(n) - origin, 0.0)
    if seasonality == "fourier" and harmonics:
        X = X.join(fourier_terms(index, harmonics, periods_per_year))
    elif seasonality == "month":
        pos = _season_position(index, periods_per_year).astype(int)
        for m in range(2, periods_per_year + 1):
            X[f"season{m}"] = (pos == m).astype(float)
    return X


def intervention_columns(X: pd.DataFrame) -> list[str]:
    """The design columns that carry the intervention: level and slope changes."""
    return [c for c in X.columns if c.startswith(("level_change", "slope_change"))]


def phase_in_mask(index: pd.DatetimeIndex, interruptions: list[pd.Timestamp], phase_in: int) -> np.ndarray:
    """True for the periods left out of the fit: the first ``phase_in`` after each interruption."""
    out = np.zeros(len(index), bool)
    for start in interruptions:
        first = int(np.searchsorted(index.values, np.datetime64(start)))
        out[first : first + phase_in] = True
    return out


def check_series(series: pd.Series, start: pd.Timestamp, n_params: int, name: str) -> pd.Series:
    """The series sorted and as floats, after checking it can carry an ITS fit.

    Raises
    ------
    DataError
        When the index is not a DatetimeIndex, values are missing, there are fewer than 3 pre-period or 1
        post-period observations, or too few observations for ``n_params`` parameters; ``name`` leads the message.
    """
    if not isinstance(series.index, pd.DatetimeIndex):
        raise DataError(f"{name}: the series must be indexed by period (a DatetimeIndex)")
    s = series.sort_index().astype(float)
    if s.isna().any():
        raise DataError(f"{name}: missing values at {list(s.index[s.isna()].strftime('%Y-%m'))[:6]}; fill or drop them")
    n_pre, n_post = int((s.index < start).sum()), int((s.index >= start).sum())
    if n_pre < 3 or n_post < 1:
        raise DataError(f"{name}: need at least 3 pre-period and 1 post-period observations; got {n_pre} and {n_post}")
    if len(s) <= n_params + 2:
        raise DataError(f"{name}: {len(s)} observations are too few for {n_params} parameters")
    return s


class Diagnostics(TypedDict):
    """Residual diagnostics of an ITS fit, as :class:`ITSResult` fields."""

    durbin_watson: float
    ljung_box_p: float
    ljung_box_lags: int


def diagnostics(resid: np.ndarray, periods_per_year: int) -> Diagnostics:
    """Durbin-Watson and Ljung-Box (at a year's lag, at most a quarter of the series) of residuals."""
    lags = max(1, min(periods_per_year, len(resid) // 4))
    return {
        "durbin_watson": float(durbin_watson(resid)),
        "ljung_box_p": ljung_box(resid, lags),
        "ljung_box_lags": lags,
    }


def its_result(
    rows: list[Estimate] | tuple[Estimate, ...],
    s: pd.Series,
    start: pd.Timestamp,
    fitted: np.ndarray | pd.Series,
    counterfactual: np.ndarray | pd.Series,
    resid: np.ndarray,
    periods_per_year: int,
    **extra: object,
) -> ITSResult:
    """An :class:`ITSResult` with the fields every ITS fit shares: series, windows and residual diagnostics."""
    return ITSResult(
        rows=tuple(rows),
        observed=s,
        fitted=pd.Series(np.asarray(fitted), index=s.index),
        counterfactual=pd.Series(np.asarray(counterfactual), index=s.index),
        intervention_start=start,
        n_pre=int((s.index < start).sum()),
        n_post=int((s.index >= start).sum()),
        **diagnostics(resid, periods_per_year),
        **extra,  # type: ignore[arg-type]
    )


def ljung_box(resid: np.ndarray, lags: int) -> float:
    """Ljung-Box p-value of the residuals at ``lags`` (at most a quarter of the series)."""
    lags = max(1, min(lags, len(resid) // 4))
    return float(acorr_ljungbox(resid, lags=[lags], return_df=True)["lb_pvalue"].iloc[0])


def its_row(
    label: str,
    term: str,
    est: float,
    se: float,
    lo: float,
    hi: float,
    p: float,
    method: str,
    inference: str,
    scale: str,
) -> Estimate:
    """One tidy ITS row for a single treated series (one treated unit, no comparison units)."""
    return Estimate(label, term, float(est), float(se), float(lo), float(hi), float(p), method, inference, scale, 1, 0)
