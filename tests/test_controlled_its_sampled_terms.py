"""Controlled ITS: whether its fake sites are sampled follows the one rule every placebo test shares
(``permutation.sets_are_sampled``, on the comparison units the fake sites come from); every term whose p-value is
sampled states its Monte Carlo error (result, plain-text summary, page); and the method text says what was done in
each of its three cases: random sets, every set of as many units, every unit in turn (issue 22, review)."""

from __future__ import annotations

import re
from dataclasses import replace

import pandas as pd
import pytest

from evallib import evaluate_site
from evallib.methods.inference import permutation
from evallib.methods.inference.permutation import mc_error
from evallib.methods.its import controlled
from evallib.methods.its.controlled import ControlledITS
from evallib.methods.simulate import simulate_nhs_panel
from evallib.reporting.sections import its
from evallib.reporting.templating import render

from .conftest import simulated_panel, simulated_site

START = pd.Timestamp("2015-04-01")  # period 48 of simulate_nhs_panel's months


def _fit(n_units: int, n_treated: int) -> controlled.ControlledITSResult:
    d = simulate_nhs_panel(n_units, 72, n_treated=n_treated, start_period=48, effect=-0.1, seed=4)
    return ControlledITS("value", "unit", "period", "treated", start=START, horizons=(12,)).fit(d)


def _text(html: object) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", str(html)))


def test_sampled_or_exhaustive_is_decided_by_the_shared_rule_on_the_comparison_units(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int, int]] = []

    def always(n: int, k: int, n_draws: int) -> bool:
        calls.append((n, k, n_draws))
        return permutation.sets_are_sampled(n, k, 0)  # any several-unit test sampled, whatever C(n, k)

    monkeypatch.setattr(controlled, "sets_are_sampled", always)
    r = _fit(9, 3)  # 6 comparison units: 20 distinct fake sites, exhaustive by the real rule
    assert calls and set(calls) == {(6, 3, 999)}
    assert r.placebo_draws == 999 and len(r.placebo_estimates) == 1000


def test_every_sampled_term_states_its_monte_carlo_error() -> None:
    r = _fit(40, 3)  # 37 comparison units: C(37, 3) = 7,770 fake sites, 999 drawn
    assert r.placebo_draws == 999 and len(r.terms) > 2
    assert r.p_value_mc_errors == tuple(mc_error(row.p_value, 999) for row in r.rows)
    assert r.term_mc_errors() == {row.term: mc_error(row.p_value, 999) for row in r.rows}
    assert r.p_value_mc_error == r.term_mc_errors()["mean_post_effect"]
    text = r.summary()
    assert "p_value_mc_error" in text and "for every term" in text
    level = next(line for line in text.splitlines() if line.strip().startswith("level_change"))
    assert f"{r.term_mc_errors()['level_change']:.4g}" in level
    assert "<th>p_value_mc_error</th>" in r._repr_html_()  # the notebook's table too


def test_an_exhaustive_fit_states_no_monte_carlo_error() -> None:
    for r in (_fit(9, 3), _fit(12, 1)):
        assert r.placebo_draws == 0 and r.term_mc_errors() == {}
        assert set(r.p_value_mc_errors) == {0.0}
        assert "Monte Carlo" not in r.summary() and "p_value_mc_error" not in r.summary()
        assert "p_value_mc_error" not in r._repr_html_()


def _branch(**kwargs: object) -> str:
    base = {"period_word": "month", "seasonal": "", "horizons": "", "table": "", "diagnostics": [], "figures": []}
    return _text(render("its.html.j2", **(base | kwargs)))


def test_the_method_text_renders_each_of_its_three_cases() -> None:
    line = "A&E, controlled interrupted time series: p-value from 999 random placebo assignments."
    sampled = _branch(sampled=[line], several=True)
    assert "random sets of as many comparison units as the site has" in sampled and "999 random" in sampled
    assert "every set of as many" not in sampled and "every comparison unit in turn" not in sampled
    every_set = _branch(sampled=[], several=True)
    assert "every set of as many comparison units as the site has (few enough to try each once)" in every_set
    assert "random" not in every_set and "every comparison unit in turn" not in every_set
    every_unit = _branch(sampled=[], several=False)
    assert "every comparison unit in turn as a placebo site" in every_unit
    assert "random" not in every_unit and "every set of as many" not in every_unit


@pytest.mark.integration
def test_a_site_with_few_fake_sites_says_every_set_was_tried() -> None:
    protocol, long = simulated_site(9, 60, 24, seed=4)  # 3 of 9 units treated: C(6, 3) = 20 fake sites
    protocol = replace(protocol, treated_units=("T000", "T001", "T002"), primary_estimator="did")
    ev = evaluate_site(protocol, panel=simulated_panel(long))
    assert ev.primary is not None and ev.primary.controlled is not None
    assert ev.primary.controlled.placebo_draws == 0
    text = _text(its(ev))
    assert "every set of as many comparison units as the site has" in text
    assert "every comparison unit in turn" not in text and "Monte Carlo error" not in text


@pytest.mark.integration
def test_a_sampled_site_page_states_every_controlled_rows_error() -> None:
    protocol, long = simulated_site(60, 60, 24, seed=4)  # 3 of 60 treated: C(57, 3) = 29,260 fake sites
    protocol = replace(protocol, treated_units=("T000", "T001", "T002"), primary_estimator="did")
    ev = evaluate_site(protocol, panel=simulated_panel(long))
    c = ev.primary.controlled if ev.primary is not None else None
    assert c is not None and c.placebo_draws == 999
    text = _text(its(ev))
    assert "controlled interrupted time series: p-value from 999 random placebo assignments" in text
    assert "its other rows (the same 999 random placebo assignments): Monte Carlo error level change" in text
    errors = c.term_mc_errors()
    for term in ("level_change", "slope_change"):
        assert f"{errors[term]:.3f}" in text
