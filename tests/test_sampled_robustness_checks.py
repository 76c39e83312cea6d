"""A robustness check whose own placebo test ranks the re-fit among random assignments (several treated units; a
staggered site's start dates given to random units) says so: results.json's ``robustness.checks`` entry carries
``placebo_draws`` and ``p_value_mc_error`` and its detail (the page's words too) states them, in the short form the
method text uses (``sampling.sampled_text``). An exhaustive check's entry and words are unchanged (review of issue 22).
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from evallib import evaluate_site
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.evaluation.site.sampling import sampled_text
from evallib.evaluation.site.verdict import Check
from evallib.methods.inference.permutation import mc_error
from evallib.reporting.robustness_section import robustness

from .conftest import simulated_panel, simulated_site

#: The checks that re-fit (or read) a sampled placebo test on a several-treated site; leave-one-out gives point
#: estimates and the synthetic control ranks one joined series among single donors (exhaustive under 500).
# The 10 matched comparators with 3 treated units have C(13, 3) = 286 distinct sets, fewer than 999 draws: tried
# each once (exhaustive), so that check carries no draws.
SAMPLED = ("placebo in time", "pre-trend test")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.unit
def test_a_check_states_its_draws_only_when_sampled_and_only_when_it_ran() -> None:
    check = Check("placebo in time", "agrees", "estimate +1.0%, p = 0.40: no effect where none can be")
    assert check.sampled(0, 0.0) is check and check.to_json_dict() == {
        "check": "placebo in time",
        "status": "agrees",
        "detail": check.detail,
    }
    s = check.sampled(999, 0.0156)
    assert s.detail == check.detail + " (p-value from 999 random placebo assignments, Monte Carlo error 0.016)"
    assert s.to_json_dict()["placebo_draws"] == 999 and s.to_json_dict()["p_value_mc_error"] == 0.0156
    not_run = Check("placebo in time", "not run", "fewer than 6 periods before the start")
    assert not_run.sampled(999, 0.01) is not_run


@pytest.fixture(scope="module")
def several() -> SiteEvaluation:
    protocol, long = simulated_site(60, 60, 24, seed=4, effect=-0.2)
    protocol = replace(protocol, treated_units=("T000", "T001", "T002"), primary_estimator="did")
    return evaluate_site(protocol, panel=simulated_panel(long))


@pytest.mark.integration
def test_each_sampled_check_carries_its_draws_and_error_in_results_json(several: SiteEvaluation) -> None:
    rb = several.robustness
    assert rb is not None
    saved = {c["check"]: c for c in several.to_json_dict()["robustness"]["checks"]}
    rows = {"placebo in time": rb.placebo_in_time, "10 matched comparators": rb.matched_did}
    for name in SAMPLED:
        c = saved[name]
        assert c["status"] != "not run" and c["placebo_draws"] == 999, name
        row = rows.get(name) or several.primary.pretrend  # type: ignore[union-attr]
        assert c["p_value_mc_error"] == pytest.approx(mc_error(row.p_value, 999)), name
        assert c["detail"].endswith(f"({sampled_text(999, c['p_value_mc_error'])})"), name
    for name in (
        "10 matched comparators",
        "leave one comparator out",
        "synthetic control",
        "parallel-trends sensitivity",
    ):
        assert "placebo_draws" not in saved[name] and "random placebo" not in saved[name]["detail"], name


@pytest.mark.integration
def test_the_robustness_page_states_the_draws_beside_each_sampled_check(several: SiteEvaluation) -> None:
    text = _text(robustness(several).html)
    for name in SAMPLED:
        assert re.search(
            rf"{name}: [^<]*\(p-value from 999 random placebo assignments, Monte Carlo error 0\.\d{{3}}\)\.", text
        ), name


@pytest.mark.integration
def test_an_exhaustive_sites_checks_say_nothing_of_sampling() -> None:
    protocol, long = simulated_site(40, 60, 24, seed=4)
    ev = evaluate_site(replace(protocol, primary_estimator="did"), panel=simulated_panel(long))
    for c in ev.to_json_dict()["robustness"]["checks"]:
        assert set(c) == {"check", "status", "detail"} and "random placebo" not in c["detail"], c


@pytest.mark.integration
def test_a_staggered_sites_sampled_checks_state_their_draws(staggered_example) -> None:  # type: ignore[no-untyped-def]
    ev = staggered_example
    st = ev.staggered
    saved = {c["check"]: c for c in ev.to_json_dict()["robustness"]["checks"]}
    draws = st.result.placebo_draws
    assert draws > 0
    assert saved["placebo in time"]["placebo_draws"] == draws
    assert saved["placebo in time"]["p_value_mc_error"] == pytest.approx(mc_error(st.placebo_in_time.p_value, draws))
    assert saved["stacked DiD"]["placebo_draws"] == st.stacked.placebo_draws
    assert (
        f"({sampled_text(draws, saved['placebo in time']['p_value_mc_error'])})" in saved["placebo in time"]["detail"]
    )
    assert saved["pre-trend test"]["placebo_draws"] == ev.primary.did.placebo_draws  # four treated areas: sampled
    assert "placebo_draws" not in saved["leave one comparator out"]
