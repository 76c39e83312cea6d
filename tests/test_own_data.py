"""Evaluators' own files in every frequency, and rates kept apart from proportions, end to end.

One batch run (``evallib run``) over five sites on simulated files with a known injected effect:
monthly, quarterly and yearly counts (a 15% fall), a rate per 1,000 people whose populations grow
at different speeds (a 15% fall in the rate; counts alone would mislead), and a proportion (a fall
of 5 percentage points). Each must be evaluated, with its primary estimate on the right scale, a
95% interval that holds the truth, findings that describe the direction correctly, neutral words
for the units and the evaluator's own data attribution.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.errors import ParamsError
from evallib.evaluation.site.outcome import seasonal_harmonics
from evallib.methods.simulate import simulate_panel
from evallib.pipeline.batch import run_batch
from evallib.protocol.params import SiteProtocol

from .conftest import make_project

TRUE_LOG = math.log(0.85)  # a 15% fall
TRUE_POINTS = -5.0  # five percentage points lower
ATTRIBUTION = "Simulated data made by the evallib test suite."

SITE = """site_id: "{sid}"
site_name: "Own {sid} data"
site_type: "other"
care_model: "other"
membership_confidence: "high"
treated_units: ["U000"]
intervention_start: "{start}"
primary_outcome: "{outcome}"
expected_direction: "{direction}"
pre_period_start: "{pre_start}"
pre_period_end: "{pre_end}"
post_period_end: "{post_end}"
comparison_pool: "all_eligible"
type1_comparators_only: false
min_pre_periods: {min_pre}
min_post_periods: 3
data_source: {source}
"""


def _counts(freq: str) -> pd.DataFrame:
    """Monthly simulated counts (60 areas from 2003, the effect from 2012), summed to ``freq``."""
    sim = simulate_panel(60, 192, start_period=108, effect=TRUE_LOG, first_month="2003-01", seed=11)
    sim = sim[["unit", "period", "value"]]
    if freq == "monthly":
        sim = sim[sim["period"] >= "2008-01"]
        sim["period"] = sim["period"].dt.strftime("%Y-%m")
        return sim
    key = sim["period"].dt.to_period("Q" if freq == "quarterly" else "Y").astype(str)
    return sim.groupby(["unit", key])["value"].sum().reset_index()


def _rate_panel(seed: int = 7) -> pd.DataFrame:
    """Monthly admissions and population; the site's population grows 4% a year, its rate falls 15%."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2008-01", "2018-12", freq="MS")
    t = np.arange(len(months)) / 12
    rows = []
    for i in range(60):
        growth = 0.04 if i == 0 else rng.normal(0.0, 0.01)
        pop = rng.uniform(150_000, 500_000) * np.exp(growth * t)
        noise = rng.normal(0, 0.02, len(months))
        rate = 0.002 * np.exp(0.06 * np.cos(2 * np.pi * (months.month - 1) / 12) + noise)
        rate = rate * np.where((i == 0) & (months >= "2012-01"), 0.85, 1.0)
        rows.append(
            pd.DataFrame(
                {
                    "unit": f"U{i:03d}",
                    "month": months.strftime("%Y-%m"),
                    "admissions": rng.poisson(pop * rate),
                    "population": pop.round(),
                }
            )
        )
    return pd.concat(rows)


