"""Callaway-Sant'Anna on mpdta: all eight aggregates and SEs against R's did (tests/reference/mpdta)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.did.staggered import CallawaySantAnna
from evallib.methods.simulate import simulate_panel

from .conftest import FIXTURES
from .reference import values

pytestmark = pytest.mark.unit

#: R did on mpdta, doubly robust, no covariates, analytic SEs, varying base period (tests/reference/mpdta: the
#: script, its output and the source).
R_DID = values("mpdta/did_mpdta.out")
#: (estimate, SE) of each control group and aggregation.
REFERENCE = {
    (control, kind): (R_DID[f"{control}.{kind}.estimate"], R_DID[f"{control}.{kind}.std_error"])
    for control in ("never_treated", "not_yet_treated")
    for kind in ("simple", "group", "dynamic", "calendar")
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
    assert row.estimate == pytest.approx(est, abs=1e-6)  # the reference is rounded to 6 decimals
    assert row.std_error == pytest.approx(se, abs=1e-6)
    assert row.ci_low < row.estimate < row.ci_high


def test_components_match_did_readme(mpdta: pd.DataFrame) -> None:
    res = _fit(mpdta, "never_treated")
    groups = {r.term: r.estimate for r in res.aggregate("group").components}
    expected_groups = [R_DID[f"never_treated.group.{g}.estimate"] for g in (2004, 2006, 2007)]
    assert [groups[f"group {g}"] for g in (2004, 2006, 2007)] == pytest.approx(expected_groups, abs=1e-4)
    events = {r.term: r.estimate for r in res.aggregate("dynamic").components}
    expected = {e: R_DID[f"never_treated.dynamic.{e}.estimate"] for e in range(-3, 4)}
    assert [events[f"event time {e}"] for e in expected] == pytest.approx(list(expected.values()), abs=1e-4)
    first = res.group_time.iloc[0]
    assert (first["group"], first["time"], round(first["att"], 4)) == (
        2004,
        2004,
        R_DID["never_treated.att_gt.2004.2004"],
    )
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


def test_anticipation_moves_the_base_period_and_the_controls(mpdta: pd.DataFrame) -> None:
    """With one period of anticipation ATT(g,t) compares t with g-2, against units not treated by t+1."""
    res = CallawaySantAnna(
        outcome="lemp",
        unit="countyreal",
        time="year",
        cohort="first.treat",
        control_group="not_yet_treated",
        anticipation=1,
    ).fit(mpdta)
    wide = mpdta.pivot(index="countyreal", columns="year", values="lemp")
    g = mpdta.groupby("countyreal")["first.treat"].first()
    dy = wide[2006] - wide[2004]  # ATT(2006, 2006): base 2006 - 1 - 1
    control = (g == 0) | (g > 2007)  # not yet treated by 2006 + 1: only the never treated here
    expected = dy[g == 2006].mean() - dy[control].mean()
    cell = res.group_time.query("group == 2006 and time == 2006")["att"].item()
    assert cell == pytest.approx(expected, abs=1e-12)
    assert 2004 not in set(res.group_time["group"])  # 2004 - 1 is the first year: no clean base


def test_cohorts_first_treated_after_the_data_are_never_treated(mpdta: pd.DataFrame) -> None:
    late = mpdta.assign(**{"first.treat": mpdta["first.treat"].replace(2007, 2009)})
    as_never = mpdta.assign(**{"first.treat": mpdta["first.treat"].replace(2007, 0)})
    a, b = _fit(late, "never_treated"), _fit(as_never, "never_treated")
    pd.testing.assert_frame_equal(a.group_time, b.group_time)
    groups = a.aggregate("group")
    assert [c.term for c in groups.components] == ["group 2004", "group 2006"]  # no invented 2009 effect
    assert groups.overall.estimate == pytest.approx(b.aggregate("group").overall.estimate)


def test_clustering_by_unit_reproduces_unit_level_errors(mpdta: pd.DataFrame) -> None:
    res = CallawaySantAnna(
        outcome="lemp", unit="countyreal", time="year", cohort="first.treat", cluster="countyreal"
    ).fit(mpdta)
    row = res.aggregate("simple").overall
    n = 500
    # R did's unit-level SE, times the clustered variance's G / (G - 1) with one unit per cluster.
    assert row.std_error == pytest.approx(R_DID["never_treated.simple.std_error"] * np.sqrt(n / (n - 1)), abs=1e-6)
    assert row.inference == "analytic_influence_function_cluster"
    with pytest.raises(DataError, match="constant within"):
        CallawaySantAnna(outcome="lemp", unit="countyreal", time="year", cohort="first.treat", cluster="year").fit(
            mpdta
        )


def _clustered_panel(seed: int, n_clusters: int = 40, size: int = 5, periods: int = 8) -> pd.DataFrame:
    """Units in clusters that share shocks and a start date (like trusts designated with their system)."""
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clusters), size)
    start = np.array([0, 4, 6])[rng.integers(0, 3, n_clusters)][cl]
    y = (
        rng.normal(0, 1, (n_clusters, periods))[cl]  # cluster-period shocks: within-cluster correlation
        + rng.normal(0, 0.5, (n_clusters * size, periods))
        + rng.normal(0, 1, (n_clusters * size, 1))
    )
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_clusters * size), periods),
            "t": np.tile(np.arange(periods), n_clusters * size),
            "y": y.ravel(),
            "cohort": np.repeat(start, periods),
            "system": np.repeat(cl, periods),
        }
    )


@pytest.mark.montecarlo
def test_clustered_errors_hold_their_size_where_unit_level_ones_over_reject() -> None:
    reps = 200
    unit_rej, cl_rej = [], []
    for s in range(reps):
        d = _clustered_panel(s)
        roles = dict(outcome="y", unit="unit", time="t", cohort="cohort")
        unit_rej.append(CallawaySantAnna(**roles).fit(d).aggregate("simple").overall.p_value <= 0.05)
        cl_rej.append(CallawaySantAnna(**roles, cluster="system").fit(d).aggregate("simple").overall.p_value <= 0.05)
    assert np.mean(unit_rej) > 0.2
    assert abs(np.mean(cl_rej) - 0.05) < 3 * np.sqrt(0.05 * 0.95 / reps)
