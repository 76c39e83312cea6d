"""The design step on weekly data: detectable effects from the weekly history, windows and follow-ups in weeks.

The worked weekly example (``examples/weekly``: 40 areas, 104 weeks before a start on Monday 1 January 2018, 53
weeks of follow-up) is sized by ``evallib design``: follow-ups of 52, 104 and 156 weeks and the protocol's 53,
fake windows of the protocol's 104-week pre-period, nothing from the start on read, the page and ``design.csv``
counting weeks, and the chosen pool's ``data_end`` the last Monday read.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.studies.design import WEEKLY_FOLLOW_UPS, design_site
from evallib.protocol.params import load_params

from .conftest import ROOT, page_text, panel_changed_from, project_root

EXAMPLE = ROOT / "examples" / "weekly"


@pytest.fixture(scope="module")
def protocol(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with project_root():
        yield replace(load_params(EXAMPLE / "clinics.yaml"), n_placebo_draws=199)


@pytest.fixture(scope="module")
def result(protocol):  # type: ignore[no-untyped-def]
    return design_site(protocol, estimators=("did",), hoped_for_percent=10.0)


@pytest.mark.integration
def test_the_weekly_design_counts_follow_up_and_the_pre_period_in_weeks(result) -> None:  # type: ignore[no-untyped-def]
    assert result.period_word == "week" and result.pre_periods == 104
    assert result.protocol_follow_up == 53  # Monday 1 Jan 2018 to Monday 31 Dec 2018
    assert sorted(set(result.table["follow_up"])) == sorted({*WEEKLY_FOLLOW_UPS, 53})
    assert result.history[1] == pd.Timestamp("2017-12-25")  # the last week before the start
    t = result.table
    assert (t["fake_pre"] <= 104).all() and (t["fake_starts"] >= 1).all()
    assert np.isfinite(t["mde"]).all() and (t["mde"] > 0).all()
    assert "53 weeks of follow-up" in result.verdict() and "month" not in result.verdict()
    assert result.choice()["data_end"] == "2017-12-25"


@pytest.mark.integration
def test_the_weekly_design_reads_nothing_from_the_start_on(protocol, result) -> None:  # type: ignore[no-untyped-def]
    other = design_site(
        protocol, panel=panel_changed_from(protocol, "2018-01-01"), estimators=("did",), hoped_for_percent=10.0
    )
    pd.testing.assert_frame_equal(other.table, result.table)


@pytest.mark.integration
def test_the_weekly_mde_predicted_before_the_start_is_near_the_one_the_report_shows(protocol, result) -> None:  # type: ignore[no-untyped-def]
    """The predicted MDE at the protocol's 53 weeks against the evaluated site's own (its answer's placebo MDE)."""
    from evallib.evaluation.site.evaluate import evaluate_site

    t = result.table
    predicted = float(t[(t["pool"] == "protocol") & (t["follow_up"] == 53)]["mde"].iloc[0])
    ev = evaluate_site(protocol)
    assert ev.answer is not None and ev.answer.estimator == "did"
    assert 0.5 <= predicted / ev.answer.mde <= 2.0, (predicted, ev.answer.mde)


@pytest.mark.integration
def test_evallib_design_runs_on_weekly_data_and_writes_a_page_in_weeks(tmp_path: Path) -> None:
    from evallib.pipeline.design import run_design

    said = run_design(ROOT, "clinics", Path("examples/weekly"), hoped_for=10.0, share=1.0, out=tmp_path)
    assert "53 weeks of follow-up" in said and "Recommended comparison pool" in said
    page = (tmp_path / "design.html").read_text(encoding="utf-8")
    text = page_text(page)
    assert "Follow-up (weeks)" in text and "pre-period (104 weeks)" in text
    assert "4 Jan 2016" in text or "2016" in text
    assert not re.search(r"\b\d+ months?\b", text), re.findall(r".{40}\b\d+ months?\b.{20}", text)
    table = pd.read_csv(tmp_path / "design.csv")
    assert set(table["follow_up"]) == {*WEEKLY_FOLLOW_UPS, 53}
