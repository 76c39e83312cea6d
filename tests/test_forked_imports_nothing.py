"""A notebook forked from the warmed-up executor imports nothing afresh in its own process: what a site's cells
reach on first use (IPython's history logger and bdb, the lazily loaded results writer) is imported before the
fork, once, not once per site."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline import executor


@pytest.mark.integration
def test_the_first_cells_of_a_forked_notebook_import_no_module_the_warm_parent_lacks(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    src = forked_notebook(
        "import sys\nbefore = set(sys.modules)",
        "from evallib import write_results\nwrite_results",
        "import json\nprint(json.dumps(sorted(set(sys.modules) - before)))",
    )
    assert executor.run_forked(src, tmp_path / "out.ipynb", {}, tmp_path) is None
    printed = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[2].outputs[0]["text"]
    assert json.loads(printed) == []
