"""An event study whose placebo assignments are sampled (several treated units) states every event time's Monte
Carlo error beside its p-value, not the headline's alone: each p-value ranks the site among the same random draws."""

from __future__ import annotations

import numpy as np
import pytest

from evallib.methods.did.event_study import EventStudy
from evallib.methods.inference.permutation import mc_error
from evallib.methods.simulate import simulate_nhs_panel


@pytest.fixture(scope="module")
def sampled():
    d = simulate_nhs_panel(40, 48, n_treated=4, start_period=36, seed=9)
    d["bin"] = d.groupby("unit").cumcount() // 12 - 3
    binned = d.groupby(["unit", "bin"], as_index=False).agg(value=("value", "mean"), treated=("treated", "first"))
    return EventStudy(
        "value", "unit", "bin", "treated", start=0, transform="log", inference="placebo_in_space", n_draws=199
    ).fit(binned)


def test_every_event_time_of_a_sampled_event_study_has_its_own_monte_carlo_error(sampled) -> None:
    assert sampled.placebo_draws == 199
    errors = sampled.term_mc_errors()
    assert set(errors) == {r.term for r in sampled.rows} and len(errors) > 1
    for r in sampled.rows:
        assert errors[r.term] == pytest.approx(mc_error(r.p_value, 199))
    assert errors[sampled.headline.term] == pytest.approx(sampled.p_value_mc_error)


def test_the_summary_shows_each_event_times_error_beside_its_p_value(sampled) -> None:
    text = sampled.summary()
    assert "p_value_mc_error" in text and "for every term" in text
    assert "p_value_mc_error" in sampled._repr_html_()


def test_an_exhaustive_event_study_states_no_monte_carlo_error() -> None:
    d = simulate_nhs_panel(20, 48, n_treated=1, start_period=36, seed=3)
    d["bin"] = d.groupby("unit").cumcount() // 12 - 3
    binned = d.groupby(["unit", "bin"], as_index=False).agg(value=("value", "mean"), treated=("treated", "first"))
    r = EventStudy("value", "unit", "bin", "treated", start=0, transform="log", inference="placebo_in_space").fit(
        binned
    )
    assert r.placebo_draws == 0 and r.term_mc_errors() == {} and "p_value_mc_error" not in r.summary()


@pytest.mark.integration
def test_a_sampled_site_page_states_the_event_study_leads_joint_tests_error() -> None:
    import re
    from dataclasses import replace

    from evallib import evaluate_site
    from evallib.reporting.sections import did

    from .conftest import simulated_panel, simulated_site

    protocol, long = simulated_site(60, 60, 24, seed=4)  # 3 of 60 treated: the event study's placebo is sampled
    protocol = replace(protocol, treated_units=("T000", "T001", "T002"), primary_estimator="did")
    ev = evaluate_site(protocol, panel=simulated_panel(long))
    es = ev.primary.event_study if ev.primary is not None else None
    assert es is not None and es.placebo_draws > 0 and np.isfinite(es.pretrend.p_value)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", str(did(ev))))
    error = mc_error(es.pretrend.p_value, es.placebo_draws)
    assert f"event-study leads (joint test): p-value from {es.placebo_draws:,} random placebo assignments" in text
    assert f"{error:.3f}" in text