def _proportion_panel(seed: int = 8) -> pd.DataFrame:
    """Monthly attendances and those seen within four hours; the site's share falls 5 points."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2008-01", "2018-12", freq="MS")
    rows = []
    for i in range(60):
        level = rng.normal(88, 3)
        n = rng.poisson(4000, len(months))
        share = level + rng.normal(0, 0.8, len(months)) + np.where((i == 0) & (months >= "2012-01"), TRUE_POINTS, 0.0)
        rows.append(
            pd.DataFrame(
                {
                    "unit": f"U{i:03d}",
                    "month": months.strftime("%Y-%m"),
                    "attendances": n,
                    "within_4h": rng.binomial(n, np.clip(share, 1, 99) / 100),
                }
            )
        )
    return pd.concat(rows)


CASES = {
    # site: (frequency, outcome, scale of the primary estimate, truth, expected direction, words of the finding)
    "MON": ("monthly", "admissions", "log", TRUE_LOG, "decrease", "the direction the protocol hoped for"),
    "QTR": ("quarterly", "admissions", "log", TRUE_LOG, "decrease", "the direction the protocol hoped for"),
    "YRS": ("yearly", "admissions", "log", TRUE_LOG, "decrease", "the direction the protocol hoped for"),
    "RATE": ("monthly", "admissions", "log", TRUE_LOG, "decrease", "the direction the protocol hoped for"),
    "PROP": ("monthly", "within_4h", "percentage_points", TRUE_POINTS, "increase", "the opposite of the increase"),
}


def _write_sites(root: Path) -> None:
    data, params = root / "data", root / "params" / "other"
    data.mkdir(exist_ok=True)
    params.mkdir(parents=True, exist_ok=True)

    def src(f: str, freq: str) -> str:
        return (
            f'{{path: "data/{f}", unit: "unit", period: "period", frequency: "{freq}", outcomes: ["admissions"], '
            f'attribution: "{ATTRIBUTION}"}}'
        )

    windows = {
        "monthly": ("2008-01", "2011-12", "2012-01", "2016-12", 12),
        "quarterly": ("2008-01", "2011-12", "2012-01", "2016-12", 12),
        "yearly": ("2003-01", "2011-12", "2012-01", "2018-12", 6),
    }
    for sid, freq in (("MON", "monthly"), ("QTR", "quarterly"), ("YRS", "yearly")):
        _counts(freq).rename(columns={"value": "admissions"}).to_csv(data / f"{sid}.csv", index=False)
        pre_start, pre_end, start, post_end, min_pre = windows[freq]
        (params / f"{sid}.yaml").write_text(
            SITE.format(
                sid=sid,
                start=start,
                outcome="admissions",
                direction="decrease",
                pre_start=pre_start,
                pre_end=pre_end,
                post_end=post_end,
                min_pre=min_pre,
                source=src(f"{sid}.csv", freq),
            )
        )
    _rate_panel().to_csv(data / "rate.csv", index=False)
    rate = (
        f'{{path: "data/rate.csv", unit: "unit", period: "month", outcomes: ["admissions"], '
        f'denominator: "population", measure: "rate", per: 1000, unit_label: "area", attribution: "{ATTRIBUTION}"}}'
    )
    _proportion_panel().to_csv(data / "prop.csv", index=False)
    prop = (
        f'{{path: "data/prop.csv", unit: "unit", period: "month", outcomes: ["within_4h"], '
        f'denominator: "attendances", measure: "proportion", attribution: "{ATTRIBUTION}"}}'
    )
    for sid, outcome, direction, source in (
        ("RATE", "admissions", "decrease", rate),
        ("PROP", "within_4h", "increase", prop),
    ):
        (params / f"{sid}.yaml").write_text(
            SITE.format(
                sid=sid,
                start="2012-01",
                outcome=outcome,
                direction=direction,
                pre_start="2008-01",
                pre_end="2011-12",
                post_end="2016-12",
                min_pre=12,
                source=source,
            )
        )


@pytest.fixture(scope="module")
def own_data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("own"), [], programme=False)
    _write_sites(root)
    result = run_batch(None, root=root, progress=False)
    assert result.exit_code == 0, [(r.site_id, r.status, r.reason) for r in result.runs]
    return root


@pytest.mark.e2e
@pytest.mark.parametrize("sid", list(CASES))
def test_own_data_in_any_frequency_recovers_the_injected_effect(own_data_run: Path, sid: str) -> None:
    freq, outcome, scale, truth, expected, words = CASES[sid]
    res = json.loads((own_data_run / "outputs" / sid / "results.json").read_text())
    assert res["status"] == "evaluated", res["reason"]
    answer = res["answer"]
    assert answer["scale"] == scale  # a rate per head is proportional; a share is in percentage points
    assert answer["ci_low"] < truth < answer["ci_high"]  # the 95% interval holds the truth
    assert answer["conclusion"] == "decrease" and answer["p_value"] < 0.05
    page = (own_data_run / "outputs" / "site" / f"{sid}.html").read_text()
    summary = re.search(r'<section[^>]*class="summary"[^>]*>.*?</section>', page, re.S).group(0)
    assert words in summary  # the finding names the direction correctly
    assert ("percentage points lower" in summary) == (scale == "percentage_points")
    assert "% lower" in summary or scale == "percentage_points"
    assert "comparison trusts" not in page and "site's trusts" not in page and "comparable areas" in page
    assert ATTRIBUTION in page and "NHS England" not in page  # the evaluator's own attribution
    period = {"monthly": "month", "quarterly": "quarter", "yearly": "year"}[freq]
    assert f"Pre-period {period}s in the data" in page


@pytest.mark.e2e
def test_yearly_data_fit_no_seasonality_and_quarterly_one_pair(own_data_run: Path) -> None:
    assert [seasonal_harmonics(p) for p in (12, 4, 1)] == [2, 1, 0]
    yearly = (own_data_run / "outputs" / "site" / "YRS.html").read_text()
    assert "yearly data have no seasonal cycle to model" in yearly
    quarterly = (own_data_run / "outputs" / "site" / "QTR.html").read_text()
    assert "one Fourier pair" in quarterly and "effect at quarter 4" in quarterly


@pytest.mark.unit
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"denominator": "population"}, "a denominator makes the outcome a rate or a proportion"),
        ({"measure": "rate"}, "without a denominator"),
        ({"denominator": "population", "measure": "proportion", "per": 1000}, "For a rate"),
    ],
)
def test_a_denominator_must_say_whether_it_makes_a_rate_or_a_proportion(source: dict, message: str) -> None:
    base = {"path": "data/x.csv", "unit": "unit", "period": "month", "outcomes": ["admissions"]}
    mapping = {
        "site_id": "X1",
        "site_name": "x",
        "site_type": "other",
        "care_model": "other",
        "membership_confidence": "high",
        "treated_units": ["U000"],
        "intervention_start": "2012-01",
        "primary_outcome": "admissions",
        "expected_direction": "decrease",
        "pre_period_start": "2008-01",
        "pre_period_end": "2011-12",
        "post_period_end": "2016-12",
        "data_source": base | source,
    }
    with pytest.raises(ParamsError, match=message):
        SiteProtocol.from_mapping(mapping)
