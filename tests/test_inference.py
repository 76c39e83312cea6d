"""Placebo inference: exact test inversion with memory linear in the draws, the real assignment always
counted, and the studentized test's inversion and volatility ranking."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.did.twfe import DiD
from evallib.methods.inference.inversion import PlaceboCount, invert_by_search, invert_linear
from evallib.methods.inference.permutation import permutation_estimates, permutation_test, treatment_assignments
from evallib.methods.inference.volatility import pre_period_noise, pre_period_swing, volatility_rank
from evallib.methods.simulate import simulate_nhs_panel

pytestmark = pytest.mark.unit
ROLES = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}


def _invert_quadratic(est: np.ndarray, c: np.ndarray, obs: float, alpha: float) -> tuple[float, float]:
    """The previous implementation (a candidates x draws matrix), kept as the reference."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cuts = np.concatenate([(est - obs) / (c - 1), (est + obs) / (c + 1)])
    cuts = np.unique(cuts[np.isfinite(cuts)])
    if cuts.size == 0:
        return -np.inf, np.inf
    mids = (cuts[:-1] + cuts[1:]) / 2
    cand = np.concatenate([cuts, mids, [cuts[0] - 1.0, cuts[-1] + 1.0]])
    tol = 1e-12 * (1 + np.abs(cand))
    p = np.mean(np.abs(est[None, :] - cand[:, None] * c[None, :]) >= np.abs(obs - cand)[:, None] - tol[:, None], axis=1)
    ok = cand[p > alpha]
    if ok.size == 0:
        return float("nan"), float("nan")
    outer = p[-2:] > alpha
    return (-np.inf if outer[0] else float(ok.min())), (np.inf if outer[1] else float(ok.max()))


def _design(rng: np.random.Generator, n: int, k: int, draws: int, seed: int) -> tuple[np.ndarray, ...]:
    values = rng.normal(size=n)
    is_t = np.zeros(n, bool)
    is_t[:k] = True
    values[is_t] += 2 * rng.normal()
    assign = treatment_assignments(is_t, draws, seed)
    m = assign.astype(float) @ is_t
    c = m / k - (k - m) / (n - k)
    return permutation_estimates(values, assign), c, values[is_t].mean() - values[~is_t].mean()


def test_invert_equals_the_quadratic_implementation_on_small_designs() -> None:
    """1500 random designs (5-60 units, 1-3 treated, half the units treated included): identical ends."""
    rng = np.random.default_rng(0)
    for r in range(1500):
        n, k = int(rng.integers(5, 60)), int(rng.integers(1, 4))
        est, c, obs = _design(rng, n, k, 200, r)
        alpha = float(rng.choice([0.05, 0.1, 0.2]))
        np.testing.assert_allclose(
            invert_linear(est, c, obs, alpha), _invert_quadratic(est, c, obs, alpha), rtol=1e-10, atol=1e-12
        )


def test_invert_memory_is_linear_in_draws() -> None:
    """200,000 draws: the old candidates x draws matrix would need about 160 GB; this stays under 60 MB."""
    rng = np.random.default_rng(1)
    n = 200_000
    est, c = rng.normal(size=n), rng.uniform(-0.02, 0.02, n)
    est[0], c[0] = 1.5, 1.0  # the real assignment
    tracemalloc.start()
    lo, hi = invert_linear(est, c, 1.5, 0.05)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 60e6
    # p(tau) just inside each end is above alpha, just outside at or below it.
    count = PlaceboCount(est[1:], c[1:], 1.5)
    for end, side in ((lo, -1), (hi, 1)):
        assert count.p_value(end) > 0.05 >= count.p_value(end + side * 1e-9 * (1 + abs(end)))


def test_placebo_count_matches_brute_force_for_every_kind_of_acceptance_set() -> None:
    """Assignments that move more than, as much as, or less than the observed statistic (|c| > 1, = 1, < 1)."""
    rng = np.random.default_rng(2)
    est = rng.normal(size=400)
    c = np.concatenate([rng.uniform(-3, 3, 300), np.ones(50), -np.ones(50)])
    obs, c_obs = 0.7, 1.3
    count = PlaceboCount(est, c, obs, c_obs=c_obs, n_real=1)
    for tau in np.linspace(-6, 6, 241):
        direct = 1 + np.sum(np.abs(est - tau * c) >= np.abs(obs - tau * c_obs))
        assert count.count(tau) == direct


def test_real_assignment_always_counts() -> None:
    """A treated unit far outside its placebo distribution gets the smallest attainable p-value, never 0."""
    d = simulate_nhs_panel(40, 36, n_treated=1, start_period=24, effect=-0.6, seed=3)
    r = DiD(**ROLES, transform="log", inference="placebo_in_space").fit(d)
    assert r.p_value == pytest.approx(1 / 40)
    perm = permutation_test(np.r_[100.0, np.zeros(19)], np.r_[True, np.zeros(19, bool)], n_draws=9, seed=1, alpha=0.05)
    assert perm.p_value[0] == pytest.approx(1 / 20) and perm.is_real.sum() == 1


@pytest.mark.parametrize("inference", ["placebo_in_space", "placebo_studentized"])
@pytest.mark.parametrize("n_treated", [1, 3])
def test_did_interval_is_the_inversion_of_its_p_value(inference: str, n_treated: int) -> None:
    """Shifting the treated units' post-period values by an interval end puts p exactly at the edge."""
    d = simulate_nhs_panel(50, 48, n_treated=n_treated, start_period=36, effect=-0.1, seed=4)
    model = DiD(**ROLES, transform="log", inference=inference, n_draws=199)  # type: ignore[arg-type]
    r = model.fit(d)
    assert r.headline.inference == inference and r.headline.ci_low < r.estimate < r.headline.ci_high
    shift = (d["treated"] == 1) & (d["post"] == 1)
    for end, inside in ((r.headline.ci_low, 1e-7), (r.headline.ci_high, -1e-7)):
        for step, accepted in ((inside, True), (-inside, False)):
            moved = d.assign(value=d["value"] * np.where(shift, np.exp(-(end + step)), 1.0))
            assert (model.fit(moved).p_value > 0.05) == accepted


