"""Callaway-Sant'Anna on mpdta: all eight aggregates and SEs against R's did (REFERENCE.md section 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.simulate import simulate_panel
from evallib.methods.staggered import CallawaySantAnna

from .conftest import FIXTURES

pytestmark = pytest.mark.unit

# (estimate, SE) from R did, doubly robust, no covariates, analytic SEs, varying base period.
REFERENCE = {
    ("never_treated", "simple"): (-0.039951, 0.012034),
    ("never_treated", "group"): (-0.031018, 0.012446),
    ("never_treated", "dynamic"): (-0.077240, 0.019965),
    ("never_treated", "calendar"): (-0.041700, 0.015972),
    ("not_yet_treated", "simple"): (-0.039764, 0.012052),
    ("not_yet_treated", "group"): (-0.030462, 0.012575),
    ("not_yet_treated", "dynamic"): (-0.077399, 0.019560),
    ("not_yet_treated", "calendar"): (-0.044267, 0.015571),
}


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "mpdta.csv")


def _fit(mpdta: pd.DataFrame, control: str, estimation: str = "dr"):
    return CallawaySantAnna(
        outcome="lemp",
        unit="countyreal",
        time="year",
        cohort="first.treat",
        control_group=control,
        estimation=estimation,
    ).fit(mpdta)


@pytest.mark.parametrize(("control", "kind"), list(REFERENCE))
def test_aggregates_match_r_did(mpdta: pd.DataFrame, control: str, kind: str) -> None:
    est, se = REFERENCE[(control, kind)]
    row = _fit(mpdta, control).aggregate(kind).overall
    assert row.estimate == pytest.approx(est, abs=1e-4)
    assert row.std_error == pytest.approx(se, abs=1e-4)
    assert row.ci_low < row.estimate < row.ci_high


def test_components_match_did_readme(mpdta: pd.DataFrame) -> None:
    res = _fit(mpdta, "never_treated")
    groups = {r.term: r.estimate for r in res.aggregate("group").components}
    assert [groups[f"group {g}"] for g in (2004, 2006, 2007)] == pytest.approx([-0.0797, -0.0229, -0.0261], abs=1e-4)
    events = {r.term: r.estimate for r in res.aggregate("dynamic").components}
    expected = {-3: 0.0305, -2: -0.0006, -1: -0.0245, 0: -0.0199, 1: -0.0510, 2: -0.1373, 3: -0.1008}
    assert [events[f"event time {e}"] for e in expected] == pytest.approx(list(expected.values()), abs=1e-4)
    first = res.group_time.iloc[0]
    assert (first["group"], first["time"], round(first["att"], 4)) == (2004, 2004, -0.0105)
    assert len(res.tidy()) == 12


def test_or_and_dr_agree_without_covariates(mpdta: pd.DataFrame) -> None:
    a, b = _fit(mpdta, "never_treated", "dr"), _fit(mpdta, "never_treated", "or")
    np.testing.assert_allclose(a.group_time["att"], b.group_time["att"])


def test_recovers_known_staggered_effect() -> None:
    """Three cohorts with effects growing over time: CS is unbiased where static TWFE is not."""
    sims = []
    for seed in range(20):
        d = simulate_panel(90, 24, treated=0, seed=seed, trend_sd=0.0)
        t = d["period"].rank(method="dense").astype(int) - 1
        cohort = np.repeat([0] * 30 + [8] * 30 + [16] * 30, 24)
        event = np.where(cohort > 0, t - cohort, -1)
        d["y"] = np.log(d["value"]) + np.where(event >= 0, 0.01 * (event + 1), 0.0)
        d["t"], d["cohort"] = t, cohort
        res = CallawaySantAnna(outcome="y", unit="unit", time="t", cohort="cohort").fit(d)
        true = np.mean([0.01 * (tt - g + 1) for g in (8, 16) for tt in range(g, 24)])
        sims.append(res.aggregate("simple").overall.estimate - true)
    assert abs(np.mean(sims)) < 3 * np.std(sims) / np.sqrt(len(sims))  # unbiased within simulation error


def test_validation(mpdta: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="balanced"):
        _fit(mpdta.iloc[1:], "never_treated")
    with pytest.raises(DataError, match="no never-treated"):
        _fit(mpdta[mpdta["first.treat"] > 0], "never_treated")
    with pytest.raises(DataError, match="unknown aggregation"):
        _fit(mpdta, "never_treated").aggregate("weekly")  # type: ignore[arg-type]
