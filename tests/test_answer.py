"""One answer per site: the primary estimate leads, the other methods are compared with it, reasons are given,
a volatile site leads with the studentized test, and the calibration study picks the estimator protocols lead with."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib import SiteProtocol, evaluate_site, load_params
from evallib.evaluation.site.answer import conclusion
from evallib.evaluation.site.volatile import WITHHELD, site_noise_percentile, withhold
from evallib.evaluation.studies.calibration import designs, fake_site_results, summarise
from evallib.methods.base.results import Estimate
from evallib.protocol.generator import chosen_estimators, protocol_for
from evallib.sources.panel import Panel
from evallib.sources.registry import load_registry

from .conftest import ROOT, simulated_panel, simulated_site

pytestmark = pytest.mark.integration


def _row(est: float, lo: float, hi: float, p: float, scale: str = "log") -> Estimate:
    return Estimate("y", "t", est, 0.1, lo, hi, p, "m", "placebo_in_space", scale, 1, 50)


def test_conclusion_reads_ratios_and_percents_on_the_log_scale() -> None:
    assert conclusion(_row(-0.1, -0.2, -0.01, 0.01)) == "decrease"
    assert conclusion(_row(0.8, 0.7, 0.95, 0.01, "rate_ratio")) == "decrease"  # a ratio below 1 is a fall
    assert conclusion(_row(12.0, 2.0, 20.0, 0.02, "percent")) == "increase"
    assert conclusion(_row(-0.1, -0.3, 0.1, 0.4)) == "no clear effect"
    assert conclusion(withhold(_row(-0.1, -0.2, -0.01, 0.01))) == "unknown"


def test_a_clear_effect_leads_with_the_primary_estimate_and_says_whether_it_was_hoped_for() -> None:
    protocol, panel = _simulated_site(math.log(0.7), volatility=1.0)
    ev = evaluate_site(protocol, panel=panel)
    ans = ev.answer
    assert ans.estimator == "synthetic_did" and ans.conclusion == "decrease" and ans.direction == "hoped for"
    assert {v.name for v in ans.others} >= {
        "did",
        "did_studentized",
        "rate_ratio",
        "controlled_its",
        "synthetic_control",
    }
    assert all(v.why for v in ans.disagreeing) and all(not v.why for v in ans.agreeing)
    data = ev.to_json_dict()["answer"]
    assert data["estimator"] == "synthetic_did" and data["direction"] == "hoped for" and data["std_error"] > 0


def test_a_null_gives_what_the_design_could_have_detected() -> None:
    protocol, panel = _simulated_site(0.0, volatility=1.0, seed=11)
    ev = evaluate_site(protocol, panel=panel)
    ans = ev.answer
    assert ans.conclusion == "no clear effect" and ans.direction == "unclear"
    assert 0 < ans.mde < 1  # a finite effect (log scale) with 89 comparison units


def test_a_volatile_site_leads_with_the_studentized_test_and_withholds_plain_intervals() -> None:
    protocol, panel = _simulated_site(0.0, volatility=4.0, seed=5)
    ev = evaluate_site(protocol, panel=panel)
    a = ev.primary
    assert a.volatile and a.noise_percentile >= 90 and a.primary_estimator == "did_studentized"
    t = ev.tidy()
    published = t[t["inference"] != WITHHELD]
    plain = t[(t["inference"] == "placebo_in_space") & t["method"].isin(["did_twfe", "did_synthetic"])]
    assert plain.empty and (t["inference"] == WITHHELD).any()
    assert published.query("method == 'did_twfe'")["inference"].tolist() == ["placebo_studentized"]
    assert any("noisier than" in f for f in ev.flags)
    assert ev.answer.estimator == "did_studentized"


def test_site_noise_percentile_of_several_units_compares_sets_not_units() -> None:
    from evallib.methods.inference.volatility import VolatilityRank

    scale = pd.Series(np.r_[[2.0, 2.0, 2.0], np.linspace(1, 3, 100)], index=[f"U{i}" for i in range(103)])
    vol = VolatilityRank(("U0", "U1", "U2"), (1, 1, 1), (50.0, 50.0, 50.0), (1.0, 1.0, 1.0), 100, scale)
    assert site_noise_percentile(vol, seed=1) == pytest.approx(50, abs=8)  # the mean of three medians: middling


def test_calibration_study_on_real_data_and_the_generator_applies_its_choice(tmp_path: Path) -> None:
    protocols = [load_params(ROOT / "params" / "vanguards" / f"{s}.yaml") for s in ("V01", "V04", "V30", "V42")]
    found = designs(protocols)
    assert [len(d.sites) for d in found] == [2, 1]  # V01 + V04 share a design; V30 (UEC) starts later; V42 is out
    results = fake_site_results(found[0], max_fake_sites=4)
    assert set(results["estimator"]) >= {"did", "synthetic_did", "did_cr1", "own_series_its"}
    summary = summarise(results, found)
    assert (summary["fake_sites"] == 4).all() and summary["chosen"].sum() == 1
    assert not summary.loc[summary["chosen"], "estimator"].isin(["did_cr1", "own_series_its"]).any()
    summary.to_csv(tmp_path / "calibration.csv", index=False)
    choice = chosen_estimators(tmp_path)
    assert set(choice) == {("vanguard", "mar_commissioner_2008_2019", "nonelective_admissions_per_head")}
    v01 = next(s for s in load_registry() if s.site_id == "V01")
    assert protocol_for(v01, choice)["primary_estimator"] == next(iter(choice.values()))
    assert protocol_for(v01, {})["primary_estimator"] == "did"


def _simulated_site(effect: float, *, volatility: float | None = None, seed: int = 3) -> tuple[SiteProtocol, Panel]:
    protocol, long = simulated_site(90, 60, 24, effect=effect, treated_volatility=volatility, seed=seed)
    return protocol, simulated_panel(long)
