"""DiD: reference values on the organ-donations data, agreement with statsmodels, known-effect simulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evallib.errors import DataError
from evallib.methods.base.arrays import within_transform
from evallib.methods.base.results import TIDY_COLUMNS
from evallib.methods.did.twfe import DiD, pretrend_test
from evallib.methods.simulate import simulate_panel

from .conftest import SIM_ROLES
from .reference import values

pytestmark = pytest.mark.unit
ROLES = {"outcome": "Rate", "unit": "State", "time": "Quarter_Num", "treated": "treated", "post": "post"}
#: R fixest on the organ-donations data (tests/reference/organ_donations: the script, its output and the source).
FIXEST = values("organ_donations/fixest_organ_donations.out")


def test_twfe_matches_reference_with_cr1(organ_donations: pd.DataFrame) -> None:
    # fixest: -0.022459, cluster (CR1, fixest convention) SE 0.006131, p = 0.0011 (6, 6 and 4 decimals).
    r = DiD(**ROLES, inference="cluster_cr1").fit(organ_donations)
    assert r.estimate == pytest.approx(FIXEST["twfe.estimate"], abs=1e-6)
    assert r.headline.std_error == pytest.approx(FIXEST["twfe.std_error"], abs=1e-6)
    assert r.p_value == pytest.approx(FIXEST["twfe.p_value"], abs=1e-4)
    assert r.headline.inference == "cluster_cr1"


def test_hc1_matches_statsmodels_with_dummies(organ_donations: pd.DataFrame) -> None:
    d = organ_donations.assign(d=organ_donations["treated"] * organ_donations["post"])
    sm = smf.ols("Rate ~ d + C(State) + C(Quarter_Num)", d).fit(cov_type="HC1")
    r = DiD(**ROLES, inference="hc1").fit(organ_donations)
    assert r.estimate == pytest.approx(sm.params["d"], rel=1e-10)
    assert r.headline.std_error == pytest.approx(sm.bse["d"], rel=1e-8)


def test_placebo_p_value_matches_reference(organ_donations: pd.DataFrame) -> None:
    # fixest loop: each of the 26 control states as fake treated, two-sided rank p = 0.185 (5/27).
    r = DiD(**ROLES).fit(organ_donations)  # one treated unit: auto chooses placebo
    assert r.headline.inference == "placebo_in_space"
    assert r.p_value == pytest.approx(FIXEST["placebo.n_as_extreme"] / FIXEST["placebo.n_states"], abs=1e-12)
    assert r.headline.n_control == FIXEST["placebo.n_states"] - 1
    assert r.headline.ci_low < r.estimate < r.headline.ci_high


def test_placebo_estimates_match_a_loop_of_twfe_fits(organ_donations: pd.DataFrame) -> None:
    r = DiD(**ROLES).fit(organ_donations)
    states = sorted(organ_donations["State"].unique())
    loop = []
    for s in states:
        fake = organ_donations.assign(treated=(organ_donations["State"] == s).astype(int))
        loop.append(DiD(**ROLES, inference="hc1").fit(fake).estimate)
    np.testing.assert_allclose(r.placebo_estimates, loop, atol=1e-12)


def test_placebo_interval_is_the_set_of_unrejected_effects(organ_donations: pd.DataFrame) -> None:
    """Shifting California's post-period by a value inside the interval must not be rejected; outside must."""
    r = DiD(**ROLES).fit(organ_donations)
    for tau, rejected in (
        (r.headline.ci_low + 1e-3, False),
        (r.headline.ci_high - 1e-3, False),
        (r.headline.ci_low - 0.02, True),
    ):
        shifted = organ_donations.copy()
        mask = (shifted["treated"] == 1) & (shifted["post"] == 1)
        shifted.loc[mask, "Rate"] -= tau
        assert (DiD(**ROLES).fit(shifted).p_value <= 0.05) is rejected


def test_within_transform_unbalanced_matches_dummies(organ_donations: pd.DataFrame) -> None:
    d = organ_donations.drop(index=[3, 40, 41, 100]).reset_index(drop=True)
    sm = smf.ols("Rate ~ I(treated * post) + C(State) + C(Quarter_Num)", d).fit()
    r = DiD(**ROLES, inference="hc1").fit(d)
    assert r.estimate == pytest.approx(sm.params["I(treated * post)"], rel=1e-8)
    x = within_transform(
        np.arange(10.0), np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 2]), np.array([0, 1, 0, 1, 0, 1, 2, 2, 2, 3])
    )
    assert x.shape == (10, 1)


