"""Size and coverage of the stacked DiD's placebo test (``StackedDiD``: one sub-experiment per cohort with clean
comparisons, placebo re-assignment of the start dates).

The staggered Monte Carlo's panels (:func:`evallib.methods.simulate.nhs_log_panels`, exchangeable trusts: 130 x 96
months); four trusts start at months 48, 48, 60 and 72, with -10% (log) from each one's own start under the effect.
The default event window: the 48 months before and the 24 from each start. Asserted: the overall test's size within
3 Monte Carlo standard errors of 5%, its coverage within 3 SE of 95%, and p > alpha exactly when 0 is inside the
interval in every replication. Measured values: tests/montecarlo/README.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.methods.base.design import Design
from evallib.methods.did.stacked import StackedDiD
from evallib.methods.simulate import nhs_log_panels

from .sim import ALPHA, N_PERIODS, N_UNITS, mc_se, rate, record, within

pytestmark = pytest.mark.montecarlo
EFFECT = -0.1
START_POSITIONS = (48, 48, 60, 72)
REPS = 1000  # MC SE 0.69 points at 5%
DRAWS = 199


def _rows(reps: int, effect: float, seed: int) -> dict[str, list[bool]]:
    """Per replication: each row's test rejecting the true effect, and p agreeing with the interval."""
    periods = pd.date_range("2011-04-01", periods=N_PERIODS, freq="MS")
    units = tuple(f"T{i:03d}" for i in range(N_UNITS))
    starts = [periods[p] for p in START_POSITIONS] + [None] * (N_UNITS - len(START_POSITIONS))
    cells = np.zeros((N_UNITS, N_PERIODS))
    for u, p in enumerate(START_POSITIONS):
        cells[u, p:] = 1.0
    out: dict[str, list[bool]] = {}
    for done in range(0, reps, 250):
        m = min(250, reps - done)
        log_mu, _ = nhs_log_panels(m, N_UNITS, N_PERIODS, n_treated=1, start_period=60, seed=seed + done)
        counts = np.random.default_rng(seed + 10_000 + done).poisson(np.exp(log_mu + effect * cells)).astype(float)
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
            res = StackedDiD(n_draws=DRAWS, seed=seed + done + r).fit(design)
            for row in res.rows:
                out.setdefault(f"{row.term}_reject", []).append(not (row.ci_low <= effect <= row.ci_high))
                out.setdefault(f"{row.term}_agree", []).append(
                    (row.p_value > ALPHA) == (row.ci_low <= 0 <= row.ci_high)
                )
    return out


def test_stacked_did_size_and_coverage_with_exchangeable_trusts() -> None:
    """Overall effect: size under no effect (1,000 panels), coverage under -10% from each start (1,000 panels)."""
    null = _rows(REPS, 0.0, seed=4100)
    eff = _rows(REPS, EFFECT, seed=4200)
    size, cover = rate(null["overall_reject"]), 1 - rate(eff["overall_reject"])
    record("StackedDiD overall", "4 treated, 3 start dates", REPS, size=size, coverage=cover)
    for key in sorted(k.removesuffix("_reject") for k in null if k.startswith("cohort") and k.endswith("_reject")):
        record(
            f"StackedDiD {key}",
            "4 treated, 3 start dates",
            REPS,
            size=rate(null[f"{key}_reject"]),
            coverage=1 - rate(eff[f"{key}_reject"]),
        )
    assert within(size, ALPHA, REPS), (size, mc_se(ALPHA, REPS))
    assert within(cover, 1 - ALPHA, REPS), cover
    assert all(all(v) for k, v in {**null, **eff}.items() if k.endswith("_agree"))
