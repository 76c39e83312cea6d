"""Size of the placebo tests that rank the real assignment among a seeded random subset of placebo refits
(issue 22): the rate ratio (PoissonDiD) and synthetic control, whose refits are too costly to try every unit
past ``max_exhaustive`` units (500 by default). The cap is lowered here to 50 so that the NHS-like panels
(130 trusts x 96 months, one treated trust) take the sampled path cheaply; 19 random placebo assignments
beside the real one make the attainable size exactly 1/20 = 5% (less any draw that repeats the real unit).
Each check asserts the rejection rate under no effect within 3 Monte Carlo standard errors of 5%, and that
p > alpha exactly when the null value lies in the interval. Measured values: tests/montecarlo/README.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.synth.control import SyntheticControl

from .sim import ALPHA, START_DATE, over_panels, rate, record, rejects, within

pytestmark = pytest.mark.montecarlo
DRAWS, CAP = 19, 50
RATE_MODEL = PoissonDiD(
    "value",
    "unit",
    "period",
    "treated",
    "post",
    exposure="population",
    inference="placebo_in_space",
    n_draws=DRAWS,
    max_exhaustive=CAP,
)


def _rate_ratio(d: pd.DataFrame) -> tuple[bool, bool, bool]:
    r = RATE_MODEL.fit(d)
    h = r.headline
    return rejects(h.p_value), (not rejects(h.p_value)) == (h.ci_low <= 1 <= h.ci_high), r.placebo_draws == DRAWS


def _synth(d: pd.DataFrame) -> tuple[bool, bool, bool]:
    site = str(d.loc[d["treated"] == 1, "unit"].iloc[0])
    model = SyntheticControl(
        "value", "unit", "period", treated=site, start=START_DATE, demean=True, n_draws=DRAWS, max_exhaustive=CAP
    )
    r = model.fit(d.assign(value=np.log(d["value"])))
    h = r.headline
    return rejects(h.p_value), (not rejects(h.p_value)) == (h.ci_low <= 0 <= h.ci_high), r.placebo_draws == DRAWS


@pytest.mark.parametrize(
    ("name", "fn", "reps", "seed"),
    [("PoissonDiD rate ratio", _rate_ratio, 1000, 1300), ("SyntheticControl mean_post_gap", _synth, 1000, 1400)],
)
def test_sampled_placebo_refits_hold_their_size(name: str, fn: object, reps: int, seed: int) -> None:
    """No effect: rejection rate within 3 MC SE of 5% (1000 panels: 0.69 points)."""
    rows = over_panels(fn, reps, seed=seed, effect=0.0)  # type: ignore[arg-type]
    size = rate([r for r, _, _ in rows])
    record(name, f"1 treated, {DRAWS} random placebo refits", reps, size=size)
    assert all(sampled for _, _, sampled in rows)  # every fit took the sampled path
    assert within(size, ALPHA, reps), size
    assert all(agree for _, agree, _ in rows)
