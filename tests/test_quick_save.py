"""The notebook saved before each code cell (``pipeline/quick_save.py``): after every save the file holds the
notebook exactly as it is in memory at that moment, although only the cells that can have changed since the
last save are encoded again, and the file is rewritten in place (shorter or longer) without following a link.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline.quick_save import QuickSave

pytestmark = pytest.mark.unit


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Site"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("Then"),
        nbformat.v4.new_code_cell("x"),
        nbformat.v4.new_code_cell("print('é')"),
    ]
    return nb


def _run(cell: nbformat.NotebookNode, text: str) -> None:
    # What papermill's cell_start and the engine change: the cell's metadata, then its outputs.
    cell.metadata["papermill"] = {"status": "running", "start_time": "2026-12-07T00:00:00"}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    cell.metadata["papermill"]["status"] = "completed"


def test_each_save_holds_the_notebook_as_it_is_then(tmp_path: Path) -> None:
    nb, path = _notebook(), tmp_path / "report.ipynb"
    path.write_text("x" * 100_000)  # papermill's first write, longer than any quick save: rewritten shorter
    save = QuickSave(nb, str(path))
    try:
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        for index in code:
            nb.cells[index].metadata["papermill"] = {"status": "running"}  # papermill's cell_start
            if index > 0:
                nb.cells[index - 1].metadata["papermill"] = {"status": "completed"}  # a markdown cell's end
            save(index)
            assert json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(nb))
            _run(nb.cells[index], "out é " * (1000 * index))  # then the cell runs: longer outputs each time
        nb.metadata["papermill"] = {"exception": False}  # notebook metadata changed too
        save(code[-1])
        assert json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(nb))
    finally:
        save.close()
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), as_version=4))


def test_a_quick_save_never_writes_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    link = tmp_path / "report.ipynb"
    link.symlink_to(outside)
    save = QuickSave(_notebook(), str(link))
    with pytest.raises(OSError):
        save(1)
    save.close()
    assert outside.read_text() == "keep me"


def test_without_an_output_path_nothing_is_saved(tmp_path: Path) -> None:
    save = QuickSave(_notebook(), None)
    save(1)
    save.close()
    assert not list(tmp_path.iterdir())
