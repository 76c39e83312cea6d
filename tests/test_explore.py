"""Exploration like pandas: every site's results as one DataFrame, result objects that display and plot
themselves, the explore notebook, and notebook errors that show the domain message, not a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import papermill as pm
import pytest
from matplotlib.figure import Figure

from evallib import evaluate_site, load_params, results_table
from evallib.methods.base.results import TIDY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_results_table_is_every_sites_tidy_rows_in_one_frame(published_project: Path) -> None:
    table = results_table(published_project / "outputs")
    assert list(table.columns[-len(TIDY_COLUMNS) :]) == list(TIDY_COLUMNS)
    assert set(table["site_id"]) == {"V04", "S01"}  # V45 was not evaluable: no estimates
    v04 = json.loads((published_project / "outputs" / "V04" / "results.json").read_text())
    rows = table[table["site_id"] == "V04"]
    assert len(rows) == len(v04["results"])
    primary = rows[rows["primary"]]
    assert len(primary) == 1 and primary["estimate"].item() == pytest.approx(v04["answer"]["estimate"])
    assert table["estimate"].dtype == float and table["care_model"].eq("PACS").any()
    # slicing as in pandas: by care model, outcome and method
    assert table.groupby(["care_model", "outcome", "method"]).size().gt(0).all()


@pytest.mark.e2e
def test_results_table_can_keep_only_verified_results(published_project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    shutil.copytree(published_project / "outputs", outputs)
    f = outputs / "V04" / "results.json"
    f.write_text(f.read_text().replace('"status": "evaluated"', '"status": "evaluated" '))  # a hand edit
    assert "V04" in set(results_table(outputs)["site_id"])
    assert "V04" not in set(results_table(outputs, verified_only=True)["site_id"])


@pytest.mark.e2e
def test_explore_notebook_slices_the_results_with_seaborn(published_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "explored.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "explore_results.ipynb"),
        str(out),
        parameters={"outputs_dir": str(published_project / "outputs")},
        cwd=str(tmp_path),
        progress_bar=False,
    )
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # seaborn figures
    assert sum("text/html" in o.get("data", {}) for o in outputs) >= 3  # DataFrames


@pytest.mark.integration
def test_results_display_as_tables_and_plot_on_a_given_axis() -> None:
    ev = evaluate_site(load_params(ROOT / "params" / "vanguards" / "V04.yaml"))
    assert isinstance(ev.tidy(), pd.DataFrame) and "<table" in ev._repr_html_()
    a = ev.primary
    fig = Figure()
    ax = fig.add_subplot()
    for result in (a.did, a.event_study, a.its, a.controlled):
        assert "<table" in result._repr_html_()
        ax.clear()
        assert result.plot(ax=ax) is fig  # draws where it is told, returns that figure
    assert isinstance(ev.plot(), Figure) and "<table" in a._repr_html_()
    not_evaluable = evaluate_site(load_params(ROOT / "params" / "vanguards" / "V45.yaml"))
    assert "not evaluable" in not_evaluable._repr_html_() and isinstance(not_evaluable.plot(), Figure)


@pytest.mark.integration
def test_a_bad_parameter_in_the_notebook_shows_its_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALLIB_PROJECT_ROOT", str(ROOT))
    out = tmp_path / "bad.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(ROOT / "notebooks" / "site_evaluation.ipynb"),
            str(out),
            parameters={"site_id": "V04", "comparison_pool": "every_trust"},
            cwd=str(tmp_path),
            progress_bar=False,
        )
    assert err.value.ename == "ParamsError"
    error = next(
        o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    )
    assert error["traceback"] == [f"ParamsError: {error['evalue']}"]  # one line: the message with its fix
    assert "Allowed values" in error["evalue"]
