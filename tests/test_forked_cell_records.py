"""What the forked executor records for each cell: outputs equal to nbformat's own (made without validating each one,
the finished notebook still validates) and papermill's per-cell metadata (times, duration, status)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline import executor


@pytest.mark.integration
def test_outputs_match_nbformats_and_the_notebook_validates(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    src = forked_notebook(
        "import sys\nprint('out')\nprint('err', file=sys.stderr)",
        "from IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))\n1 + 1",
    )
    assert executor.run_forked(src, tmp_path / "out.ipynb", {}, tmp_path) is None
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    nbformat.validate(nb)
    new = nbformat.v4.new_output
    assert nb.cells[0].outputs == [
        new("stream", name="stdout", text="out\n"),
        new("stream", name="stderr", text="err\n"),
    ]
    assert nb.cells[1].outputs == [
        new("display_data", data={"text/html": "<b>x</b>", "text/plain": "<IPython.core.display.HTML object>"}),
        new("execute_result", data={"text/plain": "2"}, execution_count=nb.cells[1].execution_count),
    ]


@pytest.mark.integration
def test_a_cells_result_carries_the_cells_own_execution_count(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    src = forked_notebook("1", "x = 2", "x * 3", "1 / 0", "'never'")
    executor.run_forked(src, tmp_path / "out.ipynb", {}, tmp_path)
    code = [c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts[:4] == list(range(counts[0], counts[0] + 4)) and counts[4] is None  # as JupyterLab numbers them
    results = {i: o["execution_count"] for i, c in enumerate(code) for o in c.outputs if "execution_count" in o}
    assert results == {0: counts[0], 2: counts[2]}


@pytest.mark.integration
def test_each_cell_records_its_times_duration_and_status(tmp_path: Path, forked_notebook: Callable[..., Path]) -> None:
    src = forked_notebook("import time\ntime.sleep(0.05)", "1 / 0", "'never'")
    reason = executor.run_forked(src, tmp_path / "out.ipynb", {}, tmp_path)
    assert reason is not None and "ZeroDivisionError" in reason
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first, failed, after = (c.metadata.papermill for c in code)
    assert first["status"] == "completed" and first["exception"] is False
    assert first["start_time"] < first["end_time"] and 0.05 <= first["duration"] < 60
    assert failed["status"] == "failed" and failed["exception"] is True and failed["duration"] >= 0
    assert code[1].outputs[-1]["output_type"] == "error"
    assert after["status"] == "pending" and after["duration"] is None
