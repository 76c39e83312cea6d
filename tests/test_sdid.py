"""Synthetic difference-in-differences: R synthdid's California number, exact weights, placebo inference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import nnls

from evallib import DataError, SyntheticDiD, simulate_panel

from .conftest import FIXTURES, SIM_ROLES
from .reference import values

pytestmark = pytest.mark.unit

#: R synthdid 0.0.9 / Arkhangelsky et al. (2021) Table 1: synthdid_estimate on california_prop99 (default settings:
#: eta.omega = (N1 T1)^(1/4), eta.lambda = 1e-6, intercepts, sparsify, Frank-Wolfe); tests/reference/prop99 holds
#: the script, its output and the source.
_R = values("prop99/synthdid_prop99.out")
R_SDID_PROP99 = _R["estimate"]
#: R's leading unit weights and its time weights on the same fit (synthdid summary).
R_OMEGA = {key.removeprefix("omega."): w for key, w in _R.items() if key.startswith("omega.")}
R_LAMBDA = {int(key.removeprefix("lambda.")): w for key, w in _R.items() if key.startswith("lambda.")}


@pytest.fixture(scope="module")
def prop99() -> pd.DataFrame:
    d = pd.read_csv(FIXTURES / "california_prop99.csv")
    d["california"] = (d["State"] == "California").astype(int)
    d["post"] = (d["Year"] >= 1989).astype(int)
    return d


def _model(**kw) -> SyntheticDiD:
    return SyntheticDiD(outcome="PacksPerCapita", unit="State", time="Year", treated="california", post="post", **kw)


def _simplex_ridge_nnls(A: np.ndarray, b: np.ndarray, eta: float) -> np.ndarray:
    """Independent exact solver: NNLS with the ridge as extra rows and the sum as a heavy row."""
    A, b = A - A.mean(axis=0), b - b.mean()  # the intercept
    n = A.shape[1]
    big = 1e4 * max(1.0, np.abs(A).max())
    w, _ = nnls(
        np.vstack([A, np.sqrt(eta) * np.eye(n), np.full((1, n), big)]),
        np.concatenate([b, np.zeros(n), [big]]),
        maxiter=100 * n,
    )
    return w / w.sum()


def test_prop99_matches_r_synthdid(prop99: pd.DataFrame) -> None:
    r = _model().fit(prop99)
    # R stops Frank-Wolfe just short of the optimum (unit-weight objective 178.10 there vs 177.80 at the
    # optimum found here), which moves the estimate by 0.0016; R's own test allows 3% against an exact solver.
    assert r.estimate == pytest.approx(R_SDID_PROP99, abs=2e-3)
    for state, w in R_OMEGA.items():
        assert r.unit_weights[state] == pytest.approx(w, abs=1.5e-3)
    assert r.time_weights[r.time_weights > 1e-9].round(3).to_dict() == R_LAMBDA
    row = r.tidy().iloc[0]
    assert (row["method"], row["inference"], row["n_treated"], row["n_control"]) == (
        "did_synthetic",
        "placebo_in_space",
        1,
        38,
    )
    # The estimate is the mean post-period gap between the treated and the synthetic path.
    assert r.effect_curve.mean() == pytest.approx(r.estimate, abs=1e-9)
    assert len(r.placebo_estimates) == 39 and r.min_p_value == pytest.approx(1 / 39)


def test_weights_are_the_exact_optimum(prop99: pd.DataFrame) -> None:
    r = _model().fit(prop99)
    Y = prop99.pivot(index="State", columns="Year", values="PacksPerCapita")
    co = Y.drop(index="California")
    pre, post = co.columns < 1989, co.columns >= 1989
    sigma = np.std(np.diff(co.loc[:, pre].to_numpy(), axis=1), ddof=1)
    t0, n0 = int(pre.sum()), len(co)
    omega = _simplex_ridge_nnls(
        co.loc[:, pre].to_numpy().T, Y.loc["California", pre].to_numpy(), t0 * 12**0.5 * sigma**2
    )
    lam = _simplex_ridge_nnls(
        co.loc[:, pre].to_numpy(), co.loc[:, post].mean(axis=1).to_numpy(), n0 * (1e-6 * sigma) ** 2
    )
    np.testing.assert_allclose(r.unit_weights.reindex(co.index), omega, atol=1e-7)
    np.testing.assert_allclose(r.time_weights.to_numpy(), lam, atol=1e-7)


def test_placebos_equal_refits_with_each_state_treated(prop99: pd.DataFrame) -> None:
    r = _model().fit(prop99)
    states = sorted(prop99["State"].unique())
    for i in (0, 7, 20):  # every placebo is the whole estimator refitted with that state treated
        d = prop99.assign(california=(prop99["State"] == states[i]).astype(int))
        assert r.placebo_estimates[i] == pytest.approx(_model().fit(d).estimate, abs=1e-8)


def test_shifting_treated_post_outcomes_shifts_estimate_and_keeps_weights(prop99: pd.DataFrame) -> None:
    r = _model().fit(prop99)
    d = prop99.copy()
    d.loc[(d["california"] == 1) & (d["post"] == 1), "PacksPerCapita"] += 7.0
    s = _model().fit(d)
    assert s.estimate == pytest.approx(r.estimate + 7.0, abs=1e-8)
    np.testing.assert_allclose(s.unit_weights, r.unit_weights, atol=1e-10)
    np.testing.assert_allclose(s.time_weights, r.time_weights, atol=1e-10)


@pytest.mark.parametrize("n_treated", [1, 2])
def test_p_value_and_interval_agree(n_treated: int) -> None:
    """p > alpha exactly when the inverted-test interval holds zero, over many datasets."""
    agree = []
    for seed in range(40):
        d = simulate_panel(16, 20, treated=n_treated, start_period=14, effect=0.04 * (seed % 4), seed=seed)
        r = SyntheticDiD(**SIM_ROLES, n_draws=99, seed=seed).fit(d).headline
        agree.append((r.p_value > 0.05) == (r.ci_low <= 0 <= r.ci_high))
        assert r.ci_low <= r.estimate <= r.ci_high
    assert all(agree)


def test_recovers_a_known_effect() -> None:
    est = [
        SyntheticDiD(**SIM_ROLES, n_draws=49)
        .fit(simulate_panel(40, 36, treated=2, start_period=24, effect=0.1, seed=s))
        .estimate
        for s in range(20)
    ]
    assert abs(np.mean(est) - 0.1) < 3 * np.std(est, ddof=1) / np.sqrt(len(est))


@pytest.mark.montecarlo
def test_placebo_size_and_coverage() -> None:
    """Rejection of a true null and coverage of the true effect within Monte Carlo error (300 panels).

    With 40 units the placebo p-value moves in steps of 1/40, so the exact size is 2/40 = 0.05.
    """
    reps, effect = 300, 0.05
    reject0, cover = [], []
    for s in range(reps):
        d = simulate_panel(40, 24, treated=1, start_period=16, effect=0.0, seed=10_000 + s)
        reject0.append(SyntheticDiD(**SIM_ROLES).fit(d).p_value <= 0.05)
        d = simulate_panel(40, 24, treated=1, start_period=16, effect=effect, seed=20_000 + s)
        r = SyntheticDiD(**SIM_ROLES).fit(d).headline
        cover.append(r.ci_low <= effect <= r.ci_high)
    mc = 3 * np.sqrt(0.05 * 0.95 / reps)
    assert abs(np.mean(reject0) - 0.05) < mc
    assert abs(np.mean(cover) - 0.95) < mc


def test_validation(prop99: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="balanced"):
        _model().fit(prop99.iloc[1:])
    bad = prop99.assign(post=((prop99["Year"] >= 1989) & (prop99["State"] != "Texas")).astype(int))
    with pytest.raises(DataError, match="same for every"):
        _model().fit(bad)
    with pytest.raises(DataError, match="two pre-period"):
        _model().fit(prop99[prop99["Year"] >= 1988])
