"""Whole-site evaluation on the bundled data: statuses, results.json, reports, disclosure, read-only data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from markupsafe import escape

from evallib.evaluation.record.results_file import write_results
from evallib.evaluation.site.coverage import excluded_by_rule
from evallib.evaluation.site.evaluate import evaluate_site
from evallib.methods.base.results import TIDY_COLUMNS
from evallib.methods.simulate import simulate_panel
from evallib.protocol.params import SiteProtocol, load_params
from evallib.reporting import report
from evallib.reporting.disclosure import SUPPRESSED, format_count, safe_count, safe_count_table
from evallib.sources.bundled import bundled_data_dir
from evallib.sources.panel import validate_panel

from .conftest import ROOT, tree_digest

pytestmark = pytest.mark.integration


def _protocol(site_id: str) -> SiteProtocol:
    kind = "vanguards" if site_id.startswith("V") else "ics"
    return load_params(ROOT / "params" / kind / f"{site_id}.yaml")


def test_vanguard_evaluated_with_placebo_inference(tmp_path: Path) -> None:
    before = tree_digest(bundled_data_dir())
    ev = evaluate_site(_protocol("V04"))
    assert ev.status == "evaluated" and ev.reason == ""
    t = ev.tidy()
    assert tuple(t.columns) == TIDY_COLUMNS
    did = t[t["method"] == "did_twfe"].iloc[0]
    assert did["inference"] == "placebo_in_space" and did["scale"] == "log" and did["n_treated"] == 1
    assert did["ci_low"] < did["estimate"] < did["ci_high"]
    assert set(t["method"]) >= {
        "did_twfe",
        "did_pretrend",
        "did_poisson_fe",
        "did_event_study",
        "did_event_study_pretrend",
        "its_gls_ar1",
        "its_controlled_placebo",
        "synthetic_control_outcome",
        "did_synthetic",
    }
    # Every headline estimate of the primary outcome is design-based: placebo test, interval by inversion.
    headline = t.query(
        "outcome == 'nonelective_admissions_per_head' and method != 'its_gls_ar1' and scale != 'statistic'"
    )
    assert set(headline["inference"]) <= {"placebo_in_space", "placebo_studentized"}
    assert set(t.query("method == 'its_gls_ar1'")["inference"]) == {"ar1_reml_bootstrap_t"}
    assert {"effect_at_12", "effect_at_24", "cumulative_effect"} <= set(t.query("method == 'its_gls_ar1'")["term"])
    assert ev.answer is not None and ev.answer.estimator == ev.primary.primary_estimator
    assert ev.programme is None  # vanguards started together: no staggered waves
    path = write_results(ev, tmp_path)
    data = json.loads(path.read_text())
    assert data["site_id"] == "V04" and data["status"] == "evaluated"
    assert all(set(TIDY_COLUMNS) <= set(r) for r in data["results"])
    assert tree_digest(bundled_data_dir()) == before  # bundled data is never modified


def test_ics_has_commissioner_and_trust_outcomes_and_percentage_points() -> None:
    ev = evaluate_site(_protocol("I03"))
    assert [a.outcome for a in ev.analyses] == [
        "nonelective_admissions_per_head",
        "nonelective_admissions",
        "ae_attendances",
        "emergency_admissions",
        "four_hour_performance",
    ]
    assert ev.primary.coverage.unit_kind == "CCG" and ev.analyses[2].coverage.unit_kind == "trust"
    perf = ev.tidy().query("outcome == 'four_hour_performance' and method == 'did_twfe'").iloc[0]
    assert perf["scale"] == "percentage_points"
    waves = ev.tidy().query("method == 'did_callaway_santanna_not_yet_treated'")
    assert list(waves["term"]) == ["all ICS waves (simple ATT)", "wave starting Jul 2017"]
    assert ev.programme.n_units > 100 and ev.programme.unit_kind == "CCG" and (waves["std_error"] > 0).all()


def _edited(site_id: str, **changes: object) -> SiteProtocol:
    return SiteProtocol.from_mapping(_protocol(site_id).to_mapping() | changes)


@pytest.mark.parametrize(
    ("protocol", "reason"),
    [
        (lambda: _protocol("V45"), "does not act on a local population's emergency admissions"),
        (lambda: _edited("V04", treated_units=["ZZ9"]), "none of the site's CCGs (ZZ9) appear"),
        (lambda: _edited("V40", pre_period_start="2013-04"), "incomplete A&E attendances series"),
        (
            lambda: _edited(
                "V04",
                data_source="ae_attendances_2016_2019",
                primary_outcome="ae_attendances",
                treated_units=["RTF"],
                secondary_analyses=[],
            ),
            "pre-period months",
        ),
        (
            lambda: _edited(
                "I16",
                data_source="ae_attendances_2016_2019",
                primary_outcome="ae_attendances",
                treated_units=["RTF"],
                secondary_analyses=[],
                pre_period_start="2016-07",
            ),
            "no post-period in the data",
        ),
        (lambda: _protocol("I18"), "COVID-19"),
        (lambda: _protocol("I45"), "COVID-19"),
    ],
    ids=["specialist", "codes not in the data", "incomplete", "short pre-period", "no follow-up", "I18", "I45"],
)
def test_not_evaluable_sites_say_why(protocol, reason: str, tmp_path: Path) -> None:  # noqa: ANN001
    ev = evaluate_site(protocol())
    assert ev.status == "not evaluable" and reason in ev.reason
    data = json.loads(write_results(ev, tmp_path).read_text())
    assert data["status"] == "not evaluable" and data["results"] == [] and reason in data["reason"]
    html = report.full_report(ev)
    assert "could not be evaluated" in html and "What would make it evaluable" in html
    assert html.count(escape(ev.reason)) == 1  # said once, in the summary: no banner in every section


def test_pool_rules() -> None:
    vanguard_trusts = excluded_by_rule(_protocol("V04"))
    assert {"RTF", "RBL", "RX1"} <= vanguard_trusts  # every vanguard trust, not just this site's
    ev = evaluate_site(_protocol("V04"))
    assert not set(ev.primary.coverage.comparators) & vanguard_trusts
    ics = excluded_by_rule(_protocol("I11"))  # follow-up to Feb 2020: waves to June 2019 excluded
    assert {"RDU", "RTE", "RJ1"} <= ics and "REF" not in ics  # Cornwall (Dec 2020) stays eligible


def test_known_effect_on_evaluators_own_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALLIB_PROJECT_ROOT", str(tmp_path))  # data files resolve inside the project
    sim = simulate_panel(60, 72, treated=1, start_period=48, effect=-0.15, seed=5)
    sim["period"] = sim["period"].dt.strftime("%Y-%m")
    sim[["unit", "period", "value"]].rename(columns={"value": "admissions"}).to_csv(tmp_path / "sim.csv", index=False)
    p = _protocol("V04").to_mapping() | {
        "site_id": "SIM",
        "treated_units": ["U000"],
        "comparison_pool": "all_eligible",
        "data_source": {
            "path": "sim.csv",
            "unit": "unit",
            "period": "period",
            "outcomes": ["admissions"],
        },
        "primary_outcome": "admissions",
        "secondary_outcomes": [],
    }
    ev = evaluate_site(SiteProtocol.from_mapping(p))
    r = ev.primary.did.headline
    assert ev.status == "evaluated" and r.n_control == 59
    assert r.estimate == pytest.approx(-0.15, abs=0.08)
    assert r.p_value < 0.05


def test_report_escapes_hostile_names() -> None:
    p = _protocol("V04").to_mapping() | {"site_name": "<script>alert('x')</script> & Co"}
    ev = evaluate_site(SiteProtocol.from_mapping(p))
    html = report.full_report(ev)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_summary_states_the_effect_and_its_uncertainty_in_words() -> None:
    ev = evaluate_site(_protocol("V04"))
    text = report.summary(ev).html
    assert "the data are consistent with anything from" in text and "placebo test" in text
    assert "do not give clear evidence" in text  # no clear effect for Northumberland
    assert "could have detected a change of about" in text  # the minimum detectable effect beside a null


def test_disclosure_rule() -> None:
    assert [safe_count(v) for v in (0, 1, 7, 8, 12, 13, 1234)] == [0, SUPPRESSED, SUPPRESSED, 10, 10, 15, 1235]
    assert format_count(123456) == "123,455"
    t = safe_count_table(pd.DataFrame({"n": [3, 40], "rate": [0.123, 0.456]}), ["n"])
    assert list(t["n"]) == [SUPPRESSED, 40] and list(t["rate"]) == [0.123, 0.456]
    with pytest.raises(ValueError):
        safe_count(-1)


def test_custom_panel_argument() -> None:
    sim = simulate_panel(30, 72, seed=1)
    panel = validate_panel(sim.assign(outcome="ae_attendances"), "monthly", source="simulated")
    p = _protocol("V04").to_mapping() | {
        "treated_units": ["U000"],
        "comparison_pool": "all_eligible",
        "primary_outcome": "ae_attendances",
        "secondary_outcomes": [],
        "secondary_analyses": [],
    }
    ev = evaluate_site(SiteProtocol.from_mapping(p), panel=panel)
    assert ev.status == "evaluated" and ev.primary.coverage.n_comparators == 29
