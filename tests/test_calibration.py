"""The calibration study's summary: the rejection rate among the noisiest fifth of fake sites."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.site.coverage import analysis_frame, load_source
from evallib.evaluation.studies.calibration import Design, designs, fake_site_results, noisiest, summarise
from evallib.methods.did.twfe import DiD
from evallib.protocol.params import SiteProtocol, load_params
from tests.conftest import ROOT


def _design(name: str = "D") -> Design:
    protocol = SiteProtocol.from_mapping(
        {
            "site_id": "X1",
            "site_name": "A site",
            "site_type": "vanguard",
            "care_model": "PACS",
            "membership_confidence": "high",
            "treated_units": ["12F"],
            "intervention_start": "2015-04",
            "primary_outcome": "nonelective_admissions",
            "expected_direction": "decrease",
            "pre_period_start": "2013-04",
            "pre_period_end": "2015-03",
            "post_period_end": "2018-03",
            "data_source": "mar_commissioner_2008_2019",
        }
    )
    return Design(name, "vanguard", "mar_commissioner_2008_2019", "nonelective_admissions", protocol, ("X1",))


def _results(p_values: dict[str, list[float]], noise: list[float], design: str = "D") -> pd.DataFrame:
    rows = [
        (design, f"U{i}", est, 0.0, -1.0, 1.0, p, noise[i]) for est, ps in p_values.items() for i, p in enumerate(ps)
    ]
    return pd.DataFrame(
        rows, columns=["design", "fake_site", "estimator", "estimate", "ci_low", "ci_high", "p_value", "noise"]
    )


@pytest.mark.unit
def test_rejection_rate_among_the_noisiest_fifth_of_fake_sites() -> None:
    # Ten fake sites; the two noisiest (U3, U7) are the only ones the plain test rejects.
    noise = [1.0, 2.0, 3.0, 9.0, 4.0, 5.0, 6.0, 10.0, 7.0, 8.0]
    plain = [0.5, 0.5, 0.5, 0.01, 0.5, 0.5, 0.5, 0.02, 0.5, 0.5]
    table = summarise(_results({"did": plain, "did_studentized": [0.5] * 10}, noise), [_design()])
    did = table.set_index("estimator").loc["did"]
    assert did["rejection_rate"] == pytest.approx(0.2)
    assert did["rejection_rate_noisiest_fifth"] == pytest.approx(1.0)
    assert did["noisiest_fifth_mc_se"] == pytest.approx(math.sqrt(0.05 * 0.95 / 2))
    assert table.set_index("estimator").loc["did_studentized", "rejection_rate_noisiest_fifth"] == 0.0


@pytest.mark.unit
def test_noisiest_fifth_is_taken_within_each_design_and_rounds_up() -> None:
    a = _results({"did": [0.5] * 6}, [1, 2, 3, 4, 5, 6], design="A")  # ceil(6 / 5) = 2 sites
    b = _results({"did": [0.5] * 3}, [30, 20, 10], design="B")  # ceil(3 / 5) = 1 site
    both = pd.concat([a, b], ignore_index=True)
    flag = noisiest(both)
    assert sorted(both.loc[flag & both["design"].eq("A"), "fake_site"]) == ["U4", "U5"]
    assert list(both.loc[flag & both["design"].eq("B"), "fake_site"]) == ["U0"]


@pytest.mark.unit
def test_without_noise_the_noisy_fifth_columns_are_missing_values() -> None:
    results = _results({"did": [0.01, 0.5, 0.5, 0.5, 0.5]}, [1, 2, 3, 4, 5]).drop(columns="noise")
    row = summarise(results, [_design()]).iloc[0]
    assert math.isnan(row["rejection_rate_noisiest_fifth"]) and math.isnan(row["noisiest_fifth_mc_se"])
    assert row["rejection_rate"] == pytest.approx(0.2)


@pytest.mark.integration
def test_fake_sites_carry_the_pre_period_noise_of_the_studentized_test() -> None:
    """On the bundled data, a fake site's ``noise`` is the scale the studentized DiD gives it."""
    design = designs([load_params(ROOT / "params" / "vanguards" / "V01.yaml")])[0]
    results = fake_site_results(design, estimators=("did",), max_fake_sites=2)
    assert len(results) == 2 and results["noise"].gt(0).all()
    p = design.protocol
    values, denom, cov = analysis_frame(p, load_source(p.data_source), p.primary_outcome)
    cols = list(cov.comparators)
    pool = values[cols] if denom is None else 1000 * values[cols] / denom[cols]  # admissions per 1,000 residents
    fake = results["fake_site"].iloc[0]
    long = pool.stack().rename("value").reset_index()
    long.columns = ["period", "unit", "value"]
    long["treated"] = (long["unit"] == fake).astype(int)
    long["post"] = (long["period"] >= p.windows.post_start).astype(int)
    did = DiD("value", "unit", "period", "treated", "post", transform="log", inference="placebo_studentized").fit(long)
    assert np.isclose(results["noise"].iloc[0], did.volatility.unit_scale[fake])


@pytest.mark.unit
def test_the_calibration_page_reads_the_committed_study_and_marks_each_designs_choice(tmp_path: Path) -> None:
    from evallib.reporting.calibration_page import calibration_context

    ctx = calibration_context(ROOT)
    assert ctx is not None
    summary = pd.read_csv(ROOT / "params" / "calibration.csv")
    assert len(ctx["designs"]) == summary["design"].nunique()
    for d in ctx["designs"]:  # one chosen estimator per design, and it holds its size
        chosen = [r for r in d["rows"] if r["chosen"]]
        assert len(chosen) == 1 and chosen[0]["holds"], d["name"]
    assert calibration_context(tmp_path) is None  # no study: no page, no link
