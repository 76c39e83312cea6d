"""Size and coverage of synthetic DiD's placebo test when the placebo units are a seeded random subset (issue 22).

Past ``exhaustive_units`` units with one treated unit, :class:`SyntheticDiD` refits the real unit and ``n_draws``
others drawn at random. Here the cap is lowered to 40 on the suite's NHS-like panels (130 trusts x 96 months, one
treated trust, start at month 60) with 39 draws, so each test ranks 40 fits: p <= 0.05 exactly when the real
estimate is among the 2 largest in absolute value, an attainable size of 2/40 = 5.0% (cheap: 40 refits a panel).
Each rate must lie within 3 Monte Carlo standard errors of 5% / 95%, and p > alpha exactly when 0 is in the interval.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import pytest

from evallib.methods.synth.synthetic_did import SyntheticDiD

from .sim import ALPHA, mc_se, over_panels, rate, record, rejects, within

pytestmark = pytest.mark.montecarlo
EFFECT = -0.1
REPS = 400  # MC SE 1.09 points at 5%; 3 SE = 3.3 points


def _fit(d: pd.DataFrame, effect: float) -> tuple[bool, bool, bool]:
    r = SyntheticDiD(transform="log", n_draws=39, exhaustive_units=40, seed=7).fit(d).headline
    assert r.n_control == 129
    covers = r.ci_low <= effect <= r.ci_high
    return rejects(r.p_value), covers, (not rejects(r.p_value)) == (r.ci_low <= 0 <= r.ci_high)


def test_capped_synthetic_did_holds_its_size_and_coverage() -> None:
    null = over_panels(partial(_fit, effect=0.0), REPS, seed=2201)
    alt = over_panels(partial(_fit, effect=EFFECT), REPS, seed=2202, effect=EFFECT)
    size = rate([r for r, _, _ in null])
    coverage = rate([c for _, c, _ in alt])
    record("SyntheticDiD placebo (random 40 of 130)", "1 treated", REPS, size=size, coverage=coverage)
    assert within(size, ALPHA, REPS), (size, mc_se(ALPHA, REPS))
    assert within(coverage, 1 - ALPHA, REPS), coverage
    assert all(a for _, _, a in null + alt)  # p > alpha exactly when 0 is in the interval
