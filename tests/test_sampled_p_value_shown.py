"""Past the exhaustive size a placebo p-value ranks the site among a random subset of comparison units: the answer,
results.json and the page say how many and the p-value's Monte Carlo error (adversarial review of issue 22)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from evallib import evaluate_site
from evallib.reporting.findings import summary

from .conftest import simulated_panel, simulated_site

pytestmark = pytest.mark.integration


def test_a_sampled_p_value_comes_with_its_draws_and_monte_carlo_error() -> None:
    protocol, long = simulated_site(560, 60, 24, seed=4)  # 559 comparison units: past the 500 tried in turn
    protocol = replace(protocol, primary_estimator="synthetic_did")
    ev = evaluate_site(protocol, panel=simulated_panel(long))
    ans = ev.answer
    assert ans is not None and ans.estimator == "synthetic_did"
    assert ans.placebo_draws == 199 and 0 < ans.p_value_mc_error < 0.04
    saved = ans.to_json_dict()
    assert saved["placebo_draws"] == 199 and saved["p_value_mc_error"] == ans.p_value_mc_error
    text = re.sub(r"<[^>]+>", " ", str(summary(ev)))
    assert "199 randomly chosen comparison" in text and f"{ans.p_value_mc_error:.3f}" in text


def test_an_exhaustive_p_value_says_nothing_of_sampling() -> None:
    protocol, long = simulated_site(40, 60, 24, seed=4)
    ans = evaluate_site(replace(protocol, primary_estimator="synthetic_did"), panel=simulated_panel(long)).answer
    assert ans is not None and ans.p_value_mc_error == 0 and "p_value_mc_error" not in ans.to_json_dict()
