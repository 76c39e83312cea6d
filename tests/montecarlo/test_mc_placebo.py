"""Size and coverage of the DiD placebo tests (plain and studentized) and of the event study's joint lead test.

NHS-like panels (:func:`evallib.methods.simulate.nhs_log_panels`): 130 trusts x 96 months, start at month
60, trust drifts, national trend, seasonality and AR(1) shocks, trust AR(1) noise (rho 0.6) with log-normal
volatility, Poisson counts. Every estimate goes through the public API (``DiD(...).fit(frame)``).
Each check asserts the rate within 3 Monte Carlo standard errors (SE) of the nominal 5% / 95%; with one
treated trust among 130 the attainable size is 6/130 = 4.6%. Measured values: tests/montecarlo/README.md.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from evallib.methods.did.event_study import EventStudy
from evallib.methods.did.twfe import DiD

from .sim import ALPHA, N_PERIODS, N_UNITS, START, mc_se, over_panels, rate, record, rejects, within

pytestmark = pytest.mark.montecarlo
ROLES = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}
EFFECT = -0.1
REPS = 1000  # MC SE 0.69 points at 5%; 3 SE = 2.1 points


def _did_rows(d: pd.DataFrame, effect: float) -> dict[str, bool]:
    """Rejection of the true effect and agreement of p with the interval, for both placebo tests, on one panel."""
    out = {}
    for inference in ("placebo_in_space", "placebo_studentized"):
        r = DiD(**ROLES, transform="log", inference=inference, n_draws=999).fit(d).headline  # type: ignore[arg-type]
        out[f"{inference}_reject"] = not (r.ci_low <= effect <= r.ci_high)
        out[f"{inference}_agree"] = (not rejects(r.p_value)) == (r.ci_low <= 0 <= r.ci_high)
    return out


def _run(n_treated: int, effect: float, seed: int, **kw: object) -> dict[str, list[bool]]:
    """:func:`_did_rows` over ``REPS`` panels (spread over the worker processes), as lists."""
    rows = over_panels(partial(_did_rows, effect=effect), REPS, seed=seed, n_treated=n_treated, effect=effect, **kw)
    return {k: [r[k] for r in rows] for k in rows[0]}


@pytest.mark.parametrize("n_treated", [1, 3])
def test_placebo_size_and_coverage_with_exchangeable_trusts(n_treated: int) -> None:
    """Plain and studentized placebo tests: size under no effect, coverage under -10%; 1000 panels each,
    MC SE 0.69 points (3 SE = 2.1 points); p > alpha exactly when 0 is in the interval."""
    null = _run(n_treated, 0.0, seed=100 + n_treated)
    eff = _run(n_treated, EFFECT, seed=200 + n_treated)
    for inference in ("placebo_in_space", "placebo_studentized"):
        size, cover = rate(null[f"{inference}_reject"]), 1 - rate(eff[f"{inference}_reject"])
        record(f"DiD {inference}", f"{n_treated} treated", REPS, size=size, coverage=cover)
        assert within(size, ALPHA, REPS), (inference, size)
        assert within(cover, 1 - ALPHA, REPS), (inference, cover)
        assert all(null[f"{inference}_agree"]) and all(eff[f"{inference}_agree"])


@pytest.mark.parametrize("n_treated", [1, 3])
def test_studentized_placebo_holds_with_a_volatile_treated_trust(n_treated: int) -> None:
    """The first treated trust 3x as volatile as the median trust (about the top 1.5%): the plain test
    over-rejects, the studentized one holds 5% (1000 panels, MC SE 0.69 points) and covers 95%."""
    null = _run(n_treated, 0.0, seed=300 + n_treated, treated_volatility=3.0)
    eff = _run(n_treated, EFFECT, seed=400 + n_treated, treated_volatility=3.0)
    plain = rate(null["placebo_in_space_reject"])
    size, cover = rate(null["placebo_studentized_reject"]), 1 - rate(eff["placebo_studentized_reject"])
    scenario = f"{n_treated} treated, first 3x volatile"
    record("DiD placebo_in_space", scenario, REPS, size=plain, coverage=1 - rate(eff["placebo_in_space_reject"]))
    record("DiD placebo_studentized", scenario, REPS, size=size, coverage=cover)
    assert plain > ALPHA + 3 * mc_se(ALPHA, REPS), plain  # the problem the studentized test fixes
    assert within(size, ALPHA, REPS), size
    assert within(cover, 1 - ALPHA, REPS), cover
    assert all(null["placebo_studentized_agree"]) and all(eff["placebo_studentized_agree"])


def test_event_study_joint_lead_test_size() -> None:
    """Yearly bins as the site analysis uses (reference: the year before the start, leads -5..-2); the
    placebo Wald test of the leads rejects 5% of null panels (1000 panels, MC SE 0.69 points)."""
    reps = 1000
    rejections = over_panels(_leads_rejected, reps, seed=500)
    record("EventStudy joint leads test", "1 treated, yearly bins", reps, size=rate(rejections))
    assert within(rate(rejections), ALPHA, reps), rate(rejections)


def _leads_rejected(d: pd.DataFrame) -> bool:
    year = (np.arange(N_PERIODS) - START) // 12  # -5..2; every bin a whole year
    units = np.repeat(np.arange(N_UNITS), 8)
    logs = np.log(d["value"].to_numpy()).reshape(N_UNITS, N_PERIODS)
    means = np.stack([logs[:, year == b].mean(axis=1) for b in range(-5, 3)], axis=1)
    binned = pd.DataFrame(
        {"unit": units, "bin": np.tile(np.arange(-5, 3), N_UNITS), "value": means.ravel(), "treated": units < 1}
    )
    binned["treated"] = binned["treated"].astype(int)
    r = EventStudy("value", "unit", "bin", "treated", start=0, inference="placebo_in_space").fit(binned)
    return rejects(r.pretrend.p_value)
