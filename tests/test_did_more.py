"""Event study, rate ratio and wild cluster bootstrap: references, agreement with peers, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from evallib.methods.base.arrays import within_transform
from evallib.methods.did.event_study import EventStudy
from evallib.methods.did.rate_ratio import PoissonDiD, fit_poisson_fe, fit_poisson_fe_balanced
from evallib.methods.did.twfe import DiD
from evallib.methods.inference.wild_bootstrap import wild_cluster_bootstrap
from evallib.methods.simulate import simulate_panel

from .conftest import SIM_ROLES
from .reference import values

pytestmark = pytest.mark.unit


def test_event_study_matches_reference(organ_donations: pd.DataFrame) -> None:
    # R fixest, reference quarter 3: q1 -0.00294, q2 +0.00630, q4 -0.02157, q5 -0.02029, q6 -0.02217
    # (tests/reference/organ_donations: the script, its output and the source).
    fixest = values("organ_donations/fixest_organ_donations.out")
    r = EventStudy(
        outcome="Rate", unit="State", time="Quarter_Num", treated="treated", start=4, inference="cluster_cr1"
    ).fit(organ_donations)
    assert r.event_times == (-3, -2, 0, 1, 2)
    expected = [fixest[f"event.q{q}.estimate"] for q in (1, 2, 4, 5, 6)]
    assert [x.estimate for x in r.rows] == pytest.approx(expected, abs=1e-5)
    # CR1 SEs equal statsmodels' cluster SEs once its small-sample factor (which counts the
    # unit dummies) is replaced by fixest's (which does not).
    d = organ_donations.copy()
    for q in (1, 2, 4, 5, 6):
        d[f"e{q}"] = d["treated"] * (d["Quarter_Num"] == q)
    m = smf.ols("Rate ~ e1 + e2 + e4 + e5 + e6 + C(State) + C(Quarter_Num)", d).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["State"])[0]}
    )
    n = len(d)
    adjust = np.sqrt(((n - 1) / (n - 11)) / ((n - 1) / (n - len(m.params))))
    assert [x.std_error for x in r.rows] == pytest.approx(
        list(m.bse[["e1", "e2", "e4", "e5", "e6"]] * adjust), rel=1e-6
    )
    assert r.pretrend.inference == "cluster_cr1" and 0 < r.pretrend.p_value < 1


def test_event_study_placebo_agrees_with_ols_and_is_honest(organ_donations: pd.DataFrame) -> None:
    roles = {"outcome": "Rate", "unit": "State", "time": "Quarter_Num", "treated": "treated", "start": 4}
    cr1 = EventStudy(**roles, inference="cluster_cr1").fit(organ_donations)
    placebo = EventStudy(**roles).fit(organ_donations)  # one treated unit: placebo by default
    assert [x.estimate for x in placebo.rows] == pytest.approx([x.estimate for x in cr1.rows], abs=1e-12)
    # CR1 finds a "significant" pre-trend (p = 0.03) that the placebo test does not (p = 0.70).
    assert cr1.pretrend.p_value < 0.05 < placebo.pretrend.p_value


def test_rate_ratio_matches_statsmodels_glm_with_dummies() -> None:
    d = simulate_panel(30, 36, start_period=24, effect=-0.1, seed=2)
    r = PoissonDiD("value", "unit", "period", "treated", "post", exposure="population", inference="model_based").fit(d)
    d["dd"] = d["treated"] * d["post"]
    m = smf.glm(
        "value ~ dd + C(unit) + C(period)", d, family=sm.families.Poisson(), offset=np.log(d["population"])
    ).fit()
    assert r.log_rate_ratio == pytest.approx(m.params["dd"], rel=1e-8)
    assert r.headline.std_error == pytest.approx(m.bse["dd"], rel=1e-5)
    assert r.estimate == pytest.approx(np.exp(m.params["dd"]), rel=1e-8) and r.headline.scale == "rate_ratio"


def test_vectorised_poisson_placebo_equals_refits() -> None:
    d = simulate_panel(25, 30, treated=2, start_period=20, seed=4)
    units, periods = 25, 30
    y = d["value"].to_numpy().reshape(units, periods)
    post = d["post"].to_numpy().reshape(units, periods)[0].astype(bool)
    rng = np.random.default_rng(1)
    assign = np.zeros((15, units), bool)
    for row in assign:
        row[rng.choice(units, 2, replace=False)] = True
    vec = fit_poisson_fe_balanced(y, (assign[:, :, None] & post[None, None, :]).astype(float))
    u, t = np.repeat(np.arange(units), periods), np.tile(np.arange(periods), units)
    loop = [fit_poisson_fe(y.ravel(), (a[u] & post[t]).astype(float), u, t)[0] for a in assign]
    np.testing.assert_allclose(vec, loop, atol=1e-9)


def _brute_force_wcr(d: pd.DataFrame, v: np.ndarray) -> float:
    """WCR p-value by refitting TWFE (dummies via within transform) for every bootstrap sample."""
    u = pd.factorize(d["unit"], sort=True)[0]
    t = pd.factorize(d["period"], sort=True)[0]
    y = np.log(d["value"].to_numpy())
    x = (d["treated"] * d["post"]).to_numpy(float)
    yw, xw = within_transform(np.column_stack([y, x]), u, t).T
    g, n = u.max() + 1, len(y)
    k = 1 + t.max() + 1

    def fit(yy: np.ndarray) -> tuple[float, float]:
        yy_w = within_transform(yy, u, t)[:, 0]
        b = xw @ yy_w / (xw @ xw)
        e = yy_w - b * xw
        s = np.bincount(u, weights=xw * e, minlength=g)
        return b, np.sqrt(s @ s / (xw @ xw) ** 2 * g / (g - 1) * (n - 1) / (n - k))

    b, se = fit(y)
    restricted = yw  # under beta = 0 the residual is the within-transformed outcome
    stats = []
    for draw in v:
        b_star, se_star = fit(draw[u] * restricted)
        stats.append(abs(b_star / se_star))
    return float(np.mean(np.array(stats) >= abs(b / se) - 1e-12))


def test_wild_bootstrap_matches_brute_force_refits() -> None:
    d = simulate_panel(24, 20, treated=6, start_period=12, effect=0.05, seed=8)
    model = DiD(
        "value", "unit", "period", "treated", "post", transform="log", inference="wild_bootstrap", n_draws=199, seed=3
    )
    r = model.fit(d)
    assert r.headline.inference == "wild_bootstrap_webb"
    rng = np.random.default_rng(3)
    v = rng.choice(np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)]), size=(199, 24))
    assert r.p_value == pytest.approx(_brute_force_wcr(d, v), abs=1e-12)
    assert r.headline.ci_low < r.estimate < r.headline.ci_high


def test_wild_bootstrap_size_with_few_treated_clusters() -> None:
    """12 of 40 areas treated, no effect: WCR rejects near 5%; 150 simulations allow up to 16 (p < 0.01)."""
    rejections = 0
    for seed in range(150):
        d = simulate_panel(40, 24, treated=12, start_period=16, seed=500 + seed)
        r = DiD("value", "unit", "period", "treated", "post", transform="log", n_draws=199, seed=seed).fit(d)
        assert r.headline.inference == "wild_bootstrap_webb"  # the auto choice for 10+ treated units
        rejections += r.p_value < 0.05
    assert rejections <= 16


def test_wcr_function_rejects_unbalanced_input() -> None:
    with pytest.raises(ValueError):
        wild_cluster_bootstrap(np.zeros(5), np.zeros(5), k_params=2, n_draws=9, seed=0, alpha=0.05)


def test_rate_outcome_equals_a_precomputed_rate() -> None:
    d = simulate_panel(30, 36, start_period=24, effect=-0.1, seed=6)
    roles = SIM_ROLES
    r = DiD(**roles, exposure="population").fit(d)
    direct = DiD(**{**roles, "outcome": "rate"}).fit(d.assign(rate=d["value"] / d["population"]))
    assert (r.headline.estimate, r.headline.ci_low, r.headline.ci_high, r.p_value) == (
        direct.headline.estimate,
        direct.headline.ci_low,
        direct.headline.ci_high,
        direct.p_value,
    )
    # Population is constant within an area here, so on the log scale the rate and the count agree.
    assert r.estimate == pytest.approx(DiD(**roles).fit(d).estimate, abs=1e-12)


def test_event_study_binned_ends_match_ols_with_binned_dummies() -> None:
    d = simulate_panel(25, 12, start_period=6, effect=0.1, seed=9)
    d["t"] = d["period"].rank(method="dense").astype(int) - 1  # 0..11, start at 6
    r = EventStudy(
        "value", "unit", "t", "treated", start=6, leads=3, lags=2, transform="log", inference="cluster_cr1"
    ).fit(d)
    assert r.event_times == (-3, -2, 0, 1, 2)  # -6..-3 binned into -3; 2..5 binned into 2; -1 is the reference
    rel = (d["t"] - 6).clip(-3, 2)
    X = d.assign(y=np.log(d["value"]))
    names = []
    for e in r.event_times:
        name = f"e{e + 10}"
        X[name] = d["treated"] * (rel == e)
        names.append(name)
    m = smf.ols("y ~ " + " + ".join(names) + " + C(unit) + C(t)", X).fit()
    assert [x.estimate for x in r.rows] == pytest.approx(list(m.params[names]), abs=1e-10)
