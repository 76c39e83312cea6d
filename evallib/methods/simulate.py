"""Simulate area x month count panels with a known effect.

Used by the tests (does an estimator recover the effect it was given? does its
test reject 5% of the time when there is none?) and by evaluators who want to
check the power of their own site's design before the results are in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_panel(
    n_units: int = 60,
    n_periods: int = 72,
    *,
    treated: int | list[int] = 1,
    start_period: int = 48,
    effect: float = 0.0,
    baseline_rate: float = 0.02,
    population: tuple[float, float] = (150_000, 600_000),
    trend_sd: float = 0.01,
    seasonal_amplitude: float = 0.08,
    ar_coefficient: float = 0.5,
    noise_sd: float = 0.03,
    overdispersion: float = 200.0,
    first_month: str = "2011-04",
    seed: int | None = None,
) -> pd.DataFrame:
    """Monthly counts for ``n_units`` areas, with a multiplicative effect on the treated.

    Parameters
    ----------
    n_units, n_periods : int
        Areas and months.
    treated : int or list of int
        Number of treated areas (the first ones), or their positions.
    start_period : int
        Position of the first month with the effect.
    effect : float
        Effect on the log of the expected count from ``start_period`` on
        (``0.05`` is about +5%).
    baseline_rate : float
        Monthly events per head of population.
    population : (low, high)
        Populations are drawn log-uniformly in this range.
    trend_sd : float
        SD across areas of each area's own linear trend (log per year); the common
        trend is zero.
    seasonal_amplitude : float
        Amplitude of a shared annual cycle (log scale).
    ar_coefficient, noise_sd : float
        Area-level AR(1) noise on the log scale: autocorrelated shocks.
    overdispersion : float
        Gamma-Poisson shape; smaller means more overdispersed (``np.inf`` for Poisson).
    seed : int, optional
        Random seed.

    Returns
    -------
    DataFrame
        Columns ``unit``, ``period``, ``value`` (count), ``population``,
        ``treated`` (0/1 per unit), ``post`` (0/1 per period), ``true_log_rate``.

    Notes
    -----
    ``log E[count] = log(pop * rate) + unit trend + season + AR(1) noise + effect * treated * post``.
    Parallel trends hold in expectation (area trends are drawn independently of
    treatment), so DiD on the log outcome is unbiased for ``effect``; the AR(1)
    noise makes naive standard errors too small.
    """
    rng = np.random.default_rng(seed)
    treated_idx = list(range(treated)) if isinstance(treated, int) else list(treated)
    is_t = np.zeros(n_units, bool)
    is_t[treated_idx] = True
    lo, hi = np.log(population[0]), np.log(population[1])
    pop = np.exp(rng.uniform(lo, hi, n_units))
    t = np.arange(n_periods)
    periods = pd.date_range(first_month, periods=n_periods, freq="MS")
    season = seasonal_amplitude * np.cos(2 * np.pi * (periods.month.to_numpy() - 1) / 12)
    trends = rng.normal(0, trend_sd, n_units)[:, None] * t[None, :] / 12
    noise = np.zeros((n_units, n_periods))
    shocks = rng.normal(0, noise_sd, (n_units, n_periods))
    noise[:, 0] = shocks[:, 0] / np.sqrt(max(1e-12, 1 - ar_coefficient**2))
    for j in range(1, n_periods):
        noise[:, j] = ar_coefficient * noise[:, j - 1] + shocks[:, j]
    post = t >= start_period
    log_mu = (
        np.log(pop * baseline_rate)[:, None]
        + trends
        + season[None, :]
        + noise
        + effect * (is_t[:, None] & post[None, :])
    )
    mu = np.exp(log_mu)
    if np.isfinite(overdispersion):
        mu = rng.gamma(overdispersion, mu / overdispersion)
    counts = rng.poisson(mu)
    return pd.DataFrame(
        {
            "unit": np.repeat([f"U{i:03d}" for i in range(n_units)], n_periods),
            "period": np.tile(periods, n_units),
            "value": counts.ravel().astype(float),
            "population": np.repeat(pop.round(), n_periods),
            "treated": np.repeat(is_t.astype(int), n_periods),
            "post": np.tile(post.astype(int), n_units),
            "true_log_rate": log_mu.ravel(),
        }
    )
