"""Size and coverage of the rate ratio (PoissonDiD placebo), the controlled ITS with comparison units as
placebos (ControlledITS) and the ITS on a site's own series with REML AR(1) errors (SegmentedITS).

Same NHS-like panels as test_mc_placebo.py (130 trusts x 96 months, start at month 60, one treated trust
unless stated), through the public API. Each check asserts within 3 Monte Carlo standard errors (SE) of
5% / 95%, and that p > alpha exactly when the null value (0, or 1 for ratios) is in the interval.
Measured values: tests/montecarlo/README.md.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.its.controlled import ControlledITS
from evallib.methods.its.segmented import SegmentedITS

from .sim import ALPHA, START, START_DATE, over_panels, rate, record, rejects, within

pytestmark = pytest.mark.montecarlo
EFFECT = -0.1


RATE_MODEL = PoissonDiD(
    "value", "unit", "period", "treated", "post", exposure="population", inference="placebo_in_space"
)
CITS_MODEL = ControlledITS("value", "unit", "period", "treated", start=START_DATE, horizons=(12,), n_draws=999)
MONTHS = pd.date_range("2011-04-01", periods=96, freq="MS")
ITS_MODEL = SegmentedITS(MONTHS[START], errors="ar1_reml", horizons=(12, 24), outcome_label="sim")


def _rate_ratio(d: pd.DataFrame, effect: float) -> tuple[bool, bool]:
    r = RATE_MODEL.fit(d).headline
    return (not r.ci_low <= np.exp(effect) <= r.ci_high), (not rejects(r.p_value)) == (r.ci_low <= 1 <= r.ci_high)


def test_rate_ratio_size_and_coverage() -> None:
    """PoissonDiD with placebo inference (interval by refitting under each null rate ratio): 300 null and
    300 effect panels, MC SE 1.26 points (3 SE = 3.8 points)."""
    reps = 300
    null = over_panels(partial(_rate_ratio, effect=0.0), reps, seed=600, effect=0.0)
    eff = over_panels(partial(_rate_ratio, effect=EFFECT), reps, seed=700, effect=EFFECT)
    size, cover = rate([m for m, _ in null]), 1 - rate([m for m, _ in eff])
    record("PoissonDiD rate ratio", "1 treated", reps, size=size, coverage=cover)
    assert within(size, ALPHA, reps), size
    assert within(cover, 1 - ALPHA, reps), cover
    assert all(a for _, a in null + eff)


def _cits_rows(d: pd.DataFrame, effect: float) -> list[tuple[str, bool, bool]]:
    """(term, rejects the true value, p agrees with the interval) for each ControlledITS term."""
    truth = {"level_change": effect, "slope_change": 0.0, "effect_at_12": 100 * np.expm1(effect)}
    truth["mean_post_effect"] = truth["effect_at_12"]
    return [
        (
            row.term,
            not row.ci_low <= truth[row.term] <= row.ci_high,
            (not rejects(row.p_value)) == (row.ci_low <= 0 <= row.ci_high),
        )
        for row in CITS_MODEL.fit(d).rows
    ]


def _by_term(results: list[list[tuple[str, bool, bool]]]) -> tuple[dict[str, list[bool]], list[bool]]:
    hits: dict[str, list[bool]] = {}
    agree = []
    for rows in results:
        for term, miss, ok in rows:
            hits.setdefault(term, []).append(miss)
            agree.append(ok)
    return hits, agree


@pytest.mark.parametrize("n_treated", [1, 3])
def test_controlled_its_placebo_size_and_coverage(n_treated: int) -> None:
    """Level change, slope change, effect at 12 months and mean post-period effect: 1000 null and 1000 effect
    panels, MC SE 0.69 points (3 SE = 2.1 points) for each term."""
    reps = 1000
    reject, agree0 = _by_term(
        over_panels(partial(_cits_rows, effect=0.0), reps, seed=800 + n_treated, n_treated=n_treated, effect=0.0)
    )
    miss, agree1 = _by_term(
        over_panels(partial(_cits_rows, effect=EFFECT), reps, seed=900 + n_treated, n_treated=n_treated, effect=EFFECT)
    )
    for term in reject:
        size, cover = rate(reject[term]), 1 - rate(miss[term])
        record(f"ControlledITS {term}", f"{n_treated} treated", reps, size=size, coverage=cover)
    for term in reject:
        assert within(rate(reject[term]), ALPHA, reps), (term, rate(reject[term]))
        assert within(1 - rate(miss[term]), 1 - ALPHA, reps), (term, 1 - rate(miss[term]))
    assert all(agree0) and all(agree1)


def _its_rows(d: pd.DataFrame, effect: float) -> list[tuple[str, bool, bool]]:
    """(term, rejects the true value, p agrees with the interval) for the REML ITS of the treated trust's series."""
    y = d["value"].to_numpy()[:96]  # the treated trust comes first
    truth = {"level_change": effect, "slope_change": 0.0, "effect_at_12": 100 * np.expm1(effect)}
    truth |= {"effect_at_24": truth["effect_at_12"], "cumulative_effect": (y[START:] * -np.expm1(-effect)).sum()}
    return [
        (
            row.term,
            not row.ci_low <= truth[row.term] <= row.ci_high,
            (not rejects(row.p_value)) == (row.ci_low <= 0 <= row.ci_high),
        )
        for row in ITS_MODEL.fit(pd.Series(y, index=MONTHS)).rows
    ]


def test_its_own_series_reml_intervals_reach_95_percent() -> None:
    """SegmentedITS(errors="ar1_reml") on the treated trust's own monthly counts: size of each term under no
    effect and coverage under -10% (cumulative effect: observed minus observed without the effect), 400
    series each, MC SE 1.09 points (3 SE = 3.3 points)."""
    reps = 400
    reject, agree0 = _by_term(over_panels(partial(_its_rows, effect=0.0), reps, seed=1000, effect=0.0))
    miss, agree1 = _by_term(over_panels(partial(_its_rows, effect=EFFECT), reps, seed=1100, effect=EFFECT))
    for term in reject:
        size, cover = rate(reject[term]), 1 - rate(miss[term])
        record(f"SegmentedITS ar1_reml {term}", "own series", reps, size=size, coverage=cover)
    for term in reject:
        assert within(rate(reject[term]), ALPHA, reps), (term, rate(reject[term]))
        assert within(1 - rate(miss[term]), 1 - ALPHA, reps), (term, 1 - rate(miss[term]))
    assert all(agree0) and all(agree1)
