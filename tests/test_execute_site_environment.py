"""``execute_site`` names the project and the site's params file in the environment for the notebook only: both
variables are restored (or removed) when it returns or raises, so a later notebook in the same process never loads
a params file of an earlier site's (perhaps deleted) project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from evallib.pipeline import execute
from evallib.pipeline.execute import SiteRun, execute_site
from evallib.pipeline.notebook import PARAMS_FILE_ENV
from evallib.pipeline.preflight import SiteJob
from evallib.protocol.paths import ROOT_ENV

JOB = SiteJob("V04", "params/vanguards/V04.yaml", {"site_id": "V04"})


def _seen_by_the_notebook(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}

    def site_in(*args: Any) -> SiteRun:
        seen.update({k: os.environ.get(k) for k in (ROOT_ENV, PARAMS_FILE_ENV)})
        if fail:
            raise OSError("disk full")
        return SiteRun("V04", "evaluated")

    monkeypatch.setattr(execute, "_site_in", site_in)
    return seen


def _outputs(tmp_path: Path) -> str:
    (tmp_path / "outputs").mkdir()
    return str(tmp_path / "outputs")


def test_the_variables_are_removed_after_a_site_when_they_were_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.delenv(PARAMS_FILE_ENV, raising=False)
    seen = _seen_by_the_notebook(monkeypatch)
    execute_site(JOB, str(tmp_path), _outputs(tmp_path), str(tmp_path / "t.ipynb"))
    assert seen == {ROOT_ENV: str(tmp_path), PARAMS_FILE_ENV: str(tmp_path / JOB.params_file)}
    assert ROOT_ENV not in os.environ and PARAMS_FILE_ENV not in os.environ


def test_the_variables_are_restored_after_a_site_that_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ROOT_ENV, "/elsewhere")
    monkeypatch.setenv(PARAMS_FILE_ENV, "/elsewhere/params/x.yaml")
    seen = _seen_by_the_notebook(monkeypatch, fail=True)
    with pytest.raises(OSError):
        execute_site(JOB, str(tmp_path), _outputs(tmp_path), str(tmp_path / "t.ipynb"))
    assert seen[PARAMS_FILE_ENV] == str(tmp_path / JOB.params_file)
    assert os.environ[ROOT_ENV] == "/elsewhere"
    assert os.environ[PARAMS_FILE_ENV] == "/elsewhere/params/x.yaml"
