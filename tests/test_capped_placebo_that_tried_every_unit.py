"""A capped placebo test whose draws cover every other unit is exhaustive, and says so (no draws, no MC error).

Past ``max_exhaustive`` units the refitting estimators draw random placebo units, but with ``n_draws`` at least the
other units the sampler uses every unit once (permutation.random_single_sets): the p-value is then the exhaustive
one. Synthetic DiD and the synthetic control report 0 draws there; the rate ratio reported every unit as a "random
placebo assignment" with a Monte Carlo error of 0, so the page said "p-value from 40 random placebo assignments,
Monte Carlo error 0.000" for a test that tried every unit.
"""

from __future__ import annotations

import pandas as pd
import pytest

from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.simulate import simulate_nhs_panel
from evallib.methods.synth.synthetic_did import SyntheticDiD


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_nhs_panel(41, 36, start_period=24, seed=7)


def test_the_rate_ratio_past_its_cap_with_draws_for_every_unit_is_exhaustive(panel: pd.DataFrame) -> None:
    capped = PoissonDiD(inference="placebo_in_space", n_draws=99, max_exhaustive=10).fit(panel)
    exhaustive = PoissonDiD(inference="placebo_in_space", n_draws=99).fit(panel)
    assert capped.p_value == exhaustive.p_value
    assert capped.placebo_draws == 0 and capped.p_value_mc_error == 0.0


def test_synthetic_did_past_its_cap_with_draws_for_every_unit_is_exhaustive(panel: pd.DataFrame) -> None:
    res = SyntheticDiD(n_draws=99, exhaustive_units=10).fit(panel)
    assert res.placebo_draws == 0 and res.p_value_mc_error == 0.0
