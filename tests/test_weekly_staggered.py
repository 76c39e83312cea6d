"""Staggered starts on weekly data: each treated unit's own Monday, the staggered estimators, the page in weeks.

A simulated weekly site (40 areas, 157 ISO weeks, a winter peak, AR(1) week-to-week noise; four treated areas
starting at three Mondays, two of them in the same month, each with a true 10% fall from its own start) is
evaluated through ``evaluate_site``: Callaway-Sant'Anna's overall interval holds the truth, the stacked DiD is
fitted beside it, the robustness re-fits run, cohorts are named by their Mondays and the page counts weeks.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.errors import ParamsError
from evallib.methods.simulate import simulate_weekly_counts
from evallib.protocol.params import SiteProtocol

from .conftest import project_root, report_text

TRUE_LOG = math.log(0.90)
STARTS = {"W01": "2017-07-03", "W02": "2017-07-03", "W03": "2017-10-02", "W04": "2017-10-23"}


def weekly_rollout(seed: int = 7, n_areas: int = 40) -> pd.DataFrame:
    """One row per area and ISO week (``area``, ``week``, ``attendances``), a 10% fall from each start: the worked
    weekly example's generator with a winter peak alone, a steadier national trend and larger areas."""
    return simulate_weekly_counts(
        np.random.default_rng(seed),
        STARTS,
        effect=TRUE_LOG,  # read when called (the Monte Carlo check sets it to 0)
        n_areas=n_areas,
        level_range=(300, 900),
        second_harmonic=0.0,
        national_sd=0.004,
    )


def _mapping(**changes: object) -> dict[str, object]:
    m: dict[str, object] = {
        "site_id": "weekly_rollout",
        "site_name": "Simulated weekly roll-out",
        "site_type": "other",
        "care_model": "other",
        "membership_confidence": "high",
        "treated_units": list(STARTS),
        "intervention_start": dict(STARTS),
        "primary_outcome": "attendances",
        "expected_direction": "decrease",
        "pre_period_start": "2016-01-04",
        "pre_period_end": "2017-06-26",
        "post_period_end": "2018-12-31",
        "min_pre_periods": 52,
        "min_post_periods": 26,
        "comparison_pool": "all_eligible",
        "type1_comparators_only": False,
        "data_source": {
            "path": "w.csv",
            "layout": "wide",
            "unit": "area",
            "period": "week",
            "frequency": "weekly",
            "outcomes": ["attendances"],
            "unit_label": "area",
        },
    }
    m.update(changes)
    return m


@pytest.mark.unit
def test_weekly_starts_are_each_units_monday() -> None:
    p = SiteProtocol.from_mapping(_mapping(), "w.yaml")
    assert p.staggered and p.intervention_start == "2017-07-03"
    assert dict(p.unit_starts) == STARTS


@pytest.mark.unit
@pytest.mark.parametrize(
    ("start", "words"),
    [
        ("2017-10", "write the Monday that starts the ISO week"),
        ("2017-10-04", 'a Wednesday. Weekly data: write the Monday that starts the ISO week as "YYYY-MM-DD" in quotes'),
    ],
)
def test_a_weekly_start_that_is_not_a_monday_is_refused_naming_the_unit(start: str, words: str) -> None:
    with pytest.raises(ParamsError) as e:
        SiteProtocol.from_mapping(_mapping(intervention_start={**STARTS, "W03": start}), "w.yaml")
    assert "intervention_start.W03" in str(e.value) and words in str(e.value)


@pytest.mark.unit
def test_a_weekly_phase_in_counts_weeks() -> None:
    p = SiteProtocol.from_mapping(_mapping(post_period_start="2017-07-31"), "w.yaml")
    assert p.post_period_start == "2017-07-31"
    with pytest.raises(ParamsError, match="phase-in of 78 weeks after each unit's start, which leaves W03, W04 no"):
        SiteProtocol.from_mapping(_mapping(post_period_start="2018-12-31"), "w.yaml")


