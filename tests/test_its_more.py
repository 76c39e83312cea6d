"""ITS extensions: multiple interruptions and phase-in, controlled ITS, ARIMA errors, coverage, negative binomial."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.its.model import its_design
from evallib.methods.its.poisson import PoissonITS
from evallib.methods.its.segmented import SegmentedITS

from .reference import values

pytestmark = pytest.mark.unit
IDX = pd.date_range("2012-04-01", periods=96, freq="MS")


def _ar_series(seed: int, rho: float = 0.6, sd: float = 0.03, level: float = -0.05, start: int = 60) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(96)
    e = np.zeros(96)
    e[0] = rng.normal(0, sd / np.sqrt(1 - rho**2))
    for i in range(1, 96):
        e[i] = rho * e[i - 1] + rng.normal(0, sd)
    return pd.Series(
        np.exp(8 + 0.002 * t + 0.1 * np.cos(2 * np.pi * IDX.month / 12) + level * (t >= start) + e), index=IDX
    )


def test_two_interruptions_and_phase_in_recovered_exactly() -> None:
    """A noise-free series with known changes, and junk in the phase-in months that must be ignored."""
    first, second, phase = IDX[40], IDX[70], 3
    X = its_design(IDX, [first, second], phase_in=phase, harmonics=2)
    truth = {
        "const": 7.0,
        "time": 0.004,
        "level_change": -0.08,
        "slope_change": 0.002,
        "level_change_2": 0.05,
        "slope_change_2": -0.003,
        "sin1": 0.05,
        "cos1": 0.02,
        "sin2": 0.0,
        "cos2": 0.01,
    }
    log_y = X[list(truth)].to_numpy() @ np.array(list(truth.values()))
    log_y[40:43] += 0.7  # implementation months: excluded, so they must not bias anything
    log_y[70:73] -= 0.9
    r = SegmentedITS(first, additional_interruptions=(second,), phase_in=phase, errors="ols", horizons=(6,)).fit(
        pd.Series(np.exp(log_y), index=IDX)
    )
    assert r.row("level_change").estimate == pytest.approx(-0.08, abs=1e-8)
    assert r.row("slope_change").estimate == pytest.approx(0.002 * 12, abs=1e-8)
    assert r.row("level_change_2").estimate == pytest.approx(0.05, abs=1e-8)
    assert r.row("slope_change_2").estimate == pytest.approx(-0.003 * 12, abs=1e-8)
    assert len(r.excluded) == 6 and r.excluded[0] == IDX[40]
    # Six periods after the first start, i.e. the third after the phase-in: level + 2 slope steps.
    assert r.row("effect_at_6").estimate == pytest.approx(100 * (np.exp(-0.08 + 2 * 0.002) - 1), abs=1e-6)


def test_controlled_its_removes_a_shared_shock() -> None:
    """Both series drop 10% at the start (a national change); the site has no effect of its own."""
    rng = np.random.default_rng(4)
    t = np.arange(96)
    shock = -0.10 * (t >= 60)
    site = pd.Series(np.exp(8 + 0.002 * t + shock + rng.normal(0, 0.01, 96)), index=IDX)
    comp = pd.Series(np.exp(9 + 0.002 * t + shock + rng.normal(0, 0.01, 96)), index=IDX)
    model = SegmentedITS(IDX[60], horizons=(12,))
    alone = model.fit(site).row("level_change")
    assert alone.estimate == pytest.approx(-0.10, abs=0.02)  # uncontrolled: the national shock looks like an effect
    for mode in ("difference", "two_group"):
        r = model.fit(site, comp, controlled=mode)
        lvl = r.row("level_change")
        assert lvl.ci_low < 0 < lvl.ci_high and abs(lvl.estimate) < 0.02
        assert lvl.method == f"its_controlled_{mode}"
    with pytest.raises(DataError, match="controlled"):
        model.fit(site, comp, controlled="ratio")  # type: ignore[arg-type]


def test_interval_coverage_ols_vs_newey_west_vs_arima() -> None:
    """AR(1) errors (rho 0.6), 96 months: OLS intervals under-cover badly, Newey-West less so, ARIMA errors best.

    Measured here: OLS 68%, Newey-West (3 lags) 77% over 300 series; ARIMA 88% over 60.
    Tolerances allow the simulation error (SE about 2.7 points at 300 draws, 5 at 40).
    """
    cover = {"ols": 0, "newey_west": 0}
    for seed in range(300):
        s = _ar_series(seed)
        for errors in cover:
            r = SegmentedITS(IDX[60], errors=errors, horizons=()).fit(s).row("level_change")
            cover[errors] += r.ci_low <= -0.05 <= r.ci_high
    assert cover["ols"] / 300 < 0.80
    assert cover["newey_west"] > cover["ols"] + 9  # at least 3 points better
    arima = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(40):
            r = SegmentedITS(IDX[60], errors="arima", horizons=()).fit(_ar_series(seed)).row("level_change")
            arima += r.ci_low <= -0.05 <= r.ci_high
    assert arima / 40 >= 0.80


def test_arima_counterfactual_interval_and_effects() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = SegmentedITS(IDX[60], errors="arima", horizons=(12, 24, 99)).fit(_ar_series(1, level=-0.2))
    post = r.counterfactual_low.notna()
    assert post.sum() == 36 and (r.counterfactual_low[post] < r.counterfactual_high[post]).all()
    assert {x.term for x in r.rows} >= {"level_change", "slope_change", "effect_at_12", "effect_at_24"}
    assert "effect_at_99" not in {x.term for x in r.rows}  # beyond the data: not reported
    assert r.row("effect_at_12").estimate < 0 and r.row("effect_at_12").inference == "arima_forecast_approx"


def test_cumulative_effect_counts_observed_minus_counterfactual() -> None:
    s = _ar_series(3, level=-0.1, sd=0.005, rho=0.0)
    r = SegmentedITS(IDX[60]).fit(s)
    cum = r.row("cumulative_effect")
    expected = float((r.observed - r.counterfactual)[r.observed.index >= IDX[60]].sum())
    assert cum.estimate == pytest.approx(expected) and cum.scale == "count" and cum.ci_high < 0


def test_month_effects_seasonality() -> None:
    X = its_design(IDX, [IDX[60]], seasonality="month")
    assert [c for c in X.columns if c.startswith("season")] == [f"season{m}" for m in range(2, 13)]
    r = SegmentedITS(IDX[60], seasonality="month", horizons=()).fit(_ar_series(5, rho=0.0, sd=0.005))
    assert r.row("level_change").estimate == pytest.approx(-0.05, abs=0.01)


def test_negative_binomial_on_sicily(sicily: pd.DataFrame) -> None:
    nb = PoissonITS("2005-01-01", dispersion="negative_binomial", harmonics=2).fit(sicily["aces"], sicily["stdpop"])
    quasi = PoissonITS("2005-01-01", dispersion="quasi", harmonics=2).fit(sicily["aces"], sicily["stdpop"])
    r = nb.row("level_change")
    assert r.method == "its_negative_binomial" and nb.dispersion > 0
    # Same mean model: NB's rate ratio lies close to the quasi-Poisson one (0.8851 in the published R model,
    # tests/reference/sicily), with a similar interval.
    assert r.estimate == pytest.approx(quasi.row("level_change").estimate, abs=0.01)
    assert r.ci_low < values("sicily/bernal2017_sicily.out")["harmonic.rate_ratio"] < r.ci_high
