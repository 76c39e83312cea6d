"""Batch runs leave the site notebook's exploration cells unexecuted (the published page drops them anyway), on the
forked executor and on kernels; the cells stay in the executed notebook, and every other way of running the
notebook (JupyterLab, plain papermill, nbval) still runs them."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline import execute, executor
from evallib.reporting.static_site import UNPUBLISHED_TAGS

from .conftest import ROOT


def _notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    explore = nbformat.v4.new_code_cell("open('explored', 'w').write('x')\n'explored'")
    explore.metadata["tags"] = [executor.SKIPPED_IN_BATCH]
    nb.cells = [nbformat.v4.new_code_cell("'before'"), explore, nbformat.v4.new_code_cell("'after'")]
    path = folder / "t.ipynb"
    nbformat.write(nb, path)
    return path


def _texts(nb_path: Path) -> list[str]:
    nb = nbformat.read(nb_path, as_version=4)
    return ["".join(o.get("data", {}).get("text/plain", "")) for c in nb.cells for o in c.get("outputs", [])]


@pytest.mark.unit
def test_the_skipped_tag_is_one_the_published_page_leaves_out() -> None:
    assert executor.SKIPPED_IN_BATCH in UNPUBLISHED_TAGS
    cells = json.loads((ROOT / "notebooks" / "site_evaluation.ipynb").read_text())["cells"]
    explore = [
        "".join(c["source"]) for c in cells if executor.SKIPPED_IN_BATCH in c.get("metadata", {}).get("tags", [])
    ]
    assert any("tidy()" in s for s in explore) and any("plot()" in s for s in explore)


@pytest.mark.integration
def test_the_forked_executor_leaves_exploration_cells_unexecuted(tmp_path: Path) -> None:
    if not executor.available():
        pytest.skip("no fork")
    executor.warm_up()
    template = _notebook(tmp_path)
    assert executor.run_forked(template, tmp_path / "out.ipynb", {}, tmp_path) is None
    assert _texts(tmp_path / "out.ipynb") == ["'before'", "'after'"]
    assert not (tmp_path / "explored").exists()
    cell = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[1]
    assert cell.source.startswith("open(") and cell.outputs == [] and cell.execution_count is None
    # asked to run everything, it does
    assert executor.run_forked(template, tmp_path / "all.ipynb", {}, tmp_path, skip_tag=None) is None
    assert _texts(tmp_path / "all.ipynb") == ["'before'", "'explored'", "'after'"]


@pytest.mark.integration
def test_a_kernel_run_leaves_exploration_cells_unexecuted_and_plain_papermill_runs_them(tmp_path: Path) -> None:
    import papermill as pm

    template = _notebook(tmp_path)
    failure, _ = execute.execute_notebook(template, tmp_path / "out.ipynb", {}, tmp_path)
    assert failure is None
    assert _texts(tmp_path / "out.ipynb") == ["'before'", "'after'"]
    assert not (tmp_path / "explored").exists()
    pm.execute_notebook(str(template), str(tmp_path / "plain.ipynb"), cwd=str(tmp_path), progress_bar=False)
    assert _texts(tmp_path / "plain.ipynb") == ["'before'", "'explored'", "'after'"]
    assert (tmp_path / "explored").exists()
