"""Size and coverage of the rate ratio (PoissonDiD placebo), the controlled ITS with comparison units as
placebos (ControlledITS) and the ITS on a site's own series with REML AR(1) errors (SegmentedITS).

Same NHS-like panels as test_mc_placebo.py (130 trusts x 96 months, start at month 60, one treated trust
unless stated), through the public API. Each check asserts within 3 Monte Carlo standard errors (SE) of
5% / 95%, and that p > alpha exactly when the null value (0, or 1 for ratios) is in the interval.
Measured values: tests/montecarlo/README.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.methods.its import SegmentedITS
from evallib.methods.its_placebo import ControlledITS
from evallib.methods.rates import PoissonDiD

from .sim import ALPHA, START, START_DATE, panels, rate, record, within

pytestmark = pytest.mark.montecarlo
EFFECT = -0.1


def test_rate_ratio_size_and_coverage() -> None:
    """PoissonDiD with placebo inference (interval by refitting under each null rate ratio): 400 null and
    400 effect panels, MC SE 1.09 points (3 SE = 3.3 points)."""
    reps = 400
    model = PoissonDiD(
        "value", "unit", "period", "treated", "post", exposure="population", inference="placebo_in_space"
    )
    reject, cover, agree = [], [], []
    for effect, hits, seed in ((0.0, reject, 600), (EFFECT, cover, 700)):
        for d in panels(reps, seed=seed, effect=effect):
            r = model.fit(d).row
            inside = r.ci_low <= np.exp(effect) <= r.ci_high
            hits.append(not inside if effect == 0 else inside)
            agree.append((r.p_value > ALPHA) == (r.ci_low <= 1 <= r.ci_high))
    record("PoissonDiD rate ratio", "1 treated", reps, size=rate(reject), coverage=rate(cover))
    assert within(rate(reject), ALPHA, reps), rate(reject)
    assert within(rate(cover), 1 - ALPHA, reps), rate(cover)
    assert all(agree)


@pytest.mark.parametrize("n_treated", [1, 3])
def test_controlled_its_placebo_size_and_coverage(n_treated: int) -> None:
    """Level change, slope change, effect at 12 months and mean post-period effect: 500 null and 500 effect
    panels, MC SE 0.69 points (3 SE = 2.1 points) for each term."""
    reps = 1000
    model = ControlledITS("value", "unit", "period", "treated", start=START_DATE, horizons=(12,), n_draws=999)
    truth = {"level_change": EFFECT, "slope_change": 0.0, "effect_at_12": 100 * np.expm1(EFFECT)}
    truth["mean_post_effect"] = truth["effect_at_12"]
    reject: dict[str, list[bool]] = {}
    cover: dict[str, list[bool]] = {}
    agree = []
    for effect, seed in ((0.0, 800 + n_treated), (EFFECT, 900 + n_treated)):
        for d in panels(reps, seed=seed, n_treated=n_treated, effect=effect):
            for row in model.fit(d).rows:
                if effect == 0:
                    reject.setdefault(row.term, []).append(row.p_value <= ALPHA)
                else:
                    cover.setdefault(row.term, []).append(row.ci_low <= truth[row.term] <= row.ci_high)
                agree.append((row.p_value > ALPHA) == (row.ci_low <= 0 <= row.ci_high))
    for term in truth:
        record(
            f"ControlledITS {term}", f"{n_treated} treated", reps, size=rate(reject[term]), coverage=rate(cover[term])
        )
    for term in truth:
        assert within(rate(reject[term]), ALPHA, reps), (term, rate(reject[term]))
        assert within(rate(cover[term]), 1 - ALPHA, reps), (term, rate(cover[term]))
    assert all(agree)


def test_its_own_series_reml_intervals_reach_95_percent() -> None:
    """SegmentedITS(errors="ar1_reml") on the treated trust's own monthly counts: size of each term under no
    effect and coverage under -10% (cumulative effect: observed minus observed without the effect), 400
    series each, MC SE 1.09 points (3 SE = 3.3 points)."""
    reps = 400
    index = pd.date_range("2011-04-01", periods=96, freq="MS")
    model = SegmentedITS(index[START], errors="ar1_reml", horizons=(12, 24), outcome_label="sim")
    reject: dict[str, list[bool]] = {}
    cover: dict[str, list[bool]] = {}
    agree = []
    for effect, seed in ((0.0, 1000), (EFFECT, 1100)):
        for d in panels(reps, seed=seed, effect=effect):
            y = d["value"].to_numpy()[:96]  # the treated trust comes first
            truth = {"level_change": effect, "slope_change": 0.0, "effect_at_12": 100 * np.expm1(effect)}
            truth |= {
                "effect_at_24": truth["effect_at_12"],
                "cumulative_effect": (y[START:] * -np.expm1(-effect)).sum(),
            }
            for row in model.fit(pd.Series(y, index=index)).rows:
                if effect == 0:
                    reject.setdefault(row.term, []).append(row.p_value <= ALPHA)
                else:
                    cover.setdefault(row.term, []).append(row.ci_low <= truth[row.term] <= row.ci_high)
                agree.append((row.p_value > ALPHA) == (row.ci_low <= 0 <= row.ci_high))
    for term in reject:
        record(f"SegmentedITS ar1_reml {term}", "own series", reps, size=rate(reject[term]), coverage=rate(cover[term]))
    for term in reject:
        assert within(rate(reject[term]), ALPHA, reps), (term, rate(reject[term]))
        assert within(rate(cover[term]), 1 - ALPHA, reps), (term, rate(cover[term]))
    assert all(agree)
