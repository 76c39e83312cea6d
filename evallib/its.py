"""Interrupted time series on a site's own series.

:class:`SegmentedITS` is segmented regression (a level and a slope change at each
interruption, an optional phase-in left out of the fit) with Fourier or month-effect
seasonality, by OLS with Newey-West SEs or with ARIMA errors (statsmodels SARIMAX),
optionally controlled by a comparison series. :class:`PoissonITS` is the count
model of Bernal, Cummins & Gasparrini (2017) with a population offset: Poisson,
quasi-Poisson or negative binomial, giving rate ratios. Both return an
:class:`ITSResult` with the tidy table, the fitted and counterfactual series (with
an interval) for plots, effects at chosen horizons, and residual diagnostics.
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
from statsmodels.tsa.stattools import acf as _acf

from evallib.errors import DataError
from evallib.results import Estimate, tidy_frame

Seasonality = Literal["fourier", "month", "none"]


@dataclass(frozen=True)
class ITSResult:
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
    x = _season_position(index, periods_per_year)
    cols = {}
    for k in range(1, harmonics + 1):
        cols[f"sin{k}"] = np.sin(2 * np.pi * k * x / periods_per_year)
        cols[f"cos{k}"] = np.cos(2 * np.pi * k * x / periods_per_year)
    return pd.DataFrame(cols, index=index)


def _season_position(index: pd.DatetimeIndex, periods_per_year: int) -> np.ndarray:
    if periods_per_year == 12:
        return index.month.to_numpy(float)
    if periods_per_year == 4:
        return index.quarter.to_numpy(float)
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
) -> pd.DataFrame:
    """Design matrix: constant, trend, a level (and slope) change per interruption, seasonality.

    With ``phase_in = m`` each change starts ``m`` periods after its interruption
    (those periods are then left out of the fit by the caller). The slope term
    counts periods since the last period before the change (1 in the first changed
    period, as in Bernal et al. 2017), so ``level_change`` is the step itself.
    Terms of the second and later interruptions carry a suffix (``level_change_2``).
    """
    n = len(index)
    X = pd.DataFrame({"const": 1.0, "time": np.arange(n, dtype=float)}, index=index)
    for k, start in enumerate(sorted(interruptions)):
        first = int(np.searchsorted(index.values, np.datetime64(start))) + phase_in
        post = (np.arange(n) >= first).astype(float)
        X[f"level_change{_suffix(k)}"] = post
        if slope:
            X[f"slope_change{_suffix(k)}"] = np.where(post > 0, np.arange(n) - first + 1, 0.0)
    if seasonality == "fourier" and harmonics:
        X = X.join(fourier_terms(index, harmonics, periods_per_year))
    elif seasonality == "month":
        pos = _season_position(index, periods_per_year).astype(int)
        for m in range(2, periods_per_year + 1):
            X[f"season{m}"] = (pos == m).astype(float)
    return X


def _intervention_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if c.startswith(("level_change", "slope_change"))]


def _phase_in_mask(index: pd.DatetimeIndex, interruptions: list[pd.Timestamp], phase_in: int) -> np.ndarray:
    """True for the periods left out of the fit: the first ``phase_in`` after each interruption."""
    out = np.zeros(len(index), bool)
    for start in interruptions:
        first = int(np.searchsorted(index.values, np.datetime64(start)))
        out[first : first + phase_in] = True
    return out


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


def _diagnostics(resid: np.ndarray, periods_per_year: int) -> dict[str, float | int]:
    """Durbin-Watson and Ljung-Box (at a year's lag, at most a quarter of the series) of residuals."""
    lags = max(1, min(periods_per_year, len(resid) // 4))
    return {
        "durbin_watson": float(durbin_watson(resid)),
        "ljung_box_p": _ljung_box(resid, lags),
        "ljung_box_lags": lags,
    }


def _its_result(
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
        **_diagnostics(resid, periods_per_year),
        **extra,  # type: ignore[arg-type]
    )


def _ljung_box(resid: np.ndarray, lags: int) -> float:
    lags = max(1, min(lags, len(resid) // 4))
    return float(acorr_ljungbox(resid, lags=[lags], return_df=True)["lb_pvalue"].iloc[0])


def _row(
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
    return Estimate(label, term, float(est), float(se), float(lo), float(hi), float(p), method, inference, scale, 1, 0)


@dataclass(frozen=True)
class SegmentedITS:
    """Segmented regression with level and slope changes, by OLS or with ARIMA errors.

    Parameters
    ----------
    intervention_start : str or Timestamp
        First period of the (main) intervention.
    additional_interruptions : tuple
        Further interruption dates (e.g. an ICS designation after a vanguard start);
        each adds ``level_change_k`` and ``slope_change_k``.
    phase_in : int
        Periods after each interruption left out of the fit (an implementation
        period); the changes are measured from its end.
    transform : {"log", "identity"}
        ``log`` (default) makes the level change proportional (scale ``log``) and the
        slope change a change in growth (scale ``log_per_year``).
    seasonality : {"fourier", "month", "none"}
        Fourier pairs (``harmonics`` of them) or one effect per calendar month.
    errors : {"newey_west", "ols", "arima"}
        OLS with Newey-West SEs (``hac_lags``, default :func:`newey_west_lags`), plain
        OLS SEs (which under-cover with autocorrelated errors; for comparison), or a
        regression with ARMA ``arima_order`` errors (statsmodels SARIMAX), whose
        counterfactual interval comes from the pre-period model's forecast.
    horizons : tuple of int
        Report the effect this many periods after the start (1 = the first period).
    n_sim : int
        Draws from the coefficients' sampling distribution for effect intervals.

    Notes
    -----
    Estimand: the change in the series' level at the interruption and in its trend
    afterwards, relative to the pre-intervention trend (and seasonal pattern)
    projected forward; the effect at horizon ``h`` is the fitted series over that
    counterfactual at ``h`` periods after the start, and the cumulative effect sums
    observed minus counterfactual over the post-period. Assumes the trend would have
    continued and that nothing else changed at the same time. With ``comparison``
    (controlled ITS) a comparison series absorbs shocks common to both: as the
    difference of the two (``controlled="difference"``) or as a second group with
    its own level and trend (``"two_group"``, SEs robust to correlation across the
    two series and over time).
    """

    intervention_start: str | pd.Timestamp
    additional_interruptions: tuple[str | pd.Timestamp, ...] = ()
    phase_in: int = 0
    transform: Literal["log", "identity"] = "log"
    seasonality: Seasonality = "fourier"
    harmonics: int = 2
    periods_per_year: int = 12
    errors: Literal["newey_west", "ols", "arima"] = "newey_west"
    hac_lags: int | None = None
    arima_order: tuple[int, int, int] = (1, 0, 0)
    alpha: float = 0.05
    outcome_label: str = "outcome"
    horizons: tuple[int, ...] = (12, 24)
    n_sim: int = 2000
    seed: int = 2015

    def _y(self, s: pd.Series, what: str) -> pd.Series:
        if self.transform == "log":
            if (s <= 0).any():
                raise DataError(f"ITS of {self.outcome_label}: log transform needs positive {what}")
            return np.log(s)
        return s

    def _back(self, v: np.ndarray) -> np.ndarray:
        return np.exp(v) if self.transform == "log" else v

    def fit(
        self,
        series: pd.Series,
        comparison: pd.Series | None = None,
        controlled: Literal["difference", "two_group"] = "difference",
    ) -> ITSResult:
        """Fit the model to ``series`` (indexed by period), optionally controlled by ``comparison``."""
        start = pd.Timestamp(self.intervention_start)
        starts = [start, *(pd.Timestamp(x) for x in self.additional_interruptions)]
        index = pd.DatetimeIndex(series.sort_index().index)
        X = its_design(
            index,
            starts,
            phase_in=self.phase_in,
            seasonality=self.seasonality,
            harmonics=self.harmonics,
            periods_per_year=self.periods_per_year,
        )
        name = f"ITS of {self.outcome_label}"
        s = _check_series(series, start, X.shape[1], name)
        y = self._y(s, "values")
        method = "its_segmented"
        if comparison is not None:
            c = _check_series(comparison.reindex(s.index), start, X.shape[1], f"{name} (comparison series)")
            yc = self._y(c, "comparison values")
            if controlled == "difference":
                y = y - yc
                method = "its_controlled_difference"
            elif controlled == "two_group":
                return self._fit_two_group(s, y, yc, X, starts)
            else:
                raise DataError(f"{name}: controlled must be 'difference' or 'two_group', not {controlled!r}")
        keep = ~_phase_in_mask(index, starts, self.phase_in)
        if self.errors == "arima":
            return self._fit_arima(s, y, X, keep, starts, method)
        lags = self.hac_lags if self.hac_lags is not None else newey_west_lags(int(keep.sum()))
        cov = {"cov_type": "HAC", "cov_kwds": {"maxlags": lags}} if self.errors == "newey_west" else {}
        if self.errors not in ("newey_west", "ols"):
            raise DataError(f"{name}: errors must be newey_west, ols or arima, not {self.errors!r}")
        fit = OLS(y.to_numpy()[keep], X.to_numpy()[keep]).fit(**cov)
        beta, vcov = np.asarray(fit.params), np.asarray(fit.cov_params())
        dof = int(keep.sum()) - X.shape[1]
        inference = "newey_west" if self.errors == "newey_west" else "ols"
        rows = self._change_rows(X, beta, np.sqrt(np.diag(vcov)), dof, method, inference)
        resid = y.to_numpy()[keep] - X.to_numpy()[keep] @ beta
        draws = np.random.default_rng(self.seed).multivariate_normal(beta, vcov, size=self.n_sim, method="cholesky")
        cf_cols = _intervention_columns(X)
        Xcf = X.assign(**{c: 0.0 for c in cf_cols}).to_numpy()
        eta_with, eta_cf = X.to_numpy() @ beta, Xcf @ beta
        sims_with, sims_cf = draws @ X.to_numpy().T, draws @ Xcf.T
        if method == "its_controlled_difference":
            base = self._y(c, "comparison values").to_numpy()
            level = s.to_numpy()
            # Back on the outcome's scale: the comparison's observed path plus the modelled gap.
            with_, cf = self._back(base + eta_with), self._back(base + eta_cf)
            sims_with, sims_cf = self._back(base + sims_with), self._back(base + sims_cf)
        else:
            level = s.to_numpy()
            with_, cf = self._back(eta_with), self._back(eta_cf)
            sims_with, sims_cf = self._back(sims_with), self._back(sims_cf)
        rows += self._effect_rows(s.index, start, level, with_, cf, sims_with, sims_cf, method, inference)
        q = [self.alpha / 2, 1 - self.alpha / 2]
        lo_hi = np.quantile(sims_cf, q, axis=0)
        post = s.index >= start
        return _its_result(
            rows,
            s,
            start,
            with_,
            cf,
            resid,
            self.periods_per_year,
            hac_lags=lags if self.errors == "newey_west" else None,
            counterfactual_low=pd.Series(np.where(post, lo_hi[0], np.nan), index=s.index),
            counterfactual_high=pd.Series(np.where(post, lo_hi[1], np.nan), index=s.index),
            residuals=pd.Series(resid, index=s.index[keep]),
            residual_acf=_acf(resid, nlags=min(24, len(resid) // 3), fft=False)[1:],
            excluded=tuple(s.index[~keep]),
            errors=self.errors,
        )

    def _scales(self) -> tuple[str, str]:
        return ("log", "log_per_year") if self.transform == "log" else ("level", "level_per_year")

    def _change_rows(
        self,
        X: pd.DataFrame,
        beta: np.ndarray,
        se: np.ndarray,
        dof: int,
        method: str,
        inference: str,
        normal: bool = False,
    ) -> list[Estimate]:
        crit = stats.norm.ppf(1 - self.alpha / 2) if normal else stats.t.ppf(1 - self.alpha / 2, dof)
        level_scale, slope_scale = self._scales()
        rows = []
        for j, col in enumerate(X.columns):
            if not col.startswith(("level_change", "slope_change")):
                continue
            mult = float(self.periods_per_year) if col.startswith("slope") else 1.0
            b, e = beta[j] * mult, se[j] * mult
            p = 2 * (stats.norm.sf(abs(b / e)) if normal else stats.t.sf(abs(b / e), dof))
            scale = slope_scale if col.startswith("slope") else level_scale
            rows.append(_row(self.outcome_label, col, b, e, b - crit * e, b + crit * e, p, method, inference, scale))
        return rows

    def _effect_rows(
        self,
        index: pd.DatetimeIndex,
        start: pd.Timestamp,
        observed: np.ndarray,
        with_: np.ndarray,
        cf: np.ndarray,
        sims_with: np.ndarray,
        sims_cf: np.ndarray,
        method: str,
        inference: str,
    ) -> list[Estimate]:
        """Relative and absolute effects at each horizon, and the cumulative effect."""
        q = [self.alpha / 2, 1 - self.alpha / 2]
        post = np.flatnonzero(index >= start)
        rows = []
        for h in self.horizons:
            if h > len(post):
                continue
            i = post[h - 1]
            rel = (
                100 * (sims_with[:, i] / sims_cf[:, i] - 1)
                if self.transform == "log"
                else sims_with[:, i] - sims_cf[:, i]
            )
            est = 100 * (with_[i] / cf[i] - 1) if self.transform == "log" else with_[i] - cf[i]
            lo, hi = np.quantile(rel, q)
            p = 2 * min(np.mean(rel <= 0), np.mean(rel >= 0))
            scale = "percent" if self.transform == "log" else "level"
            rows.append(
                _row(
                    self.outcome_label, f"effect_at_{h}", est, np.std(rel, ddof=1), lo, hi, p, method, inference, scale
                )
            )
        if self.transform == "log":
            cum = (observed[post][None, :] - sims_cf[:, post]).sum(axis=1)
            est = float((observed[post] - cf[post]).sum())
            lo, hi = np.quantile(cum, q)
            p = 2 * min(np.mean(cum <= 0), np.mean(cum >= 0))
            rows.append(
                _row(
                    self.outcome_label,
                    "cumulative_effect",
                    est,
                    np.std(cum, ddof=1),
                    lo,
                    hi,
                    p,
                    method,
                    inference,
                    "count",
                )
            )
        return rows

    def _fit_arima(
        self, s: pd.Series, y: pd.Series, X: pd.DataFrame, keep: np.ndarray, starts: list[pd.Timestamp], method: str
    ) -> ITSResult:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        start = starts[0]
        yk = y.where(keep)  # SARIMAX skips missing observations: the phase-in is left out
        # Regression with ARMA errors: the constant is a regressor (SARIMAX's trend="c" would put it
        # in the AR recursion instead of the mean).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = SARIMAX(yk.to_numpy(), exog=X.to_numpy(), order=self.arima_order, trend="n").fit(disp=False)
            pre = s.index < start
            exog_cf = X.drop(columns=_intervention_columns(X))
            pre_model = SARIMAX(
                yk.to_numpy()[pre], exog=exog_cf.to_numpy()[pre], order=self.arima_order, trend="n"
            ).fit(disp=False)
            fc = pre_model.get_forecast(steps=int((~pre).sum()), exog=exog_cf.to_numpy()[~pre])
        k = X.shape[1]
        beta = pd.Series(np.asarray(res.params)[:k], index=X.columns)
        se = pd.Series(np.asarray(res.bse)[:k], index=X.columns)
        Xo = X
        rows = self._change_rows(Xo, beta.to_numpy(), se.to_numpy(), 0, "its_arima", "arima_model_based", normal=True)
        fitted = self._back(Xo.to_numpy() @ beta.to_numpy())
        cf_mean = np.concatenate([np.asarray(pre_model.fittedvalues), np.asarray(fc.predicted_mean)])
        ci = np.asarray(fc.conf_int(alpha=self.alpha))
        post = ~pre
        cf_low = np.full(len(s), np.nan)
        cf_high = np.full(len(s), np.nan)
        cf_low[post], cf_high[post] = self._back(ci[:, 0]), self._back(ci[:, 1])
        # Effects at horizons: observed relative to the forecast counterfactual, with the forecast's interval.
        post_idx = np.flatnonzero(post)
        sd = np.sqrt(np.asarray(fc.var_pred_mean))
        z = stats.norm.ppf(1 - self.alpha / 2)
        for h in self.horizons:
            if h > len(post_idx):
                continue
            i, m, v = post_idx[h - 1], fc.predicted_mean[h - 1], sd[h - 1]
            obs = y.to_numpy()[i]
            if self.transform == "log":
                est, lo, hi, scale = (
                    100 * (np.exp(obs - m) - 1),
                    100 * (np.exp(obs - m - z * v) - 1),
                    100 * (np.exp(obs - m + z * v) - 1),
                    "percent",
                )
            else:
                est, lo, hi, scale = obs - m, obs - m - z * v, obs - m + z * v, "level"
            p = 2 * stats.norm.sf(abs((obs - m) / v))
            rows.append(
                _row(self.outcome_label, f"effect_at_{h}", est, v, lo, hi, p, "its_arima", "arima_forecast", scale)
            )
        resid = np.asarray(res.resid)[keep]
        return _its_result(
            rows,
            s,
            start,
            fitted,
            self._back(cf_mean),
            resid,
            self.periods_per_year,
            counterfactual_low=pd.Series(cf_low, index=s.index),
            counterfactual_high=pd.Series(cf_high, index=s.index),
            residuals=pd.Series(resid, index=s.index[keep]),
            residual_acf=_acf(resid, nlags=min(24, len(resid) // 3), fft=False)[1:],
            excluded=tuple(s.index[~keep]),
            errors="arima",
            warnings=tuple(str(w.message) for w in caught),
        )

    def _fit_two_group(
        self, s: pd.Series, y: pd.Series, yc: pd.Series, X: pd.DataFrame, starts: list[pd.Timestamp]
    ) -> ITSResult:
        """Multiple-group ITS: both series stacked, the treated one with its own level, trend and changes."""
        n = len(X)
        Xg = pd.concat([X, X], ignore_index=True)
        group = np.r_[np.zeros(n), np.ones(n)]
        for c in ["const", "time", *_intervention_columns(X)]:
            Xg[f"group_x_{c}"] = Xg[c] * group
        keep1 = ~_phase_in_mask(X.index, starts, self.phase_in)
        keep = np.r_[keep1, keep1]
        yy = np.r_[yc.to_numpy(), y.to_numpy()]
        time_idx = np.r_[np.arange(n), np.arange(n)]
        lags = self.hac_lags if self.hac_lags is not None else newey_west_lags(int(keep1.sum()))
        fit = OLS(yy[keep], Xg.to_numpy()[keep]).fit(
            cov_type="hac-groupsum", cov_kwds={"time": time_idx[keep], "maxlags": lags}
        )
        beta, se = np.asarray(fit.params), np.asarray(fit.bse)
        cols = list(Xg.columns)
        sel = [cols.index(f"group_x_{c}") for c in _intervention_columns(X)]
        sub = pd.DataFrame(columns=_intervention_columns(X))
        rows = self._change_rows(
            sub, beta[sel], se[sel], int(keep.sum()) - Xg.shape[1], "its_controlled_two_group", "driscoll_kraay"
        )
        Xt = Xg.iloc[n:].to_numpy()
        Xt_cf = Xg.iloc[n:].assign(**{f"group_x_{c}": 0.0 for c in _intervention_columns(X)}).to_numpy()
        resid = (yy - Xg.to_numpy() @ beta)[n:][keep1]
        start = starts[0]
        return _its_result(
            rows,
            s,
            start,
            self._back(Xt @ beta),
            self._back(Xt_cf @ beta),
            resid,
            self.periods_per_year,
            hac_lags=lags,
            residuals=pd.Series(resid, index=s.index[keep1]),
            excluded=tuple(s.index[~keep1]),
        )


@dataclass(frozen=True)
class PoissonITS:
    """Segmented Poisson, quasi-Poisson or negative binomial regression with an exposure offset.

    Parameters
    ----------
    intervention_start : str or Timestamp
        First period of the intervention.
    harmonics : int
        Fourier pairs for seasonality (0 for none).
    slope_change : bool
        Add a change in trend after the start.
    dispersion : {"poisson", "quasi", "negative_binomial"}
        ``quasi`` scales SEs by the Pearson dispersion (reported in the result);
        ``negative_binomial`` fits NB2 by maximum likelihood (``dispersion`` is its alpha).

    Notes
    -----
    Estimand: the rate ratio at the intervention (step) and, with ``slope_change``,
    the ratio of monthly growth rates after vs before, relative to the projected
    pre-intervention trend, with counts per unit of exposure (population).
    ``std_error`` is on the log scale; estimate and interval are rate ratios. The
    result's ``trend_per_year`` is the underlying (pre-intervention) trend as a
    yearly rate ratio.
    """

    intervention_start: str | pd.Timestamp
    harmonics: int = 0
    periods_per_year: int = 12
    slope_change: bool = False
    dispersion: Literal["poisson", "quasi", "negative_binomial"] = "poisson"
    alpha: float = 0.05
    outcome_label: str = "outcome"

    def fit(self, counts: pd.Series, exposure: pd.Series | None = None) -> ITSResult:
        start = pd.Timestamp(self.intervention_start)
        X = its_design(
            pd.DatetimeIndex(counts.sort_index().index),
            [start],
            slope=self.slope_change,
            seasonality="fourier" if self.harmonics else "none",
            harmonics=self.harmonics,
            periods_per_year=self.periods_per_year,
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
            if self.dispersion == "negative_binomial":
                from statsmodels.discrete.discrete_model import NegativeBinomial

                nb = NegativeBinomial(s.to_numpy(), X.to_numpy(), offset=offset, loglike_method="nb2").fit(
                    disp=False, maxiter=200
                )
                params = pd.Series(np.asarray(nb.params)[: X.shape[1]], index=X.columns)
                se = pd.Series(np.asarray(nb.bse)[: X.shape[1]], index=X.columns)
                scale_value = float(np.asarray(nb.params)[-1])
                resid_raw = (s.to_numpy() - nb.predict(X.to_numpy(), offset=offset)) / np.sqrt(
                    nb.predict(X.to_numpy(), offset=offset)
                )
            else:
                model = GLM(s.to_numpy(), X.to_numpy(), family=families.Poisson(), offset=offset)
                fit = model.fit(scale="X2" if self.dispersion == "quasi" else 1.0)
                params = pd.Series(fit.params, index=X.columns)
                se = pd.Series(fit.bse, index=X.columns)
                scale_value = float(fit.scale)
                resid_raw = np.asarray(fit.resid_deviance)
        z = stats.norm.ppf(1 - self.alpha / 2)
        terms = ["level_change"] + (["slope_change"] if self.slope_change else [])
        rows = []
        for term in terms:
            b, e = params[term], se[term]
            rows.append(
                _row(
                    self.outcome_label,
                    term,
                    np.exp(b),
                    e,
                    np.exp(b - z * e),
                    np.exp(b + z * e),
                    2 * stats.norm.sf(abs(b / e)),
                    "its_poisson" if self.dispersion != "negative_binomial" else "its_negative_binomial",
                    "model_based",
                    "rate_ratio",
                )
            )
        X_cf = X.assign(**{c: 0.0 for c in _intervention_columns(X)})
        off = offset if offset is not None else 0.0
        fitted = np.exp(X.to_numpy() @ params.to_numpy() + off)
        cf = np.exp(X_cf.to_numpy() @ params.to_numpy() + off)
        return _its_result(
            rows,
            s,
            start,
            fitted,
            cf,
            resid_raw,
            self.periods_per_year,
            dispersion=scale_value,
            warnings=tuple(str(w.message) for w in caught),
            residuals=pd.Series(resid_raw, index=s.index),
            errors="model_based",
            trend_per_year=float(np.exp(params["time"] * self.periods_per_year)),
        )
