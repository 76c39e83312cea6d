"""ITS fitted properly: REML AR(1) GLS with bootstrap-t intervals, ARIMA at its maximum likelihood, and the
controlled ITS with every comparison unit as a placebo."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.its.arima import ar1_ml_start, fit_sarimax
from evallib.methods.its.controlled import ControlledITS
from evallib.methods.its.model import its_design
from evallib.methods.its.reml import _neg_reml, fit_ar1_reml, simulate_ar1
from evallib.methods.its.segmented import SegmentedITS
from evallib.methods.simulate import simulate_nhs_panel

pytestmark = pytest.mark.unit
IDX = pd.date_range("2012-04-01", periods=96, freq="MS")


def _series(seed: int, level: float = -0.05, rho: float = 0.6, sd: float = 0.03) -> pd.Series:
    rng = np.random.default_rng(seed)
    e = simulate_ar1(np.arange(96), rho, sd**2, 1, rng)[0]
    t = np.arange(96)
    return pd.Series(np.exp(8 + 0.002 * t + 0.1 * np.cos(2 * np.pi * IDX.month / 12) + level * (t >= 60) + e), IDX)


def test_reml_objective_equals_the_dense_restricted_likelihood() -> None:
    """Against -2 log L_R from the full correlation matrix, with a gap (phase-in) in the series."""
    rng = np.random.default_rng(1)
    times = np.r_[np.arange(40), np.arange(43, 70)]
    X = np.column_stack([np.ones(len(times)), times, times >= 43])
    y = X @ [1.0, 0.01, -0.2] + simulate_ar1(times, 0.5, 0.01, 1, rng)[0]
    n, p = X.shape

    def dense(rho: float) -> float:
        corr = rho ** np.abs(times[:, None] - times[None, :]) / (1 - rho**2)  # innovation units
        inv = np.linalg.inv(corr)
        b = np.linalg.solve(X.T @ inv @ X, X.T @ inv @ y)
        rss = (y - X @ b) @ inv @ (y - X @ b)
        return (n - p) * np.log(rss / (n - p)) + np.linalg.slogdet(corr)[1] + np.linalg.slogdet(X.T @ inv @ X)[1]

    for rho in (-0.3, 0.2, 0.7):
        assert _neg_reml(rho, y, X, times) == pytest.approx(dense(rho), rel=1e-9, abs=1e-9)


def test_reml_recovers_rho_and_includes_its_uncertainty() -> None:
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(3000), np.arange(3000) / 3000])
    fit = fit_ar1_reml(X @ [1.0, 0.5] + simulate_ar1(np.arange(3000), 0.6, 1.0, 1, rng)[0], X)
    assert fit.rho == pytest.approx(0.6, abs=0.03) and fit.sigma2 == pytest.approx(1.0, rel=0.06)
    assert fit.rho_se == pytest.approx(np.sqrt((1 - 0.6**2) / 3000), rel=0.2)
    assert np.all(np.diag(fit.vcov) >= np.diag(fit.vcov_plugin)) and fit.df_resid == 2998


def test_ar1_reml_its_rows_agree_with_their_p_values() -> None:
    model = SegmentedITS(IDX[60], errors="ar1_reml", horizons=(12, 24), outcome_label="x")
    for seed in range(6):
        r = model.fit(_series(seed))
        assert r.errors == "ar1_reml" and 0.1 < r.ar1_rho < 0.95
        assert {x.term for x in r.rows} == {
            "level_change",
            "slope_change",
            "effect_at_12",
            "effect_at_24",
            "cumulative_effect",
        }
        for row in r.rows:
            assert row.inference == "ar1_reml_bootstrap_t" and row.method == "its_gls_ar1"
            assert (row.p_value > 0.05) == (row.ci_low <= 0 <= row.ci_high)
    # Effect at 12 months is level + 11 months of slope, on the percent scale.
    lvl, slope = r.row("level_change").estimate, r.row("slope_change").estimate / 12
    assert r.row("effect_at_12").estimate == pytest.approx(100 * np.expm1(lvl + 11 * slope), rel=1e-9)


def test_ar1_reml_controlled_and_phase_in() -> None:
    s, c = _series(3, level=-0.1), _series(4, level=0.0)
    r = SegmentedITS(IDX[60], errors="ar1_reml", phase_in=3, horizons=(12,)).fit(s, c, controlled="difference")
    assert r.row("level_change").method == "its_controlled_difference_gls_ar1" and len(r.excluded) == 3
    assert r.counterfactual_low is not None and r.counterfactual_low.notna().sum() == 36


def test_arima_fit_reaches_the_maximum_likelihood() -> None:
    """Its log-likelihood is at least that of the direct AR(1) maximum likelihood (profile over rho)."""
    X = its_design(IDX, [IDX[60]], harmonics=2).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(5):
            y = np.log(_series(seed).to_numpy())
            res, sc, _ = fit_sarimax(y, X, (1, 0, 0))
            beta, rho, sigma2 = ar1_ml_start(y, X)
            direct = np.r_[beta * sc, rho, sigma2]
            assert res.llf >= res.model.loglike(direct) - 1e-6
            ols = np.linalg.lstsq(X, y, rcond=None)[0]
            assert np.abs(np.asarray(res.params)[: X.shape[1]] / sc - ols).max() > 1e-4  # not stuck at OLS


def test_approximate_intervals_are_named_so() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = {
            e: {x.inference for x in SegmentedITS(IDX[60], errors=e).fit(_series(1)).rows}  # type: ignore[arg-type]
            for e in ("newey_west", "ols", "arima")
        }
    assert names == {
        "newey_west": {"newey_west_approx"},
        "ols": {"ols_approx"},
        "arima": {"arima_approx", "arima_forecast_approx"},
    }


def _cits_data(n_treated: int = 1, effect: float = -0.1, seed: int = 4) -> pd.DataFrame:
    return simulate_nhs_panel(60, 72, n_treated=n_treated, start_period=48, effect=effect, seed=seed)


START = pd.Timestamp("2015-04-01")  # period 48 of simulate_nhs_panel's months


@pytest.mark.parametrize("n_treated", [1, 3])
def test_controlled_its_estimates_move_exactly_with_an_effect(n_treated: int) -> None:
    """A ratio exp(tau) on the treated units' post values moves every effect term by tau, no placebo at all;
    a post-period trend tau per year moves the slope change by tau."""
    d = _cits_data(n_treated)
    model = ControlledITS("value", "unit", "period", "treated", start=START, n_draws=199)
    base = model.fit(d)
    shift = (d["treated"] == 1) & (d["post"] == 1)
    moved = model.fit(d.assign(value=d["value"] * np.where(shift, np.exp(0.2), 1.0)))
    np.testing.assert_allclose(moved.placebo_estimates[1:], base.placebo_estimates[1:], atol=1e-12)
    delta = moved.placebo_estimates[0] - base.placebo_estimates[0]
    terms = list(base.terms)
    assert delta[terms.index("slope_change")] == pytest.approx(0, abs=1e-10)
    np.testing.assert_allclose(np.delete(delta, terms.index("slope_change")), 0.2, atol=1e-10)
    months = (d["period"].dt.year - START.year) * 12 + d["period"].dt.month - START.month
    trend = model.fit(d.assign(value=d["value"] * np.where(shift, np.exp(0.3 / 12 * months), 1.0)))
    slope_delta = trend.placebo_estimates[0] - base.placebo_estimates[0]
    assert slope_delta[terms.index("slope_change")] == pytest.approx(0.3, abs=1e-10)


def test_controlled_its_interval_is_the_inverted_rank_test() -> None:
    r = ControlledITS("value", "unit", "period", "treated", start=START, horizons=(12,)).fit(_cits_data())
    est = r.placebo_estimates
    k = int(np.floor(0.05 * len(est) - 1)) + 1  # p > alpha needs at least k placebos at least as extreme
    radius = np.sort(np.abs(est[1:, 0]))[::-1][k - 1]
    lvl = r.row("level_change")
    assert (lvl.ci_low, lvl.ci_high) == pytest.approx((est[0, 0] - radius, est[0, 0] + radius), abs=1e-12)
    assert lvl.p_value == pytest.approx((1 + np.sum(np.abs(est[1:, 0]) >= abs(est[0, 0]))) / len(est))
    for row in r.rows:
        assert (row.p_value > 0.05) == (row.ci_low <= 0 <= row.ci_high)
        assert row.method == "its_controlled_placebo" and row.inference == "placebo_in_space"
    assert r.row("effect_at_12").scale == "percent" and r.observed.index.equals(r.fitted.index)


def test_controlled_its_recovers_a_noise_free_effect() -> None:
    """Comparison units share one path; the site adds its own trend, seasonality and a level and slope change."""
    periods = pd.date_range("2011-04-01", periods=72, freq="MS")
    t, month = np.arange(72), periods.month.to_numpy()
    common = 0.05 * np.sin(t / 5) + 0.02 * t / 12
    since = np.where(t >= 48, t - 48, 0.0)
    site = 0.01 * t / 12 + 0.03 * np.cos(2 * np.pi * month / 12) - 0.1 * (t >= 48) + 0.02 / 12 * since
    logs = np.vstack([np.log(5000 + 100 * np.arange(30))[:, None] + common, np.log(8000) + common + site])
    d = pd.DataFrame(np.exp(logs), columns=periods).stack().rename("value").reset_index()
    d.columns = ["unit", "period", "value"]
    d["treated"] = (d["unit"] == 30).astype(int)
    r = ControlledITS("value", "unit", "period", "treated", start=periods[48], horizons=(12,)).fit(d)
    assert r.row("level_change").estimate == pytest.approx(-0.1, abs=1e-9)
    assert r.row("slope_change").estimate == pytest.approx(0.02, abs=1e-9)
    assert r.row("effect_at_12").estimate == pytest.approx(100 * np.expm1(-0.1 + 11 * 0.02 / 12), abs=1e-7)
    expected = 100 * np.expm1(np.mean(-0.1 + 0.02 / 12 * np.arange(24)))
    assert r.row("mean_post_effect").estimate == pytest.approx(expected, abs=1e-7)
    assert r.counterfactual.iloc[:48].to_numpy() == pytest.approx(r.observed.iloc[:48].to_numpy(), rel=1e-9)


def test_controlled_its_validates_input() -> None:
    d = _cits_data()
    with pytest.raises(DataError, match="start"):
        ControlledITS("value", "unit", "period", "treated", start="1999-01-01").fit(d)
    with pytest.raises(DataError, match="every unit in every period"):
        ControlledITS("value", "unit", "period", "treated", start=START).fit(d.iloc[5:])
    with pytest.raises(DataError, match="positive"):
        ControlledITS("value", "unit", "period", "treated", start=START).fit(d.assign(value=0.0))
