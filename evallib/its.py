"""Interrupted time series on a site's own series.

:class:`SegmentedITS` is segmented regression (level and slope change) by OLS
with Fourier seasonality and Newey-West SEs; :class:`PoissonITS` is the count
model of Bernal, Cummins & Gasparrini (2017) with a population offset, giving
rate ratios. Both return an :class:`ITSResult` with the tidy table, the fitted
and counterfactual series for plots, and residual autocorrelation diagnostics.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson

from evallib.errors import DataError
from evallib.results import Estimate, tidy_frame


@dataclass(frozen=True)
class ITSResult:
    """Read-only result of an ITS fit.

    ``observed``, ``fitted`` and ``counterfactual`` are on the outcome's own scale
    (counts, not logs), indexed by period; ``counterfactual`` is the fitted series
    with the intervention terms set to zero.
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

    def tidy(self) -> pd.DataFrame:
        return tidy_frame(list(self.rows))

    def row(self, term: str) -> Estimate:
        for r in self.rows:
            if r.term == term:
                return r
        raise KeyError(f"no term {term!r}; terms are {[r.term for r in self.rows]}")

    @property
    def autocorrelated(self) -> bool:
        """True when Ljung-Box rejects no residual autocorrelation at 5%."""
        return bool(self.ljung_box_p < 0.05)

    def _repr_html_(self) -> str:
        return self.tidy().to_html(index=False, float_format=lambda x: f"{x:.4g}")


def fourier_terms(index: pd.DatetimeIndex, harmonics: int, periods_per_year: int = 12) -> pd.DataFrame:
    """Sine and cosine pairs of the calendar month (as R's ``tsModel::harmonic``)."""
    if periods_per_year == 12:
        x = index.month.to_numpy(float)
    elif periods_per_year == 4:
        x = index.quarter.to_numpy(float)
    else:
        x = np.zeros(len(index))
    cols = {}
    for k in range(1, harmonics + 1):
        cols[f"sin{k}"] = np.sin(2 * np.pi * k * x / periods_per_year)
        cols[f"cos{k}"] = np.cos(2 * np.pi * k * x / periods_per_year)
    return pd.DataFrame(cols, index=index)


def newey_west_lags(n: int) -> int:
    """Newey & West (1994) rule of thumb: floor(4 (n/100)^(2/9))."""
    return int(math.floor(4 * (n / 100) ** (2 / 9)))


def _design(
    index: pd.DatetimeIndex, start: pd.Timestamp, harmonics: int, periods_per_year: int, slope: bool
) -> pd.DataFrame:
    n = len(index)
    post = (index >= start).astype(float)
    X = pd.DataFrame({"const": 1.0, "time": np.arange(n, dtype=float), "level_change": post}, index=index)
    if slope:
        # Periods since the last pre-intervention period: 1 in the first post period,
        # as in Bernal et al. (2017), so level_change is the step at the interruption.
        last_pre = int(np.argmax(post)) - 1 if post.any() else n
        X["slope_change"] = np.where(post > 0, np.arange(n) - last_pre, 0.0)
    if harmonics:
        X = X.join(fourier_terms(index, harmonics, periods_per_year))
    return X


def _check_series(series: pd.Series, start: pd.Timestamp, n_params: int, name: str) -> pd.Series:
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


