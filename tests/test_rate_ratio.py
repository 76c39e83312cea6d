"""Rate ratio (PoissonDiD): placebo refits on sufficient statistics, and an interval that inverts its own test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.methods.did.poisson_fe import fit_poisson_fe, fit_poisson_fe_balanced, poisson_fe_assignments
from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.inference.permutation import treatment_assignments
from evallib.methods.simulate import simulate_nhs_panel

pytestmark = pytest.mark.unit
ROLES = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}


def _model(**kw: object) -> PoissonDiD:
    return PoissonDiD(**ROLES, exposure="population", inference="placebo_in_space", **kw)  # type: ignore[arg-type]


def test_totals_solver_equals_cell_by_cell_refits() -> None:
    d = simulate_nhs_panel(25, 30, n_treated=2, start_period=20, seed=4)
    y = d["value"].to_numpy().reshape(25, 30)
    expo = d["population"].to_numpy().reshape(25, 30)
    post = np.arange(30) >= 20
    assign = treatment_assignments(np.arange(25) < 2, 15, 1)
    cells = fit_poisson_fe_balanced(y, (assign[:, :, None] & post[None, None, :]).astype(float), np.log(expo))
    totals = poisson_fe_assignments(
        y.sum(axis=1)[None], y.sum(axis=0)[None], (y * post).sum(axis=1)[None], assign, post, expo
    )[0]
    np.testing.assert_allclose(totals, cells, atol=1e-9)


def test_totals_solver_handles_missing_cells_as_zero_exposure() -> None:
    d = simulate_nhs_panel(20, 24, start_period=16, effect=-0.1, seed=5)
    d = d.drop(index=d.index[(d["unit"] == "T003") & (d["period"] < "2012-01-01")])
    u, t = pd.factorize(d["unit"], sort=True)[0], pd.factorize(d["period"], sort=True)[0]
    dv = (d["treated"] * d["post"]).to_numpy(float)
    irls = fit_poisson_fe(d["value"].to_numpy(), dv, u, t, np.log(d["population"].to_numpy()))[0]
    y, expo = np.zeros((20, 24)), np.zeros((20, 24))
    y[u, t], expo[u, t] = d["value"], d["population"]
    post = np.arange(24) >= 16
    beta = poisson_fe_assignments(
        y.sum(axis=1)[None], y.sum(axis=0)[None], (y * post).sum(axis=1)[None], np.eye(20, dtype=bool)[:1], post, expo
    )
    assert beta[0, 0] == pytest.approx(irls, abs=1e-8)


@pytest.mark.parametrize("n_treated", [1, 3])
def test_interval_inverts_the_placebo_test(n_treated: int) -> None:
    """Dividing the treated units' post counts by a value inside (outside) the interval: p above (at most) alpha."""
    d = simulate_nhs_panel(40, 36, n_treated=n_treated, start_period=24, effect=-0.15, seed=6)
    model = _model(n_draws=99)
    r = model.fit(d)
    lo, hi = np.log(r.headline.ci_low), np.log(r.headline.ci_high)
    shift = (d["treated"] == 1) & (d["post"] == 1)
    tol = 1e-3 * r.headline.std_error  # the ends are located to 0.001 placebo SDs, on the accepted side

    def p_under(tau: float) -> float:
        return model.fit(d.assign(value=d["value"] * np.where(shift, np.exp(-tau), 1.0))).p_value

    assert p_under(lo) > 0.05 and p_under(hi) > 0.05
    assert p_under(lo - tol) <= 0.05 and p_under(hi + tol) <= 0.05
    assert r.null_values_tested > 5


def test_p_above_alpha_exactly_when_one_is_in_the_interval() -> None:
    for seed in range(25):
        d = simulate_nhs_panel(30, 24, start_period=16, effect=-0.12 * (seed % 3), seed=seed)
        r = _model().fit(d).headline
        assert (r.p_value > 0.05) == (r.ci_low <= 1 <= r.ci_high)


def test_real_assignment_counts_even_when_its_refit_differs() -> None:
    """A huge effect: the site is the most extreme assignment, so p is exactly 1 / assignments (never 0)."""
    d = simulate_nhs_panel(30, 24, n_treated=1, start_period=16, effect=-0.8, seed=7)
    assert _model().fit(d).p_value == pytest.approx(1 / 30)
    d3 = simulate_nhs_panel(30, 24, n_treated=3, start_period=16, effect=-0.8, seed=7)
    assert _model(n_draws=99).fit(d3).p_value == pytest.approx(1 / 100)
