"""A worker killed mid-site has the notebook it saved so far kept (``execute.salvage_failure``), but never through a
link: a ``.staging`` that is a link, or a site's staging folder that is one, is never followed (the failure is
recorded without the notebook, and nothing at the link's target is read or rewritten)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline.execute import salvage_failure
from evallib.pipeline.preflight import SiteJob

pytestmark = pytest.mark.unit

WHY = "the worker process running it died (signal 9)"


def _notebook(folder: Path) -> Path:
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, folder / "report.ipynb")
    return folder / "report.ipynb"


def _recorded(outputs: Path) -> tuple[dict, bool]:
    folder = outputs / "V04"
    return json.loads((folder / "failure.json").read_text()), (folder / "failed.ipynb").exists()


def test_the_notebook_so_far_is_kept_from_the_sites_own_staging_folder(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    _notebook(outputs / ".staging" / "V04-0123abcd")
    _notebook(outputs / ".staging" / "V04-extra-0123abcd")  # another site whose id starts with this one's
    why = salvage_failure(outputs, tmp_path, SiteJob("V04", "params/V04.yaml", {}), WHY)
    record, kept = _recorded(outputs)
    assert kept and record["reason"] == why and "stopped part-way" in why
    failed = nbformat.read(outputs / "V04" / "failed.ipynb", as_version=4)
    assert "Execution failed" in failed.cells[0].source


@pytest.mark.parametrize("linked", [".staging", "site folder"])
def test_a_planted_link_in_staging_is_never_followed(tmp_path: Path, linked: str) -> None:
    outputs, elsewhere = tmp_path / "outputs", tmp_path / "elsewhere"
    outputs.mkdir()
    if linked == ".staging":
        target = _notebook(elsewhere / "V04-0123abcd")
        (outputs / ".staging").symlink_to(elsewhere, target_is_directory=True)
    else:
        target = _notebook(elsewhere / "V04")
        (outputs / ".staging").mkdir()
        (outputs / ".staging" / "V04-0123abcd").symlink_to(elsewhere / "V04", target_is_directory=True)
    before = target.read_bytes()
    why = salvage_failure(outputs, tmp_path, SiteJob("V04", "params/V04.yaml", {}), WHY)
    record, kept = _recorded(outputs)
    assert record["reason"] == why == WHY and not kept  # recorded, without a notebook read through the link
    assert target.read_bytes() == before  # nothing at the link's target rewritten
