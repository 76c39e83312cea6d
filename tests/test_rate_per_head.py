"""Emergency admissions per head as the vanguard and ICS primary measure: the bundled rate outcome, the protocols,
the analysis on the log scale with counts kept as the secondary analysis, and the calibration study on the rate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib import evaluate_site, load_params
from evallib.evaluation.site.coverage import analysis_frame, load_source
from evallib.evaluation.studies.calibration import designs, fake_site_results
from evallib.protocol.params import AnalysisSpec
from evallib.sources.bundled import RATE_OUTCOMES, load_bundled
from evallib.sources.populations import monthly_populations

ROOT = Path(__file__).resolve().parents[1]
RATE = "nonelective_admissions_per_head"
COUNTS = "nonelective_admissions"


def test_rate_outcome_is_the_counts_over_the_months_population() -> None:
    panel = load_bundled("mar_commissioner_2008_2019")
    assert RATE_OUTCOMES == {RATE: 1000}
    rate = panel.data[panel.data["outcome"] == RATE].set_index(["unit", "period"])
    counts = panel.data[panel.data["outcome"] == COUNTS].set_index(["unit", "period"])
    assert rate["value"].equals(counts.loc[rate.index, "value"])
    assert rate.index.get_level_values("period").min() == pd.Timestamp("2013-04-01")  # CCGs only, no PCTs
    row = rate.loc[("05C", pd.Timestamp("2016-05-01"))]
    assert row["denominator"] == pytest.approx(monthly_populations(["2016-05"], ["05C"]).iloc[0, 0])
    # Newcastle's two CCGs have no population: Gateshead's months before their merger are dropped with them.
    units = set(rate.index.get_level_values("unit"))
    assert not {"00F", "00G", "00H"} & units and "13T" in units


def test_vanguard_leads_with_admissions_per_head_and_keeps_counts_unchanged_as_secondary() -> None:
    per_head = load_params(ROOT / "params" / "vanguards" / "V04.yaml")
    assert per_head.primary_outcome == RATE and per_head.secondary_outcomes == (COUNTS,)
    ev = evaluate_site(per_head)
    assert ev.primary.measure == "rate" and ev.primary.per == 1000
    assert "per 1,000 residents" in ev.primary.label
    counts_first = dataclasses.replace(per_head, primary_outcome=COUNTS, secondary_outcomes=())
    before = evaluate_site(counts_first).tidy().query("outcome == @COUNTS and method == 'did_twfe'")
    after = ev.tidy().query("outcome == @COUNTS and method == 'did_twfe'")
    assert after["estimate"].iloc[0] == pytest.approx(before["estimate"].iloc[0], abs=1e-12)
    rate_row = ev.tidy().query("outcome == @RATE and method == 'did_twfe'").iloc[0]
    assert rate_row["scale"] == "log" and abs(rate_row["estimate"] - after["estimate"].iloc[0]) < 0.05


def test_calibration_treats_a_rate_as_proportional_not_a_percentage() -> None:
    protocols = [load_params(ROOT / "params" / "vanguards" / f"{s}.yaml") for s in ("V01", "V04")]
    (design,) = designs(protocols)
    assert design.outcome == RATE
    results = fake_site_results(design, estimators=("did",), max_fake_sites=3)
    # The DiD of log rates in a balanced panel, by hand: the fake site's change in mean log rate minus the pool's.
    p = design.protocol
    spec = AnalysisSpec(RATE, p.data_source, p.treated_units, True)
    values, denom, cov = analysis_frame(p, load_source(p.data_source), spec)
    pool = list(cov.comparators)
    log_rate = np.log(values[pool] / denom[pool])
    post = log_rate.index >= p.windows.post_start
    change = log_rate[post].mean() - log_rate[~post].mean()
    for r in results.itertuples():
        by_hand = change[r.fake_site] - change.drop(r.fake_site).mean()
        assert r.estimate == pytest.approx(by_hand, abs=1e-9)


def test_only_a_site_without_populations_for_its_window_keeps_counts_as_primary() -> None:
    counts_first = []
    for path in sorted((ROOT / "params").glob("*/*.yaml")):
        p = load_params(path)
        if p.data_source == "mar_commissioner_2008_2019" and p.primary_outcome == COUNTS:
            counts_first.append(p.site_id)
            assert "no resident population" in p.notes
    assert counts_first == ["V25"]  # Newcastle Gateshead 13T: Newcastle's CCGs have no population before 2015
