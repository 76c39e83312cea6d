"""The downloadable sites.csv carries each answer's ``placebo_draws`` and ``p_value_mc_error`` (as results.json
does), empty for an exhaustive p-value, and the data dictionary explains both columns (review of issue 22).
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from evallib.reporting.results_table import SITES_COLUMNS, sites_frame, spreadsheet_safe

pytestmark = pytest.mark.unit


def _result(site: str, **answer: object) -> dict[str, object]:
    base = {"estimator": "did", "scale": "log", "estimate": -0.1, "ci_low": -0.2, "ci_high": -0.01, "p_value": 0.03}
    return {"site_id": site, "status": "evaluated", "answer": {**base, **answer}, "flags": []}


def test_a_sampled_answer_fills_the_columns_and_an_exhaustive_one_leaves_them_empty() -> None:
    results = [
        _result("V01", placebo_draws=999, p_value_mc_error=0.0054),
        _result("V02"),  # every assignment tried: results.json writes neither field
        {"site_id": "V03", "status": "not evaluable", "reason": "no data", "answer": None},
    ]
    frame = sites_frame(results)
    cols = list(frame.columns)
    assert cols.index("placebo_draws") == cols.index("p_value") + 1
    assert cols.index("p_value_mc_error") == cols.index("placebo_draws") + 1
    text = spreadsheet_safe(frame).to_csv(index=False, lineterminator="\r\n")
    back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).set_index("site_id")
    assert back.loc["V01", "placebo_draws"] == "999" and back.loc["V01", "p_value_mc_error"] == "0.0054"
    for site in ("V02", "V03"):
        assert back.loc[site, "placebo_draws"] == "" and back.loc[site, "p_value_mc_error"] == "", site


def test_the_data_dictionary_explains_both_columns() -> None:
    meaning = dict(SITES_COLUMNS)
    assert "empty when every assignment was tried" in meaning["placebo_draws"]
    assert "Monte Carlo" in meaning["p_value_mc_error"] and "empty" in meaning["p_value_mc_error"]
