"""Comparison areas: pool rules, matching, synthetic control, pooling and the programme view."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.evaluation.site.coverage import analysis_frame, excluded_by_rule, load_panel
from evallib.evaluation.studies import programme
from evallib.methods.pooling import random_effects
from evallib.methods.synth.control import SyntheticControl, simplex_least_squares
from evallib.methods.synth.matching import MEAN_COUNT_FEATURE, balance_table, match_comparators, series_features
from evallib.protocol.params import find_params, load_params
from evallib.reporting import programme_page
from evallib.sources.registry import load_registry

from .conftest import ROOT

pytestmark = pytest.mark.unit


@pytest.mark.integration
def test_no_vanguard_is_ever_another_vanguards_comparator() -> None:
    vanguard_trusts = {c for s in load_registry() if s.site_type == "vanguard" for c in s.acute_trust_codes}
    checked = 0
    for f in find_params(ROOT / "params" / "vanguards"):
        p = load_params(f)
        try:
            _, _, cov = analysis_frame(p, load_panel(p), p.primary_outcome)
        except Exception:  # noqa: BLE001 - not evaluable sites have no pool to check
            continue
        assert not set(cov.comparators) & vanguard_trusts, p.site_id
        checked += 1
    assert checked >= 30


def test_ics_wave_logic() -> None:
    i11 = load_params(ROOT / "params" / "ics" / "I11.yaml")  # wave 2, follow-up to Feb 2020
    excluded = excluded_by_rule(i11)
    wave3 = {c for s in load_registry() if s.site_id == "I16" for c in s.acute_trust_codes}  # June 2019
    wave4 = {c for s in load_registry() if s.site_id == "I18" for c in s.acute_trust_codes}  # 2020 (April)
    assert wave3 <= excluded  # designated before the end of follow-up
    assert not wave4 & excluded  # designated after it: still a fair comparator


def _series(level: float, trend: float, season: float, n: int = 36, seed: int = 0) -> pd.Series:
    idx = pd.date_range("2013-04-01", periods=n, freq="MS")
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 0.001, n)
    return pd.Series(np.exp(level + trend * t / 12 + season * np.sin(2 * np.pi * idx.month / 12) + noise), index=idx)


def test_matching_returns_the_k_closest_by_standardised_distance() -> None:
    rng = np.random.default_rng(1)
    pool = pd.DataFrame(
        {f"U{i}": _series(8 + rng.normal(0, 0.5), rng.normal(0, 0.05), rng.normal(0, 0.1), seed=i) for i in range(30)}
    )
    site = _series(8.1, 0.02, 0.05, seed=99)
    m = match_comparators(site, pool, k=5)
    feats = series_features(pool)
    sf = series_features(site.to_frame("s")).iloc[0]
    brute = np.sqrt((((feats - sf) / feats.std(ddof=1)) ** 2).sum(axis=1)).sort_values()
    assert m.units == list(brute.index[:5])
    np.testing.assert_allclose(m.table["distance"], brute.iloc[:5])
    assert feats.loc["U0", "trend"] == pytest.approx(np.log(pool["U0"]).diff().mean() * 12, abs=0.01)
    with pytest.raises(DataError):
        match_comparators(site, pool * 0, k=3)


def test_balance_table_has_every_set() -> None:
    pool = pd.DataFrame({f"U{i}": _series(8 + 0.1 * i, 0.01 * i, 0.05, seed=i) for i in range(8)})
    site = _series(8.3, 0.03, 0.05)
    t = balance_table(
        site,
        pool,
        {"all": pd.Series(1.0, index=pool.columns), "first3": pd.Series(1.0, index=["U0", "U1", "U2"])},
    )
    assert list(t.columns) == ["feature", "site", "all", "all (std. diff.)", "first3", "first3 (std. diff.)"]
    # The mean count is returned unrounded: methods know nothing of disclosure control; the report rounds it.
    assert t.iloc[-1]["feature"] == MEAN_COUNT_FEATURE
    assert t.iloc[-1]["site"] == pytest.approx(site.mean())
    assert t.iloc[-1]["first3"] == pytest.approx(pool[["U0", "U1", "U2"]].mean().mean())


def test_simplex_solver_satisfies_constraints_and_beats_a_grid() -> None:
    rng = np.random.default_rng(2)
    A, b = rng.normal(size=(20, 6)), rng.normal(size=20)
    w = simplex_least_squares(A, b)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    best = min(np.sum((A @ v - b) ** 2) for v in rng.dirichlet(np.ones(6), size=20_000))
    assert np.sum((A @ w - b) ** 2) <= best + 1e-9


def _constructed(seed: int = 0, J: int = 15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T = 30
    D = rng.normal(size=(T, J)).cumsum(axis=0) + 20
    y = D[:, 2] * 0.6 + D[:, 5] * 0.4
    y[20:] += 1.5
    rows = [("T", t, y[t], 1.0) for t in range(T)] + [
        (f"D{j:02d}", t, D[t, j], 1.0 + j) for t in range(T) for j in range(J)
    ]
    return pd.DataFrame(rows, columns=["unit", "time", "y", "x"])


def test_synthetic_control_recovers_known_weights_and_effect() -> None:
    r = SyntheticControl("y", "unit", "time", "T", 20).fit(_constructed())
    assert r.weights["D02"] == pytest.approx(0.6, abs=1e-6) and r.weights["D05"] == pytest.approx(0.4, abs=1e-6)
    assert r.headline.estimate == pytest.approx(1.5, abs=1e-6) and r.pre_rmspe < 1e-6
    assert r.rmspe_ratio_p_value == pytest.approx(1 / 16)  # the largest RMSPE ratio of 16 units
    assert r.min_p_value == pytest.approx(1 / 16) and r.headline.inference == "placebo_in_space"


def test_nested_fit_is_stable_across_starting_points() -> None:
    d = _constructed(3)
    lags = tuple(range(0, 20, 4))
    fits = [
        SyntheticControl("y", "unit", "time", "T", 20, outcome_lags=lags, method="nested", placebo=False, seed=s).fit(d)
        for s in (1, 2, 3)
    ]
    for f in fits[1:]:
        np.testing.assert_allclose(f.weights.reindex(fits[0].weights.index), fits[0].weights, atol=1e-3)
    assert fits[0].v_weights is not None and fits[0].v_weights.sum() == pytest.approx(1.0)


def test_placebo_p_values_match_a_direct_loop() -> None:
    """Every unit in turn is treated, with all the others (the real one included) as donors."""
    d = _constructed(5)
    d.loc[(d["unit"] == "T") & (d["time"] >= 20), "y"] += 3.0
    r = SyntheticControl("y", "unit", "time", "T", 20).fit(d)
    ratios, gaps = {}, {}
    donors = [u for u in d["unit"].unique() if u != "T"]
    for j in donors:
        f = SyntheticControl("y", "unit", "time", j, 20, placebo=False).fit(d)
        ratios[j], gaps[j] = f.rmspe_ratio, f.headline.estimate
    expected = (1 + sum(v >= r.rmspe_ratio - 1e-12 for v in ratios.values())) / (1 + len(donors))
    assert r.rmspe_ratio_p_value == pytest.approx(expected)
    np.testing.assert_allclose(r.placebos.set_index("unit")["ratio"].reindex(donors), [ratios[j] for j in donors])
    all_gaps = np.array([*gaps.values(), r.headline.estimate])
    assert r.headline.p_value == pytest.approx(np.mean(np.abs(all_gaps) >= abs(r.headline.estimate) - 1e-12))


def test_synth_interval_inverts_the_mean_gap_test() -> None:
    """Removing tau from the site's post-period moves each placebo by tau times the site's weight in it,
    so the interval is exactly the effects the test keeps; p > 0.05 exactly when it holds 0."""
    d = _constructed(7, J=39)
    d.loc[(d["unit"] == "T") & (d["time"] >= 20), "y"] += 2.0
    r = SyntheticControl("y", "unit", "time", "T", 20).fit(d)
    assert np.isfinite(r.headline.ci_low) and np.isfinite(r.headline.ci_high)
    for tau in (
        r.headline.ci_low - 1e-6,
        r.headline.ci_low + 1e-6,
        r.headline.ci_high - 1e-6,
        r.headline.ci_high + 1e-6,
    ):
        shifted = d.copy()
        shifted.loc[(shifted["unit"] == "T") & (shifted["time"] >= 20), "y"] -= tau
        p_tau = SyntheticControl("y", "unit", "time", "T", 20).fit(shifted).headline.p_value
        assert (p_tau > 0.05) == (r.headline.ci_low <= tau <= r.headline.ci_high)
    for seed in range(15):
        d = _constructed(seed, J=39)
        d.loc[(d["unit"] == "T") & (d["time"] >= 20), "y"] += 3.0 * (seed % 5)
        row = SyntheticControl("y", "unit", "time", "T", 20).fit(d).headline
        assert (row.p_value > 0.05) == (row.ci_low <= 0 <= row.ci_high)


def test_synth_reports_the_p_value_floor() -> None:
    d = _constructed(1)
    few = d[d["unit"].isin(["T", "D00", "D01", "D02", "D03", "D04", "D05", "D06"])]  # 7 donors, like a small ICS
    r = SyntheticControl("y", "unit", "time", "T", 20).fit(few)
    assert r.min_p_value == pytest.approx(1 / 8) and r.headline.p_value >= r.min_p_value
    assert r.headline.ci_low == -np.inf and r.headline.ci_high == np.inf  # the test can never reject at 5%


def test_random_effects_matches_hand_computation() -> None:
    y, se = np.array([0.10, -0.05, 0.20, 0.02]), np.array([0.05, 0.08, 0.10, 0.04])
    w = 1 / se**2
    fixed = (w * y).sum() / w.sum()
    q = (w * (y - fixed) ** 2).sum()
    tau2 = max(0.0, (q - 3) / (w.sum() - (w**2).sum() / w.sum()))
    wr = 1 / (se**2 + tau2)
    r = random_effects(y, se, tau2_method="dl", interval="normal")
    assert r.tau2 == pytest.approx(tau2) and r.q == pytest.approx(q)
    assert r.estimate == pytest.approx((wr * y).sum() / wr.sum()) and r.std_error == pytest.approx(
        np.sqrt(1 / wr.sum())
    )
    assert r.i2 == pytest.approx(max(0.0, (q - 3) / q))
    same = random_effects(np.array([0.1, 0.1]), np.array([0.05, 0.05]), tau2_method="dl", interval="normal")
    assert same.tau2 == 0.0 and same.i2 == 0.0


def test_programme_view_from_results_files(tmp_path: Path) -> None:
    def write(sid: str, model: str, est: float, status: str = "evaluated", units: tuple[str, ...] = ()) -> None:
        (tmp_path / sid).mkdir()
        rows = (
            []
            if status != "evaluated"
            else [
                {
                    "outcome": "ae_attendances",
                    "term": "treated_x_post",
                    "estimate": est,
                    "std_error": 0.05,
                    "ci_low": est - 0.1,
                    "ci_high": None,
                    "p_value": 0.3,
                    "method": "did_twfe",
                    "inference": "placebo_in_space",
                    "scale": "log",
                    "n_treated": 1,
                    "n_control": 50,
                }
            ]
        )
        (tmp_path / sid / "results.json").write_text(
            json.dumps(
                {
                    "site_id": sid,
                    "site_name": f"<b>{sid}</b>",
                    "care_model": model,
                    "status": status,
                    "primary_outcome": "ae_attendances",
                    "intervention_start": "2015-04",
                    "coverage": {"treated_units": list(units or (sid,))},
                    "results": rows,
                    "growth": {"site_growth_pct": 5.0, "comparison_growth_pct": 8.0},
                }
            )
        )

    write("V01", "PACS", -0.05)
    write("V02", "PACS", 0.05)
    write("V03", "MCP", 0.01)
    write("V04", "MCP", 0.0, status="not evaluable")
    write("V05", "PACS", -0.05, units=("V01",))  # the same data as V01: must not be counted twice
    data = programme.load_programme(tmp_path)
    assert len(data.sites) == 5 and len(data.evaluated) == 4
    pooled = programme.pooled_by_care_model(data).set_index("care_model")
    assert pooled.loc["PACS", "sites"] == 2 and pooled.loc["PACS", "estimate"] == pytest.approx(0.0)
    assert pooled.loc["PACS", "site_ids"] == "V01 + V05, V02"
    g = programme.growth_table(data).set_index("care_model")
    assert g.loc["PACS", "difference_points"] == pytest.approx(-3.0)
    assert "&lt;b&gt;" not in programme_page.overview(data).html  # names are not shown raw; counts only
    assert "img" in programme_page.forest(data).html  # infinite interval ends are clipped, not a crash
    with pytest.raises(DataError, match="no results.json"):
        programme.load_programme(tmp_path / "empty")