def _ljung_box(resid: np.ndarray, lags: int) -> float:
    lags = max(1, min(lags, len(resid) // 4))
    return float(acorr_ljungbox(resid, lags=[lags], return_df=True)["lb_pvalue"].iloc[0])


@dataclass(frozen=True)
class SegmentedITS:
    """Segmented regression with a level and a slope change, by OLS.

    Parameters
    ----------
    intervention_start : str or Timestamp
        First period of the intervention.
    transform : {"log", "identity"}
        ``log`` (default) makes the level change proportional (scale ``log``) and the
        slope change a change in growth (scale ``log_per_year``).
    harmonics : int
        Fourier pairs for seasonality (0 for none).
    periods_per_year : int
        12 for monthly data, 4 for quarterly.
    hac_lags : int, optional
        Newey-West lags; default :func:`newey_west_lags` of the series length.

    Notes
    -----
    Estimand: the change in the series' level at the intervention start and in its
    trend afterwards, relative to the pre-intervention trend projected forward.
    Assumes that trend (with its seasonal pattern) would have continued without the
    intervention and that nothing else changed at the same time; there is no
    comparison group, so a concurrent national change is attributed to the site.
    Newey-West SEs allow for autocorrelated, heteroskedastic errors up to
    ``hac_lags`` periods apart.
    """

    intervention_start: str | pd.Timestamp
    transform: Literal["log", "identity"] = "log"
    harmonics: int = 2
    periods_per_year: int = 12
    hac_lags: int | None = None
    alpha: float = 0.05
    outcome_label: str = "outcome"

    def fit(self, series: pd.Series) -> ITSResult:
        start = pd.Timestamp(self.intervention_start)
        X = _design(
            pd.DatetimeIndex(series.sort_index().index), start, self.harmonics, self.periods_per_year, slope=True
        )
        s = _check_series(series, start, X.shape[1], f"ITS of {self.outcome_label}")
        if self.transform == "log":
            if (s <= 0).any():
                raise DataError(f"ITS of {self.outcome_label}: log transform needs positive values")
            y = np.log(s)
        else:
            y = s
        lags = self.hac_lags if self.hac_lags is not None else newey_west_lags(len(s))
        fit = OLS(y.to_numpy(), X.to_numpy()).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
        params = pd.Series(fit.params, index=X.columns)
        se = pd.Series(fit.bse, index=X.columns)
        dof = len(s) - X.shape[1]
        tcrit = stats.t.ppf(1 - self.alpha / 2, dof)
        rows = []
        for term, scale, mult in (
            ("level_change", "log" if self.transform == "log" else "level", 1.0),
            ("slope_change", "log_per_year" if self.transform == "log" else "level", float(self.periods_per_year)),
        ):
            b, e = params[term] * mult, se[term] * mult
            rows.append(
                Estimate(
                    outcome=self.outcome_label,
                    term=term,
                    estimate=float(b),
                    std_error=float(e),
                    ci_low=float(b - tcrit * e),
                    ci_high=float(b + tcrit * e),
                    p_value=float(2 * stats.t.sf(abs(b / e), dof)),
                    method="its_segmented",
                    inference="newey_west",
                    scale=scale,
                    n_treated=1,
                    n_control=0,
                )
            )
        X_cf = X.assign(level_change=0.0, slope_change=0.0)
        fitted, cf = X.to_numpy() @ params.to_numpy(), X_cf.to_numpy() @ params.to_numpy()
        back = np.exp if self.transform == "log" else (lambda v: v)
        resid = y.to_numpy() - fitted
        return ITSResult(
            rows=tuple(rows),
            observed=s,
            fitted=pd.Series(back(fitted), index=s.index),
            counterfactual=pd.Series(back(cf), index=s.index),
            intervention_start=start,
            n_pre=int((s.index < start).sum()),
            n_post=int((s.index >= start).sum()),
            durbin_watson=float(durbin_watson(resid)),
            ljung_box_p=_ljung_box(resid, self.periods_per_year),
            ljung_box_lags=max(1, min(self.periods_per_year, len(resid) // 4)),
            hac_lags=lags,
        )


@dataclass(frozen=True)
class PoissonITS:
    """Segmented Poisson or quasi-Poisson regression with an exposure offset.

    Parameters
    ----------
    intervention_start : str or Timestamp
        First period of the intervention.
    harmonics : int
        Fourier pairs for seasonality (0 for none).
    slope_change : bool
        Add a change in trend after the start.
    dispersion : {"poisson", "quasi"}
        ``quasi`` scales SEs by the Pearson dispersion (reported in the result).

    Notes
    -----
    Estimand: the rate ratio at the intervention (step) and, with ``slope_change``,
    the ratio of monthly growth rates after vs before, relative to the projected
    pre-intervention trend, with counts per unit of exposure (population).
    ``std_error`` is on the log scale; estimate and interval are rate ratios.
    """

    intervention_start: str | pd.Timestamp
    harmonics: int = 0
    periods_per_year: int = 12
    slope_change: bool = False
    dispersion: Literal["poisson", "quasi"] = "poisson"
    alpha: float = 0.05
    outcome_label: str = "outcome"

    def fit(self, counts: pd.Series, exposure: pd.Series | None = None) -> ITSResult:
        start = pd.Timestamp(self.intervention_start)
        X = _design(
            pd.DatetimeIndex(counts.sort_index().index), start, self.harmonics, self.periods_per_year, self.slope_change
        )
        s = _check_series(counts, start, X.shape[1], f"Poisson ITS of {self.outcome_label}")
        if (s < 0).any() or not np.allclose(s, np.round(s)):
            raise DataError(f"Poisson ITS of {self.outcome_label}: counts must be non-negative whole numbers")
        offset = None
        if exposure is not None:
            e = exposure.reindex(s.index).astype(float)
            if e.isna().any() or (e <= 0).any():
                raise DataError(f"Poisson ITS of {self.outcome_label}: exposure must be positive for every period")
            offset = np.log(e.to_numpy())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = GLM(s.to_numpy(), X.to_numpy(), family=families.Poisson(), offset=offset)
            fit = model.fit(scale="X2" if self.dispersion == "quasi" else 1.0)
        params = pd.Series(fit.params, index=X.columns)
        se = pd.Series(fit.bse, index=X.columns)
        z = stats.norm.ppf(1 - self.alpha / 2)
        terms = ["level_change"] + (["slope_change"] if self.slope_change else [])
        rows = []
        for term in terms:
            b, e = params[term], se[term]
            rows.append(
                Estimate(
                    outcome=self.outcome_label,
                    term=term,
                    estimate=float(np.exp(b)),
                    std_error=float(e),
                    ci_low=float(np.exp(b - z * e)),
                    ci_high=float(np.exp(b + z * e)),
                    p_value=float(2 * stats.norm.sf(abs(b / e))),
                    method="its_poisson",
                    inference="model_based",
                    scale="rate_ratio",
                    n_treated=1,
                    n_control=0,
                )
            )
        X_cf = X.assign(level_change=0.0, **({"slope_change": 0.0} if self.slope_change else {}))
        off = offset if offset is not None else 0.0
        fitted = np.exp(X.to_numpy() @ params.to_numpy() + off)
        cf = np.exp(X_cf.to_numpy() @ params.to_numpy() + off)
        resid = np.asarray(fit.resid_deviance)
        return ITSResult(
            rows=tuple(rows),
            observed=s,
            fitted=pd.Series(fitted, index=s.index),
            counterfactual=pd.Series(cf, index=s.index),
            intervention_start=start,
            n_pre=int((s.index < start).sum()),
            n_post=int((s.index >= start).sum()),
            durbin_watson=float(durbin_watson(resid)),
            ljung_box_p=_ljung_box(resid, self.periods_per_year),
            ljung_box_lags=max(1, min(self.periods_per_year, len(resid) // 4)),
            dispersion=float(fit.scale),
            warnings=tuple(str(w.message) for w in caught),
        )
