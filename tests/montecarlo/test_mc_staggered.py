"""Size and coverage of the staggered roll-out's placebo test (Callaway-Sant'Anna, not-yet-treated comparisons).

NHS-like panels (:func:`evallib.methods.simulate.nhs_log_panels`, exchangeable trusts: 130 x 96 months, trust
drifts, national trend, seasonality, AR(1) noise with log-normal volatility, Poisson counts). Four trusts start
at three dates (months 48 and 48, 60, 72), as in the worked example; under the effect every one of them has
-10% (log) from its own start. Asserted as the rest of the suite: the overall test's size within 3 Monte Carlo
standard errors of 5%, its coverage within 3 SE of 95%, and p > alpha exactly when 0 is inside the interval in
every replication. Measured values: tests/montecarlo/README.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.site.staggered_site import fake_start_design
from evallib.methods.base.design import Design
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.simulate import nhs_log_panels

from .sim import ALPHA, N_PERIODS, N_UNITS, mc_se, rate, record, within

pytestmark = pytest.mark.montecarlo
EFFECT = -0.1
START_POSITIONS = (48, 48, 60, 72)  # the first four trusts' own starts (months from 0)
REPS = 2000  # MC SE 0.49 points at 5%; 3 SE = 1.5 points
REPS_EFFECT = 2000
DRAWS = 199  # placebo assignments per replication: the smallest p-value is 1/200


def _rows(
    reps: int, effect: float, seed: int, *, studentized: bool = False, treated_volatility: float | None = None
) -> dict[str, list[bool]]:
    """Per replication: the overall and each cohort's test rejecting the true effect, and p agreeing with the CI."""
    periods = pd.date_range("2011-04-01", periods=N_PERIODS, freq="MS")
    units = tuple(f"T{i:03d}" for i in range(N_UNITS))
    starts = [periods[p] for p in START_POSITIONS] + [None] * (N_UNITS - len(START_POSITIONS))
    cells = np.zeros((N_UNITS, N_PERIODS))
    for u, p in enumerate(START_POSITIONS):
        cells[u, p:] = 1.0
    out: dict[str, list[bool]] = {}
    for done in range(0, reps, 250):
        m = min(250, reps - done)
        log_mu, _ = nhs_log_panels(
            m, N_UNITS, N_PERIODS, n_treated=1, start_period=60, treated_volatility=treated_volatility, seed=seed + done
        )
        log_mu = log_mu + effect * cells  # each treated trust from its own start
        counts = np.random.default_rng(seed + 10_000 + done).poisson(np.exp(log_mu)).astype(float)
        for r in range(m):
            design = Design(
                values=counts[r],
                units=units,
                periods=periods,
                treated=np.array([s is not None for s in starts]),
                start=periods[min(START_POSITIONS)],
                unit_starts=tuple(starts),
                measure="count",
            )
            estimator = StaggeredPlacebo(n_draws=DRAWS, seed=seed + done + r, studentized=studentized)
            res = estimator.fit(design)
            fake = fake_start_design(design)
            assert fake is not None
            in_time = estimator.fit(fake).overall  # before every start: no effect in either scenario
            out.setdefault("in_time_reject", []).append(not (in_time.ci_low <= 0 <= in_time.ci_high))
            for row in res.rows:
                key = row.term.split("_")[0] if row.term == "overall" else row.term
                out.setdefault(f"{key}_reject", []).append(not (row.ci_low <= effect <= row.ci_high))
                out.setdefault(f"{key}_agree", []).append((row.p_value > ALPHA) == (row.ci_low <= 0 <= row.ci_high))
    return out


def test_staggered_placebo_size_and_coverage_with_exchangeable_trusts() -> None:
    """Overall effect: size under no effect (2,000 panels), coverage under -10% from each start (2,000 panels);
    each cohort's test recorded beside it; p > alpha exactly when 0 is in the interval."""
    null = _rows(REPS, 0.0, seed=2100)
    eff = _rows(REPS_EFFECT, EFFECT, seed=2200)
    size, cover = rate(null["overall_reject"]), 1 - rate(eff["overall_reject"])
    record("StaggeredPlacebo overall", "4 treated, 3 start dates", REPS, size=size, coverage=cover)
    in_time = rate(null["in_time_reject"] + eff["in_time_reject"])
    record("StaggeredPlacebo placebo in time", "4 treated, 3 start dates", 2 * REPS, size=in_time)
    cohorts = [k.removesuffix("_reject") for k in null if k.startswith("cohort") and k.endswith("_reject")]
    for key in sorted(cohorts):
        record(
            f"StaggeredPlacebo {key}",
            "4 treated, 3 start dates",
            REPS,
            size=rate(null[f"{key}_reject"]),
            coverage=1 - rate(eff[f"{key}_reject"]),
        )
    assert within(size, ALPHA, REPS), (size, mc_se(ALPHA, REPS))
    assert within(in_time, ALPHA, 2 * REPS), in_time
    assert within(cover, 1 - ALPHA, REPS_EFFECT), cover
    assert all(all(v) for k, v in {**null, **eff}.items() if k.endswith("_agree"))


def test_studentized_staggered_placebo_holds_with_a_volatile_treated_trust() -> None:
    """The first treated trust three times the median volatility (a site the volatile-site rule sends to the
    studentized test): the studentized overall test's size within 3 MC SE of 5% (1,000 panels)."""
    reps = 1000
    null = _rows(reps, 0.0, seed=3100, studentized=True, treated_volatility=3.0)
    size = rate(null["overall_reject"])
    record("StaggeredPlacebo overall, studentized", "4 treated, first 3x volatile", reps, size=size)
    assert within(size, ALPHA, reps), size
    assert all(all(v) for k, v in null.items() if k.endswith("_agree"))
