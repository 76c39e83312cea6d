"""The programme page pools only the sites analysed on the programme's own data (the bundled NHS datasets): an
evaluator's own-data sites are counted apart and never pooled, plotted or counted among the programme's sites;
its answer per care model comes first, in words, with its interval."""

from __future__ import annotations

import json
from pathlib import Path

from evallib.evaluation.studies import programme
from evallib.reporting import programme_page


def _write(root: Path, sid: str, model: str, est: float, source: str) -> None:
    (root / sid).mkdir(parents=True)
    row = {
        "outcome": "nonelective_admissions",
        "term": "treated_x_post",
        "estimate": est,
        "std_error": 0.03,
        "ci_low": est - 0.06,
        "ci_high": est + 0.06,
        "p_value": 0.3,
        "method": "did_twfe",
        "inference": "placebo_in_space",
        "scale": "log",
        "n_treated": 1,
        "n_control": 50,
    }
    (root / sid / "results.json").write_text(
        json.dumps(
            {
                "site_id": sid,
                "site_name": sid,
                "care_model": model,
                "status": "evaluated",
                "primary_outcome": "nonelective_admissions",
                "intervention_start": "2015-04",
                "coverage": {"treated_units": [sid]},
                "results": [row],
                "provenance": {"data_source": source},
            }
        )
    )


def test_own_data_sites_are_neither_counted_nor_pooled_with_the_programme(tmp_path: Path) -> None:
    for i, est in enumerate((-0.05, -0.02, 0.01)):
        _write(tmp_path, f"V0{i}", "PACS", est, "mar_commissioner_2008_2019")
    _write(tmp_path, "S01", "PACS", -0.9, "local.csv")  # an evaluator's file: far from the programme's sites
    _write(tmp_path, "S02", "other", -0.5, "other.parquet")
    data = programme.load_programme(tmp_path)
    assert list(data.own_data_sites["site_id"]) == ["S01", "S02"]
    assert list(data.pooled_sites["site_id"]) == ["V00", "V01", "V02"]
    pooled = programme.pooled_by_care_model(data).set_index("care_model")
    assert list(pooled.index) == ["PACS"] and pooled.loc["PACS", "sites"] == 3  # no "other" pooled effect
    assert pooled.loc["PACS", "site_ids"] == "V00, V01, V02"
    overview = programme_page.overview(data).html
    assert "3 sites of the programme" in overview and "2 sites on an evaluator" in overview
    assert "S01, S02" in overview
    answer = programme_page.pooled_answer(data).html
    assert "PACS (3 sites):" in answer and "other" not in answer.split("</ul>")[0]
    assert "(2 sites)" in answer  # the own-data sites are said to be left out


def test_the_pooled_answer_says_the_effect_and_interval_in_words(tmp_path: Path) -> None:
    for i, est in enumerate((-0.21, -0.2, -0.19)):
        _write(tmp_path, f"V0{i}", "MCP", est, "mar_commissioner_2008_2019")
    data = programme.load_programme(tmp_path)
    answer = programme_page.pooled_answer(data).html
    assert "MCP (3 sites): 18.1% lower than in comparison areas (95% interval" in answer
    assert "a clear decrease" in answer  # the interval excludes no change


def test_the_pooled_answer_comes_first_on_the_programme_page() -> None:
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "programme_summary.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    calls = [c for c in code if c.startswith("programme.")]
    assert calls[0] == "programme.pooled_answer(data)"
