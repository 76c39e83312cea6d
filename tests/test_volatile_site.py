"""The volatile-site rule in a whole site analysis: no plain placebo p-value or interval is published for a site
much noisier than its comparators, the controlled ITS's terms included."""

from __future__ import annotations

import math

import pytest

from evallib.evaluation.site.evaluate import evaluate_site
from evallib.evaluation.site.volatile import WITHHELD
from evallib.methods.simulate import simulate_nhs_panel
from evallib.protocol.params import SiteProtocol
from evallib.sources.panel import validate_panel

pytestmark = pytest.mark.integration


def _evaluate(treated_volatility: float):  # noqa: ANN202 - a SiteEvaluation
    frame = simulate_nhs_panel(
        141, 60, start_period=24, treated_volatility=treated_volatility, noise_spread=0.3, first_month="2013-04", seed=5
    )
    panel = validate_panel(
        frame[["unit", "period", "value"]].assign(outcome="nonelective_admissions"), "monthly", source="sim"
    )
    protocol = SiteProtocol.from_mapping(
        {
            "site_id": "SIM",
            "site_name": "Simulated site",
            "site_type": "vanguard",
            "care_model": "PACS",
            "membership_confidence": "high",
            "treated_units": ["T000"],
            "intervention_start": "2015-04",
            "primary_outcome": "nonelective_admissions",
            "expected_direction": "decrease",
            "pre_period_start": "2013-04",
            "pre_period_end": "2015-03",
            "post_period_end": "2018-03",
            "data_source": "mar_commissioner_2008_2019",
            "primary_estimator": "synthetic_did",
        }
    )
    return evaluate_site(protocol, panel=panel)


def test_a_volatile_site_publishes_no_plain_placebo_interval() -> None:
    ev = _evaluate(treated_volatility=4.0)
    a = ev.primary
    assert a.volatile and a.main.name == "did_studentized"
    assert not [r for r in ev.rows if r.inference == "placebo_in_space"]
    assert a.controlled is not None and all(r.inference == WITHHELD for r in a.controlled.rows)
    assert all(math.isnan(r.p_value) and math.isnan(r.ci_low) for r in a.controlled.rows)
    studentized = a.headline["did_studentized"].row
    assert math.isfinite(studentized.ci_low) and math.isfinite(studentized.p_value)


def test_a_quiet_site_publishes_every_placebo_interval() -> None:
    ev = _evaluate(treated_volatility=0.7)
    a = ev.primary
    assert not a.volatile and a.main.name == "synthetic_did"
    assert not [r for r in ev.rows if r.inference == WITHHELD]
    assert all(r.inference == "placebo_in_space" and math.isfinite(r.p_value) for r in a.controlled.rows)
