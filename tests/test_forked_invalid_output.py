"""An output that breaks the notebook schema fails its cell in the forked executor, as nbformat's ``new_output``
made it fail before outputs were built without validation: papermill's closing save only logs an invalid
notebook, and neither the tidying nor the page exporter validates it again, so nothing later would stop it from
being published as ``report.ipynb`` (which Jupyter then refuses to open)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline import executor


@pytest.mark.integration
def test_a_display_that_breaks_the_schema_fails_its_cell(tmp_path: Path, forked_notebook: Callable[..., Path]) -> None:
    src = forked_notebook("from IPython.display import publish_display_data\npublish_display_data({'text/plain': 5})")
    failure = executor.run_forked(src, tmp_path / "out.ipynb", {}, tmp_path)
    assert failure is not None
    nbformat.validate(nbformat.read(tmp_path / "out.ipynb", as_version=4))  # what is written still validates


@pytest.mark.integration
def test_a_result_whose_format_breaks_the_schema_fails_its_cell(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    src = forked_notebook(
        "class Odd:\n    def _repr_html_(self):\n        return 5\n    def __repr__(self):\n        return 'odd'\nOdd()",
    )
    executor.run_forked(src, tmp_path / "out.ipynb", {}, tmp_path)
    nbformat.validate(nbformat.read(tmp_path / "out.ipynb", as_version=4))