@pytest.mark.unit
def test_the_schema_takes_a_mapping_of_mondays_for_weekly_files_only() -> None:
    import json

    import jsonschema

    root = Path(__file__).resolve().parents[1]
    schema = json.loads((root / "params" / "params.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    m = _mapping()
    assert list(validator.iter_errors(m)) == []
    assert list(validator.iter_errors({**m, "intervention_start": {**STARTS, "W03": "2017-10"}}))
    monthly = {**m, "data_source": {**m["data_source"], "frequency": "monthly"}}  # type: ignore[dict-item]
    assert list(validator.iter_errors({**monthly, "intervention_start": STARTS}))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from evallib.evaluation.site.evaluate import evaluate_site

    root = tmp_path_factory.mktemp("weekly_rollout")
    weekly_rollout().to_csv(root / "w.csv", index=False)
    with project_root(root):
        yield evaluate_site(SiteProtocol.from_mapping(_mapping(), str(root / "weekly_rollout.yaml")))


@pytest.mark.integration
def test_a_weekly_staggered_site_is_evaluated_with_the_interval_holding_the_truth(evaluated) -> None:  # type: ignore[no-untyped-def]
    ev = evaluated
    assert ev.status == "evaluated", ev
    st = ev.staggered
    assert st is not None and st.period_word == "week" and ev.primary.coverage.periods_per_year == 52
    ans = ev.answer
    assert ans.estimator == "callaway_santanna"
    assert ans.row.ci_low <= TRUE_LOG <= ans.row.ci_high and ans.conclusion == "decrease"
    # One cohort per Monday, two of them in October 2017: terms keep the day.
    terms = [r.term for r in st.result.cohorts]
    assert terms == ["cohort_2017-07-03", "cohort_2017-10-02", "cohort_2017-10-23"]
    assert st.stacked is not None
    assert st.stacked.overall.ci_low <= TRUE_LOG <= st.stacked.overall.ci_high
    assert st.placebo_in_time is not None and re.fullmatch(r"placebo_in_time_\d{4}-\d\d-\d\d", st.placebo_in_time.term)
    rb = ev.robustness
    assert rb is not None and {c.name for c in rb.checks} == {
        "placebo in time",
        "leave one comparator out",
        "pre-trend test",
        "stacked DiD",
    }


@pytest.mark.integration
def test_the_weekly_staggered_page_counts_weeks_and_names_mondays(evaluated) -> None:  # type: ignore[no-untyped-def]
    text = report_text(evaluated)
    assert "cohort starting 2 Oct 2017 (W03)" in text and "cohort starting 23 Oct 2017 (W04)" in text
    assert "W01, W02 from 3 Jul 2017" in text
    assert "weeks before its start as follow-up" in text and "weeks before their start as follow-up" in text
    assert not re.search(r"\b\d+ months?\b|months before", text), re.findall(r".{60}\b\d+ months?\b.{20}", text)
    d = evaluated.to_json_dict()
    assert d["unit_starts"] == STARTS


@pytest.mark.unit
def test_a_weekly_start_outside_the_data_is_named_with_the_datas_mondays() -> None:
    from evallib.evaluation.site.staggered_site import staggered_data_problem

    p = SiteProtocol.from_mapping(_mapping(intervention_start={**STARTS, "W04": "2018-12-31"}), "w.yaml")
    periods = pd.date_range("2016-01-04", "2018-12-24", freq="W-MON")
    problem = staggered_data_problem(p, periods, {f"W{i:02d}" for i in range(1, 41)})
    assert "gives W04 a start outside the data (its periods run 2016-01-04 to 2018-12-24" in problem


@pytest.mark.unit
def test_the_board_paper_names_a_weekly_start_by_its_monday() -> None:
    from evallib.reporting.board_paper import _month

    assert _month("2017-07-03") == "3 July 2017" and _month("2016-04") == "April 2016"