def test_p_above_alpha_exactly_when_zero_is_in_the_interval() -> None:
    rng = np.random.default_rng(5)
    for r in range(300):
        n, k = 30, 1 + r % 3
        values = rng.normal(size=n) * rng.uniform(0.5, 2, n)
        is_t = np.arange(n) < k
        values[is_t] += rng.normal(0, 1.5)
        scale = rng.uniform(0.5, 2.0, n) if r % 2 else None
        t = permutation_test(values, is_t, n_draws=199, seed=r, alpha=0.05, unit_scale=scale)
        assert (t.p_value[0] > 0.05) == (t.ci_low[0] <= 0 <= t.ci_high[0])


def test_studentized_statistic_ranks_changes_over_pre_period_swing() -> None:
    d = simulate_nhs_panel(60, 48, n_treated=1, start_period=36, treated_volatility=4.0, seed=6)
    r = DiD(**ROLES, transform="log", inference="placebo_studentized").fit(d)
    wide = np.log(d.pivot(index="unit", columns="period", values="value").to_numpy())
    post = np.arange(48) >= 36
    scale = pre_period_swing(wide, post)  # issue 18: not the month-to-month noise
    change = wide[:, post].mean(axis=1) - wide[:, ~post].mean(axis=1)
    z = (change - change.mean()) / scale
    assert r.observed_statistic == pytest.approx(z[0] - z[1:].mean(), rel=1e-10)
    assert r.estimate == pytest.approx(change[0] - change[1:].mean(), rel=1e-10)  # the DiD effect, unchanged
    assert r.volatility is not None and r.volatility.rank[0] <= 3 and r.volatility.percentile[0] > 95
    assert r.placebo_statistics is not None and len(r.placebo_statistics) == 60


def test_pre_period_noise_measures_month_to_month_noise() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(400)
    sd = np.r_[np.ones(48), 2.0, 4.0]
    drift = rng.normal(0, 0.3, 50)[:, None] * t  # unit drifts do not count
    y = drift + rng.normal(0, 1, (50, 400)) * sd[:, None] + rng.normal(0, 3, 400)  # nor do shared shocks
    scale = pre_period_noise(y, t >= 399)
    np.testing.assert_allclose(scale[-2:] / np.median(scale[:48]), [2, 4], rtol=0.1)
    is_t = np.arange(50) == 49
    rank = volatility_rank(scale, is_t, np.array([f"u{i}" for i in range(50)]))
    assert rank.rank == (1,) and rank.percentile == (100.0,) and rank.frame()["unit"].tolist() == ["u49"]
    assert rank.relative[0] == pytest.approx(4, rel=0.1)
    with pytest.raises(DataError, match="no pre-period variation"):
        pre_period_noise(np.vstack([np.ones(10), t[:10]]), np.arange(10) >= 8, np.array(["flat", "x"]))


def test_invert_by_search_finds_the_ends_of_a_step_function() -> None:
    """A p-value that drops at -1.3 and 2.1: the ends are found to the tolerance, on the accepted side."""

    def p_of(taus: np.ndarray) -> np.ndarray:
        return np.where((taus >= -1.3) & (taus <= 2.1), 0.5, 0.01)

    lo, hi = invert_by_search(p_of, 0.4, 0.5, 0.05, rel_tol=1e-4)
    assert -1.3 <= lo < -1.3 + 1e-4 and 2.1 - 1e-4 < hi <= 2.1
    lo, hi = invert_by_search(lambda t: np.full(len(t), 0.5), 0.0, 1.0, 0.05)
    assert (lo, hi) == (-np.inf, np.inf)
    # A known p-value at 0 above alpha keeps 0 inside even when bisection would stop short of it.
    lo, _ = invert_by_search(p_of, 0.4, 0.5, 0.05, known={-1.3: 0.5}, rel_tol=10.0)
    assert lo <= -1.3


def test_studentized_needs_pre_period_variation() -> None:
    d = simulate_nhs_panel(20, 24, start_period=12, seed=8)
    # A unit that moves exactly with the period means has no noise of its own.
    logs = np.log(d.pivot(index="period", columns="unit", values="value"))
    follow = np.exp(logs.drop(columns="T005").mean(axis=1))
    d.loc[d["unit"] == "T005", "value"] = follow.reindex(d.loc[d["unit"] == "T005", "period"]).to_numpy()
    with pytest.raises(DataError, match="T005"):
        DiD(**ROLES, transform="log", inference="placebo_studentized").fit(d)
    plain = DiD(**ROLES, transform="log", inference="placebo_in_space").fit(d)
    assert plain.volatility is None and np.isfinite(plain.p_value)


def test_event_study_counts_the_real_assignment() -> None:
    from evallib.methods.did.event_study import EventStudy

    d = simulate_nhs_panel(30, 48, start_period=36, seed=9)
    d["event_time"] = (d["period"].dt.year - 2014) * 12 + d["period"].dt.month - 4
    d["bin"] = np.floor_divide(d["event_time"], 12)
    binned = d.groupby(["unit", "bin"], as_index=False).agg(value=("value", "mean"), treated=("treated", "first"))
    r = EventStudy("value", "unit", "bin", "treated", start=0, transform="log", inference="placebo_in_space").fit(
        binned
    )
    assert 1 / 30 <= r.pretrend.p_value <= 1 and isinstance(r.tidy(), pd.DataFrame)
