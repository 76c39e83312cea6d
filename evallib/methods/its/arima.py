"""Segmented regression with ARMA errors (statsmodels SARIMAX), fitted to the maximum of its likelihood.

Used by :class:`~evallib.methods.its.segmented.SegmentedITS` with ``errors="arima"``. Its intervals are
approximate (normal critical values, the ARMA parameters' uncertainty ignored): in the Monte Carlo
suite they cover less than 95%, so their inference names end in ``_approx``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.tsa.stattools import acf

from evallib.methods.its.model import ITSResult, ITSSpec, intervention_columns, its_result, its_row
from evallib.methods.its.reml import gls_ar1


def ar1_ml_start(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Maximum likelihood of a regression with AR(1) errors, directly: ``(beta, rho, sigma2)``.

    The exact Gaussian likelihood profiled over ``beta`` and the innovation variance is a
    function of ``rho`` alone, maximised by a bounded scalar search; missing values of ``y``
    are gaps (``rho**g`` across a gap of ``g``).
    """
    keep = np.isfinite(y)
    times = np.flatnonzero(keep)
    yk, Xk = y[keep], X[keep]
    n = len(yk)

    def neg(rho: float) -> float:
        _, _, rss, logdet = gls_ar1(yk, Xk, times, rho)
        return n * np.log(rss / n) + logdet

    grid = np.linspace(-0.95, 0.95, 39)
    i = int(np.argmin([neg(r) for r in grid]))
    lo, hi = grid[max(i - 1, 0)] if i > 0 else -0.99, grid[min(i + 1, 38)] if i < 38 else 0.99
    rho = float(optimize.minimize_scalar(neg, bounds=(lo, hi), method="bounded", options={"xatol": 1e-8}).x)
    beta, _, rss, _ = gls_ar1(yk, Xk, times, rho)
    return beta, rho, rss / n


def fit_sarimax(y: np.ndarray, X: np.ndarray, order: tuple[int, int, int]) -> tuple[Any, np.ndarray, float]:
    """SARIMAX regression with ARMA errors at its maximum likelihood.

    Returns the statsmodels results (on standardised regressors), the column scales (divide
    the exog coefficients by them) and the log-likelihood of the direct AR(1) fit it beat.

    Notes
    -----
    The default fit stops near the OLS coefficients: the regressors' scales differ by two
    orders of magnitude (a constant, a time count up to ~100, Fourier terms) and the
    optimiser gives up after 50 iterations. Here the regressors are standardised, the
    start is the direct AR(1) maximum likelihood (:func:`ar1_ml_start`) for the
    coefficients and the first AR term, L-BFGS runs to convergence and, if the result is
    below the start's likelihood, Powell polishes from the better point. Missing values
    of ``y`` are skipped by the Kalman filter.
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    sc = X.std(axis=0)
    sc = np.where(sc > 0, sc, np.abs(X).max(axis=0))
    sc = np.where(sc > 0, sc, 1.0)
    Xs = X / sc
    beta, rho, sigma2 = ar1_ml_start(y, X)
    model = SARIMAX(y, exog=Xs, order=order, trend="n")
    start = np.asarray(model.start_params, float).copy()
    k = X.shape[1]
    start[:k] = beta * sc
    if order[0] >= 1:
        start[k] = rho
    start[-1] = sigma2
    start_ll = float(model.loglike(start)) if order[0] >= 1 else -np.inf
    res = model.fit(start_params=start, method="lbfgs", maxiter=2000, disp=False)
    if res.llf < start_ll - 1e-8:
        res = model.fit(start_params=start, method="powell", maxiter=20000, disp=False)
    return res, sc, start_ll


def fit_arima_its(
    model: ITSSpec, s: pd.Series, y: pd.Series, X: pd.DataFrame, keep: np.ndarray, starts: list[pd.Timestamp]
) -> ITSResult:
    """:class:`SegmentedITS` with ARMA errors: changes from the whole-series fit, effects against the
    pre-period model's forecast (approximate intervals).
    """
    start = starts[0]
    yk = y.where(keep).to_numpy()  # SARIMAX skips missing observations: the phase-in is left out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res, sc, _ = fit_sarimax(yk, X.to_numpy(), model.arima_order)
        pre = np.asarray(s.index < start)
        exog_cf = X.drop(columns=intervention_columns(X)).to_numpy()
        pre_res, pre_sc, _ = fit_sarimax(yk[pre], exog_cf[pre], model.arima_order)
        fc = pre_res.get_forecast(steps=int((~pre).sum()), exog=exog_cf[~pre] / pre_sc)
    k = X.shape[1]
    beta = np.asarray(res.params)[:k] / sc
    se = np.asarray(res.bse)[:k] / sc
    rows = model.change_rows(X, beta, se, 0, "its_arima", "arima_approx", normal=True)
    fitted = model.back(X.to_numpy() @ beta)
    cf_mean = np.concatenate([np.asarray(pre_res.fittedvalues), np.asarray(fc.predicted_mean)])
    ci = np.asarray(fc.conf_int(alpha=model.alpha))
    post = ~pre
    cf_low, cf_high = np.full(len(s), np.nan), np.full(len(s), np.nan)
    cf_low[post], cf_high[post] = model.back(ci[:, 0]), model.back(ci[:, 1])
    # Effects at horizons: observed relative to the forecast counterfactual, with the forecast's interval.
    post_idx = np.flatnonzero(post)
    sd = np.sqrt(np.asarray(fc.var_pred_mean))
    z = stats.norm.ppf(1 - model.alpha / 2)
    for h in model.horizons:
        if h > len(post_idx):
            continue
        i, m, v = post_idx[h - 1], np.asarray(fc.predicted_mean)[h - 1], sd[h - 1]
        obs = y.to_numpy()[i]
        if model.transform == "log":
            est, lo, hi = (100 * (np.exp(obs - m + d) - 1) for d in (0.0, -z * v, z * v))
            scale = "percent"
        else:
            est, lo, hi, scale = obs - m, obs - m - z * v, obs - m + z * v, "level"
        p = 2 * stats.norm.sf(abs((obs - m) / v))
        rows.append(
            its_row(
                model.outcome_label, f"effect_at_{h}", est, v, lo, hi, p, "its_arima", "arima_forecast_approx", scale
            )
        )
    resid = np.asarray(res.resid)[keep]
    return its_result(
        rows,
        s,
        start,
        fitted,
        model.back(cf_mean),
        resid,
        model.periods_per_year,
        counterfactual_low=pd.Series(cf_low, index=s.index),
        counterfactual_high=pd.Series(cf_high, index=s.index),
        residuals=pd.Series(resid, index=s.index[keep]),
        residual_acf=acf(resid, nlags=min(24, len(resid) // 3), fft=False)[1:],
        excluded=tuple(s.index[~keep]),
        errors="arima",
        warnings=tuple(str(w.message) for w in caught),
    )
