"""The forked executor's saves between cells: a notebook process that dies in a cell leaves a readable notebook with
every earlier cell's output (quick compact saves between cells; papermill's own save at the end)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from evallib.pipeline import executor


@pytest.mark.integration
def test_a_process_that_dies_in_a_cell_leaves_every_earlier_output_readable(tmp_path: Path) -> None:
    if not executor.available():
        pytest.skip("no fork")
    executor.warm_up()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("print('first')"),
        nbformat.v4.new_markdown_cell("between"),
        nbformat.v4.new_code_cell("'second'"),
        nbformat.v4.new_code_cell("import os\nos._exit(1)"),
    ]
    nbformat.write(nb, tmp_path / "t.ipynb")
    reason = executor.run_forked(tmp_path / "t.ipynb", tmp_path / "out.ipynb", {}, tmp_path)
    assert reason is not None and "died" in reason
    left = nbformat.read(tmp_path / "out.ipynb", as_version=4)  # valid: nbformat reads it
    nbformat.validate(left)
    assert left.cells[0].outputs[0]["text"] == "first\n"
    assert left.cells[2].outputs[0]["data"]["text/plain"] == "'second'"
    assert left.cells[3].outputs == []


@pytest.mark.integration
def test_a_finished_notebook_is_papermills_own_save(tmp_path: Path) -> None:
    if not executor.available():
        pytest.skip("no fork")
    executor.warm_up()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(nb, tmp_path / "t.ipynb")
    assert executor.run_forked(tmp_path / "t.ipynb", tmp_path / "out.ipynb", {}, tmp_path) is None
    text = (tmp_path / "out.ipynb").read_text()
    assert text.startswith("{\n")  # pretty, as papermill writes it
    assert nbformat.reads(text, as_version=4).cells[0].outputs[0]["data"]["text/plain"] == "2"
