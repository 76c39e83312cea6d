"""A site rolled out area by area: Callaway-Sant'Anna per cohort and overall with placebo inference.

The estimator (``StaggeredPlacebo``) gives exactly the group aggregation of ``CallawaySantAnna`` with
not-yet-treated comparisons (itself checked against R ``did``), its p-values and intervals come from one test,
and the worked example (``examples/staggered``: four areas, three start dates, a true 12% fall) is evaluated with
the effect in percent, a 95% interval holding the truth and every cohort's estimate in results.json and the report.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.methods.base.design import Design
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.did.staggered import CallawaySantAnna
from evallib.protocol.params import SiteProtocol, load_params

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "staggered"
TRUE_LOG = math.log(0.88)  # examples/staggered/make_data.py: 12% fewer admissions from each area's start


def _panel(seed: int, n_units: int = 30, n_periods: int = 48) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    periods = pd.date_range("2015-01-01", periods=n_periods, freq="MS")
    logs = 6 + rng.normal(0, 0.3, n_units) + np.cumsum(rng.normal(0, 0.02, (n_periods, n_units)), axis=0)
    return pd.DataFrame(np.exp(logs), index=periods, columns=[f"U{i:02d}" for i in range(n_units)])


@pytest.mark.unit
@pytest.mark.parametrize("few_never_treated", [False, True])
def test_estimates_equal_callaway_santanna_group_aggregation(few_never_treated: bool) -> None:
    wide = _panel(3)
    p = wide.index
    starts = {"U01": p[12], "U02": p[12], "U05": p[20], "U07": p[30]}
    if few_never_treated:  # five cohorts, two units never treated
        starts = {u: p[12 + 4 * (i % 5)] for i, u in enumerate(wide.columns[:-2])}
    fast = StaggeredPlacebo(n_draws=99).fit(Design.staggered(wide, starts, measure="count"))
    ref = CallawaySantAnna(control_group="not_yet_treated").fit(Design.staggered(np.log(wide), starts))
    group = ref.aggregate("group")
    assert fast.overall.estimate == pytest.approx(group.overall.estimate, abs=1e-12)
    assert [r.estimate for r in fast.cohorts] == pytest.approx([c.estimate for c in group.components], abs=1e-12)
    assert len(fast.cohorts) == len(group.components) == (5 if few_never_treated else 3)


@pytest.mark.unit
@pytest.mark.parametrize("studentized", [False, True])
def test_p_value_and_interval_come_from_one_test_and_move_with_the_effect(studentized: bool) -> None:
    wide = _panel(5)
    p = wide.index
    starts = {"U01": p[14], "U02": p[20], "U03": p[26]}
    design = Design.staggered(wide, starts, measure="count")
    res = StaggeredPlacebo(n_draws=499, seed=1, studentized=studentized).fit(design)
    for r in res.rows:
        assert (r.p_value > 0.05) == (r.ci_low <= 0 <= r.ci_high)
        assert r.scale == "log" and r.inference == ("placebo_studentized" if studentized else "placebo_in_space")
    # A constant effect tau in every treated unit's follow-up moves every estimate and interval by tau.
    tau = -0.2
    shifted = wide.copy()
    for u, s in starts.items():
        shifted.loc[shifted.index >= s, u] *= math.exp(tau)
    moved = StaggeredPlacebo(n_draws=499, seed=1, studentized=studentized).fit(
        Design.staggered(shifted, starts, measure="count")
    )
    for a, b in zip(res.rows, moved.rows, strict=True):
        assert b.estimate == pytest.approx(a.estimate + tau, abs=1e-10)
        assert b.ci_low == pytest.approx(a.ci_low + tau, abs=1e-10)
        assert b.ci_high == pytest.approx(a.ci_high + tau, abs=1e-10)


@pytest.mark.unit
def test_the_fake_starts_keep_the_cohorts_spacing_before_the_first_start() -> None:
    from evallib.evaluation.site.staggered_site import fake_start_design

    wide = _panel(7, n_periods=60)
    p = wide.index
    design = Design.staggered(wide, {"U01": p[36], "U02": p[42], "U03": p[48]}, measure="count")
    fake = fake_start_design(design)
    assert fake is not None and fake.periods[-1] == p[35]  # only data before the first real start
    starts = {u: s for u, s in zip(fake.units, fake.unit_starts or (), strict=True) if s is not None}
    assert starts == {"U01": p[12], "U02": p[18], "U03": p[24]}  # back 24: the 12-month spread + a year
    short = Design.staggered(wide, {"U01": p[8], "U02": p[14]}, measure="count")
    assert fake_start_design(short) is None  # too few periods before the first start


@pytest.fixture(scope="module")
def example(staggered_example):  # type: ignore[no-untyped-def]
    """The staggered worked example, evaluated once per session (conftest.staggered_example)."""
    return staggered_example


@pytest.mark.integration
def test_the_worked_example_answers_with_the_overall_effect_holding_the_truth(example) -> None:  # type: ignore[no-untyped-def]
    ev = example
    assert ev.status == "evaluated"
    ans = ev.answer
    assert ans.estimator == "callaway_santanna" and ans.row.term == "overall"
    assert ans.row.scale == "log"  # counts: a difference in logs, reported in percent
    assert ans.row.ci_low <= TRUE_LOG <= ans.row.ci_high
    assert ans.conclusion == "decrease" and ans.direction == "hoped for"
    terms = [r.term for r in ev.staggered.rows if r.method != "did_stacked"]  # the stacked DiD: test_stacked_did.py
    assert terms == ["overall", "cohort_2016-04", "cohort_2017-01", "cohort_2017-10", "placebo_in_time_2013-10"]
    assert [r.n_treated for r in ev.staggered.rows if r.method != "did_stacked"] == [4, 2, 1, 1, 4]
    # Before the first start, every start moved back 30 months (the spacing kept): no effect to find.
    fake = ev.staggered.placebo_in_time
    assert fake.method == "did_callaway_santanna_not_yet_treated_placebo_in_time" and fake.p_value > 0.05
    assert any(f.startswith("The site's areas started at different dates") for f in ev.flags)


@pytest.mark.integration
def test_the_worked_example_records_every_cohort_and_reports_them_in_percent(example) -> None:  # type: ignore[no-untyped-def]
    from evallib.reporting.findings import summary
    from evallib.reporting.report import contents
    from evallib.reporting.staggered_section import staggered

    d = example.to_json_dict()
    assert d["unit_starts"] == {"A01": "2016-04", "A02": "2016-04", "A03": "2017-01", "A04": "2017-10"}
    assert d["answer"]["method"] == "did_callaway_santanna_not_yet_treated"
    cs = [r for r in d["results"] if r["method"] == "did_callaway_santanna_not_yet_treated"]
    assert {r["term"] for r in cs} == {"overall", "cohort_2016-04", "cohort_2017-01", "cohort_2017-10"}
    assert any(r["term"] == "placebo_in_time_2013-10" for r in d["results"])
    html = staggered(example).html
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", html))
    for words in (
        "cohort starting Apr 2016 (A01, A02)",
        "cohort starting Jan 2017 (A03)",
        "all areas, cohorts weighted",
        "placebo in time (fake start)",
        "the first to October 2013",
    ):
        assert words in text
    overall = 100 * (math.exp(example.answer.row.estimate) - 1)
    assert f"{overall:.1f}%" in text
    assert "Staggered starts" in contents(example).html
    assert "Callaway-Sant&#39;Anna" in summary(example).html


@pytest.mark.integration
def test_a_single_start_site_has_no_staggered_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evallib.evaluation.site.evaluate import evaluate_site
    from evallib.protocol.paths import ROOT_ENV
    from evallib.reporting.report import contents
    from evallib.reporting.staggered_section import staggered

    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    p = load_params(EXAMPLE / "rollout.yaml")
    single = SiteProtocol.from_mapping({**p.to_mapping(), "intervention_start": "2016-04"})
    ev = evaluate_site(single)
    assert ev.staggered is None and ev.answer is not None and ev.answer.estimator != "callaway_santanna"
    assert "unit_starts" not in ev.to_json_dict()
    assert staggered(ev).html == "" and "Staggered starts" not in contents(ev).html


@pytest.mark.e2e
def test_the_example_runs_with_one_command(tmp_path: Path) -> None:
    """As the README says: ``evallib run --params-dir examples/staggered`` evaluates and publishes it."""
    from evallib.pipeline.batch import run_batch

    (tmp_path / "examples").mkdir()
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "staggered")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    result = run_batch(None, root=tmp_path, params_dir=tmp_path / "examples" / "staggered", progress=False)
    assert result.exit_code == 0, result.runs
    page = (tmp_path / "outputs" / "site" / "rollout.html").read_text()
    assert "Staggered starts" in page and "cohort starting Oct 2017 (A04)" in page


@pytest.mark.integration
def test_an_nhs_site_with_staggered_starts_is_answered_per_cohort_on_the_bundled_data() -> None:
    """V30's five CCGs given three start dates: admissions per head (a rate: log scale), per cohort and overall."""
    import yaml

    from evallib.evaluation.site.evaluate import evaluate_site

    m = yaml.safe_load((ROOT / "params" / "vanguards" / "V30.yaml").read_text())
    del m["secondary_analyses"]  # not supported beside staggered starts
    m["intervention_start"] = {"04K": "2015-08", "04L": "2015-08", "04M": "2016-04", "04N": "2016-04", "03X": "2016-10"}
    ev = evaluate_site(SiteProtocol.from_mapping(m, "V30 with staggered starts"))
    assert ev.status == "evaluated" and ev.staggered is not None
    assert [r.term for r in ev.staggered.result.rows] == [
        "overall",
        "cohort_2015-08",
        "cohort_2016-04",
        "cohort_2016-10",
    ]
    assert [r.n_treated for r in ev.staggered.result.rows] == [5, 2, 2, 1]
    assert all(r.scale == "log" and r.n_control == ev.staggered.n_comparators for r in ev.staggered.rows)
    assert ev.answer is not None and ev.answer.estimator == "callaway_santanna"
    for r in ev.staggered.rows:
        assert (r.p_value > 0.05) == (r.ci_low <= 0 <= r.ci_high)


