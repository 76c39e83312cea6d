"""Simulate area x month count panels with a known effect.

Used by the tests (does an estimator recover the effect it was given? does its
test reject 5% of the time when there is none?) and by evaluators who want to
check the power of their own site's design before the results are in.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def nhs_log_panels(
    n_reps: int,
    n_units: int = 130,
    n_periods: int = 96,
    *,
    n_treated: int = 1,
    start_period: int = 60,
    effect: float = 0.0,
    treated_volatility: float | None = None,
    volatility_scales_drift: bool = True,
    trend_sd: float = 0.02,
    common_trend: float = 0.02,
    seasonal_amplitude: float = 0.07,
    ar_coefficient: float = 0.6,
    noise_sd: float = 0.05,
    noise_spread: float = 0.5,
    common_sd: float = 0.02,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected log counts of ``n_reps`` NHS-like trust panels at once, and each unit's volatility.

    Returns ``(log_mu, volatility)`` with shapes ``(n_reps, n_units, n_periods)`` and
    ``(n_reps, n_units)``; the first ``n_treated`` units are treated. See
    :func:`simulate_nhs_panel` for the model.
    """
    rng = np.random.default_rng(seed)
    r, n, t_ = n_reps, n_units, n_periods
    t = np.arange(t_)
    vol = np.exp(rng.normal(0.0, noise_spread, (r, n)))  # median 1: a typical trust
    if treated_volatility is not None:
        vol[:, 0] = treated_volatility  # the first treated trust
    drift_scale = vol if volatility_scales_drift else np.ones_like(vol)
    drift = rng.normal(0.0, trend_sd, (r, n)) * drift_scale  # log per year
    month = (t + 3) % 12  # period 0 is April
    season = seasonal_amplitude * np.cos(2 * np.pi * month / 12) + 0.3 * seasonal_amplitude * np.sin(
        4 * np.pi * month / 12
    )
    rho = ar_coefficient
    innov_sd = np.sqrt(1 - rho**2)  # unit-variance stationary AR(1), scaled below
    shocks = rng.normal(0.0, 1.0, (r, n + 1, t_))
    ar = np.empty_like(shocks)
    ar[..., 0] = shocks[..., 0]
    for j in range(1, t_):
        ar[..., j] = rho * ar[..., j - 1] + innov_sd * shocks[..., j]
    noise = ar[:, :n] * (noise_sd * vol)[..., None]
    common = common_sd * ar[:, n] + common_trend * t / 12 + season  # shared by every trust
    level = np.log(rng.uniform(4_000, 20_000, (r, n)))
    log_mu = level[..., None] + drift[..., None] * t / 12 + common[:, None, :] + noise
    log_mu[:, :n_treated, start_period:] += effect
    return log_mu, vol


def simulate_nhs_panel(
    n_units: int = 130,
    n_periods: int = 96,
    *,
    n_treated: int = 1,
    start_period: int = 60,
    effect: float = 0.0,
    treated_volatility: float | None = None,
    volatility_scales_drift: bool = True,
    trend_sd: float = 0.02,
    ar_coefficient: float = 0.6,
    noise_sd: float = 0.05,
    noise_spread: float = 0.5,
    first_month: str = "2011-04",
    seed: int | None = None,
) -> pd.DataFrame:
    """One NHS-like panel of monthly counts (e.g. A&E attendances of 130 trusts over 8 years).

    Parameters
    ----------
    n_units, n_periods : int
        Trusts and months.
    n_treated : int
        The first ``n_treated`` trusts are treated.
    start_period : int
        First month with the effect.
    effect : float
        Multiplicative effect on the treated trusts' expected counts from ``start_period``
        on, as a log (``-0.2`` is about -18%).
    treated_volatility : float, optional
        Make the first treated trust this many times as volatile as the median trust (3 is
        about the most volatile 1-2% of trusts); by default it is drawn like the rest.
    volatility_scales_drift : bool
        A trust's volatility scales its drift as well as its noise (default), or only its
        noise.
    trend_sd : float
        SD of the trusts' own linear drifts (log per year) at median volatility.
    ar_coefficient, noise_sd, noise_spread : float
        Each trust's AR(1) noise on the log scale: lag-one correlation, marginal SD at median
        volatility, and the SD of log volatility across trusts.
    first_month : str
        The first period.
    seed : int, optional
        Random seed.

    Returns
    -------
    DataFrame
        Columns ``unit``, ``period``, ``value`` (count), ``population``, ``treated``, ``post``,
        ``log_mu`` (the expected log count) and ``volatility`` (per trust).

    Notes
    -----
    ``log E[count] = trust level + drift_i t + national (trend + season + AR(1) shocks)
    + v_i AR(1)_i + effect x treated x post``, counts Poisson given the mean. The numbers
    follow the bundled A&E panel: AR(1) correlation about 0.6-0.75, residual SD after
    period effects and trust trends 0.02-0.18 (median 0.05), trust drifts of a few
    percent a year, a seasonal range of about 15%. Trusts are exchangeable up to their
    volatility ``v_i`` (log-normal, median 1), which scales their whole idiosyncratic
    variation unless ``volatility_scales_drift=False``: a plain placebo test assumes
    exchangeability, the studentized one only exchangeability up to that scale. Scaling
    the drift too is what the bundled panel shows: regressing log |change over a start|
    on log pre-period noise (:func:`evallib.methods.inference.volatility.pre_period_noise`) across
    trusts gives slopes of 0.85-0.99, and log |drift| on log noise 0.71-0.94.
    """
    log_mu, vol = nhs_log_panels(
        1,
        n_units,
        n_periods,
        n_treated=n_treated,
        start_period=start_period,
        effect=effect,
        treated_volatility=treated_volatility,
        volatility_scales_drift=volatility_scales_drift,
        trend_sd=trend_sd,
        ar_coefficient=ar_coefficient,
        noise_sd=noise_sd,
        noise_spread=noise_spread,
        seed=seed,
    )
    rng = np.random.default_rng(None if seed is None else seed + 1)
    counts = rng.poisson(np.exp(log_mu[0]))
    return panel_frame(counts, log_mu[0], vol[0], n_treated, start_period, first_month)


