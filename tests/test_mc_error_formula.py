"""One Monte Carlo error formula for every sampled placebo p-value (methods/inference/permutation.mc_error): the
binomial error of independent draws, with the finite-population correction when distinct units are drawn, and every
estimator that samples reports that formula (review of issue 22)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.inference.permutation import mc_error
from evallib.methods.simulate import simulate_nhs_panel
from evallib.methods.synth.control import SyntheticControl
from evallib.methods.synth.synthetic_did import SyntheticDiD, p_value_mc_error


def test_independent_draws_have_the_binomial_error() -> None:
    assert mc_error(0.05, 199) == pytest.approx(math.sqrt(0.05 * 0.95 / 199))


def test_draws_without_replacement_have_the_finite_population_correction() -> None:
    assert mc_error(0.05, 199, 599) == pytest.approx(math.sqrt(0.05 * 0.95 / 199 * (599 - 199) / 598))
    assert mc_error(0.05, 199, 599) < mc_error(0.05, 199)


def test_an_exhaustive_test_has_no_monte_carlo_error() -> None:
    assert mc_error(0.3, 0) == 0.0  # no draws: every assignment tried
    assert mc_error(0.3, 40, 40) == 0.0  # every candidate drawn


def test_synthetic_did_keeps_its_old_name_for_the_same_formula() -> None:
    assert p_value_mc_error(0.1, 200, 600) == mc_error(0.1, 199, 599)
    assert p_value_mc_error(0.1, 200, None) == mc_error(0.1, 199)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_nhs_panel(41, 36, start_period=24, seed=7)


def test_every_refitting_estimator_reports_the_one_formula_with_one_treated_unit(panel: pd.DataFrame) -> None:
    """Past their cap (set low here) the rate ratio, synthetic control and synthetic DiD draw distinct other units:
    each states D draws and mc_error(p, D, n - 1)."""
    frame = panel
    rr = PoissonDiD(inference="placebo_in_space", n_draws=15, max_exhaustive=10).fit(frame)
    sdid = SyntheticDiD(n_draws=15, exhaustive_units=10).fit(frame)
    wide = frame.pivot(index="period", columns="unit", values="value")
    long = wide.stack().rename("value").reset_index()
    sc = SyntheticControl(
        outcome="value", unit="unit", time="period", treated="T000", start=wide.index[24], n_draws=15, max_exhaustive=10
    ).fit(long)
    for res in (rr, sdid, sc):
        assert res.placebo_draws == 15
        assert res.p_value_mc_error == pytest.approx(mc_error(res.p_value, 15, 40))
        assert res.p_value_mc_error > 0 or res.p_value in (0.0, 1.0)


def test_several_treated_units_report_independent_draws(panel: pd.DataFrame) -> None:
    frame = panel.assign(treated=panel["unit"].isin(["T000", "T001", "T002"]).astype(int))
    for res in (PoissonDiD(inference="placebo_in_space", n_draws=25).fit(frame), SyntheticDiD(n_draws=25).fit(frame)):
        assert res.placebo_draws == 25
        assert res.p_value_mc_error == pytest.approx(mc_error(res.p_value, 25))
        assert np.isfinite(res.p_value_mc_error)