@pytest.mark.integration
def test_a_cohort_with_a_short_follow_up_is_named_in_the_caution(monkeypatch: pytest.MonkeyPatch) -> None:
    from evallib.evaluation.site.evaluate import evaluate_site
    from evallib.protocol.paths import ROOT_ENV

    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    p = load_params(EXAMPLE / "rollout.yaml")
    late = {**dict(p.unit_starts), "A04": "2018-10"}  # three months before the data end
    ev = evaluate_site(SiteProtocol.from_mapping({**p.to_mapping(), "intervention_start": late}))
    assert "The cohort starting Oct 2018 has only 3 months of follow-up: its effect is imprecise." in ev.flags[0]


@pytest.mark.unit
def test_a_percentage_is_analysed_in_points_and_a_count_in_logs() -> None:
    wide = _panel(11)
    p = wide.index
    starts = {"U01": p[14], "U02": p[26]}
    share = 100 * wide / (wide + 1000)
    points = StaggeredPlacebo(transform="identity", n_draws=99).fit(
        Design.staggered(share, starts, measure="proportion")
    )
    logs = StaggeredPlacebo(n_draws=99).fit(Design.staggered(wide, starts, measure="count"))
    assert {r.scale for r in points.rows} == {"percentage_points"}
    assert {r.scale for r in logs.rows} == {"log"}


@pytest.mark.integration
def test_a_volatile_staggered_site_gets_the_studentized_test(monkeypatch: pytest.MonkeyPatch) -> None:
    from evallib.evaluation.site.coverage import load_source
    from evallib.evaluation.site.staggered_site import staggered_analysis
    from evallib.protocol.paths import ROOT_ENV

    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    p = load_params(EXAMPLE / "rollout.yaml")
    panel = load_source(p.data_source)
    st = staggered_analysis(p, panel, p.analyses[0], studentized=True)
    assert {r.inference for r in st.rows} == {"placebo_studentized"}
    assert st.overall.ci_low <= TRUE_LOG <= st.overall.ci_high
    assert "scales each estimate by the pre-period swing of the units it treats" in st.flag(p.intervention_start)