def test_tidy_has_the_contract_columns(organ_donations: pd.DataFrame) -> None:
    t = DiD(**ROLES).fit(organ_donations).tidy()
    assert tuple(t.columns) == TIDY_COLUMNS
    assert t.loc[0, "method"] == "did_twfe"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns="post"), "missing column"),
        (lambda d: d.assign(treated=2), "0/1"),
        (lambda d: d.assign(Rate=d["Rate"].where(d.index != 5)), "missing or non-numeric values"),
        (lambda d: pd.concat([d, d.head(1)]), "more than one row"),
        (lambda d: d.assign(treated=0), "no treated units"),
    ],
)
def test_bad_input_raises_data_error(organ_donations: pd.DataFrame, change, message: str) -> None:
    with pytest.raises(DataError, match=message):
        DiD(**ROLES).fit(change(organ_donations))


def test_log_transform_rejects_zeros(organ_donations: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="positive"):
        DiD(**ROLES, transform="log").fit(
            organ_donations.assign(Rate=organ_donations["Rate"].where(organ_donations.index != 7, 0))
        )


def test_known_effect_recovered_and_placebo_test_calibrated() -> None:
    """One treated area among 40: unbiased estimate; placebo test near nominal size; CR1 over-rejects.

    With 40 units the smallest placebo p-value is 1/40, so p < 0.05 happens with probability exactly
    1/40 = 2.5% under the null. Over 200 simulations the rejection count is Binomial(200, 0.025):
    mean 5, and more than 14 has probability < 0.001. The naive clustered test rejects most of the time,
    because with one treated cluster its standard error is far too small.
    """
    est, rej_placebo, rej_cr1 = [], 0, 0
    for seed in range(200):
        d = simulate_panel(40, 60, start_period=40, effect=0.0, seed=seed)
        roles = SIM_ROLES
        r = DiD(**roles).fit(d)
        rej_placebo += r.p_value < 0.05
        rej_cr1 += DiD(**roles, inference="cluster_cr1").fit(d).p_value < 0.05
        est.append(r.estimate)
    assert rej_placebo <= 14
    assert rej_cr1 >= 60  # at least 30%: naive CR1 is far from its nominal 5%
    assert abs(np.mean(est)) < 3 * np.std(est) / np.sqrt(len(est))
    effects = []
    power = 0
    for seed in range(60):
        d = simulate_panel(40, 60, start_period=40, effect=0.15, seed=10_000 + seed)
        r = DiD(outcome="value", unit="unit", time="period", treated="treated", post="post", transform="log").fit(d)
        effects.append(r.estimate)
        power += r.p_value < 0.05
    assert np.mean(effects) == pytest.approx(0.15, abs=0.02)
    assert power >= 40  # about 90% power against +16% with 40 areas


def test_several_treated_units_use_seeded_random_draws() -> None:
    d = simulate_panel(50, 48, treated=4, start_period=30, effect=0.1, seed=3)
    roles = SIM_ROLES
    a, b = DiD(**roles, n_draws=499, seed=7).fit(d), DiD(**roles, n_draws=499, seed=7).fit(d)
    assert a.headline == b.headline
    assert len(a.placebo_estimates) == 500 and a.headline.n_treated == 4
    assert a.estimate == pytest.approx(0.1, abs=0.05)


def test_pretrend_detects_diverging_treated_unit() -> None:
    d = simulate_panel(40, 48, start_period=100, trend_sd=0.0, seed=11)
    pre = d.copy()
    pre.loc[pre["treated"] == 1, "value"] *= np.exp(0.1 * np.arange(48) / 12)  # +10% a year extra
    r = pretrend_test(pre, outcome="value", unit="unit", time="period", treated="treated")
    assert r.estimate == pytest.approx(0.1, abs=0.03)
    assert r.p_value <= 1 / 40 + 1e-12
    flat = pretrend_test(d, outcome="value", unit="unit", time="period", treated="treated")
    assert flat.p_value > 0.05