def panel_frame(
    counts: np.ndarray,
    log_mu: np.ndarray,
    volatility: np.ndarray,
    n_treated: int,
    start_period: int,
    first_month: str = "2011-04",
) -> pd.DataFrame:
    """Long DataFrame (DiD roles) of a ``(units, periods)`` count array; the first ``n_treated`` units treated."""
    n, t_ = counts.shape
    periods = pd.date_range(first_month, periods=t_, freq="MS")
    is_t = np.arange(n) < n_treated
    # Population: the trust's mean monthly count over a typical rate of 0.02 attendances per head.
    pop = np.round(np.exp(log_mu.mean(axis=1)) / 0.02)
    return pd.DataFrame(
        {
            "unit": np.repeat([f"T{i:03d}" for i in range(n)], t_),
            "period": np.tile(periods, n),
            "value": counts.ravel().astype(float),
            "population": np.repeat(pop, t_),
            "treated": np.repeat(is_t.astype(int), t_),
            "post": np.tile((np.arange(t_) >= start_period).astype(int), n),
            "log_mu": log_mu.ravel(),
            "volatility": np.repeat(volatility, t_),
        }
    )


def long_panel(frame: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """A simulated panel's counts as one outcome of a long table, as an evaluator's own data file holds them.

    Parameters
    ----------
    frame : DataFrame
        A simulated panel (:func:`simulate_nhs_panel`, :func:`simulate_panel`): ``unit``, ``period``, ``value``.
    outcome : str
        The outcome's name.

    Returns
    -------
    DataFrame
        Columns ``unit``, ``period``, ``outcome``, ``value``.
    """
    return frame.assign(outcome=outcome)[["unit", "period", "outcome", "value"]]


def simulate_weekly_counts(
    rng: np.random.Generator,
    starts: Mapping[str, str | pd.Timestamp],
    *,
    effect: float,
    n_areas: int = 40,
    first: str = "2016-01-04",
    last: str = "2018-12-31",
    level_range: tuple[float, float] = (200.0, 900.0),
    second_harmonic: float = 0.03,
    national_sd: float = 0.005,
    ar: float = 0.5,
    sd: float = 0.03,
) -> pd.DataFrame:
    """Weekly counts of areas (e.g. attendances at a service's clinics), each area's own start taking an effect.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random numbers (the draws are taken in one fixed order, so a seed gives the same file every time).
    starts : mapping of str to date
        The treated areas (``W01`` to ``Wnn``, in order) and the Monday each starts on.
    effect : float
        The effect on a treated area's log expected count from the week of its start on (``log(0.92)``: 8% fewer).
    n_areas : int
        Areas, named ``W01``, ``W02``, ...
    first, last : str
        The first and last Mondays.
    level_range : tuple of float
        Each area's typical weekly count is drawn uniformly from this range.
    second_harmonic : float
        The amplitude of the season's second harmonic (the first's is 0.10: a winter peak).
    national_sd : float
        SD of the national trend's weekly random-walk steps (log scale).
    ar, sd : float
        Each area's AR(1) week-to-week noise: its lag-one correlation and the SD of its shocks (log scale).

    Returns
    -------
    DataFrame
        One row per area and week: ``area``, ``week`` (its Monday, ``YYYY-MM-DD``), ``attendances`` (the count).

    Notes
    -----
    ``log E[count] = area level + area trend t + national (0.02 t + random walk) + season + AR(1)_area + effect x
    started``, counts Poisson given the mean, ``t`` in years. The worked weekly example (``examples/weekly``), its
    Monte Carlo check of the design step and the simulated weekly roll-outs are made by this one generator.
    """
    weeks = pd.date_range(first, last, freq="W-MON")
    t = np.arange(len(weeks)) / 52
    year = (weeks.day_of_year.to_numpy() - 1) / 365.25
    season = 0.10 * np.cos(2 * np.pi * year) + second_harmonic * np.sin(4 * np.pi * year)
    national = 0.02 * t + np.cumsum(rng.normal(0, national_sd, len(weeks)))
    rows = []
    for i in range(n_areas):
        area = f"W{i + 1:02d}"
        level = np.log(rng.uniform(*level_range)) + rng.normal(0, 0.01) * t
        shocks = rng.normal(0, sd, len(weeks))
        noise = np.zeros(len(weeks))
        for j in range(len(weeks)):
            noise[j] = (ar * noise[j - 1] if j else 0.0) + shocks[j]
        log_mean = level + national + season + noise
        if area in starts:
            log_mean = log_mean + effect * (weeks >= pd.Timestamp(starts[area]))
        counts = rng.poisson(np.exp(log_mean))
        rows.append(pd.DataFrame({"area": area, "week": weeks.strftime("%Y-%m-%d"), "attendances": counts}))
    return pd.concat(rows, ignore_index=True)
