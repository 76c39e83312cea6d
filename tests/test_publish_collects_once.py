"""Publishing reads and verifies the sites once when no programme notebook runs in between (the site is built
from what was just verified, byte for byte as before), and again after the notebook has run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import evallib.pipeline.publish as publish_module
import evallib.reporting.static_site as static_site
from evallib.pipeline.execute import SiteRun
from evallib.pipeline.publish import publish

from .conftest import tree_digest

pytestmark = pytest.mark.integration


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = publish_module.collect_sites

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(publish_module, "collect_sites", counting)
    monkeypatch.setattr(static_site, "collect_sites", counting)
    return calls


def _copy(published_project: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(published_project, root, symlinks=True)
    return root


def test_an_unchanged_programme_builds_the_site_from_the_sites_just_verified(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(published_project, tmp_path)
    before = tree_digest(root / "outputs" / "site")
    calls = _counting(monkeypatch)
    done = publish(root, root / "outputs", params_dir=root / "params")
    assert done.programme.status == "unchanged"
    assert len(calls) == 1
    assert tree_digest(root / "outputs" / "site") == before


def test_after_the_programme_notebook_runs_the_sites_are_read_and_verified_again(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(published_project, tmp_path)
    calls = _counting(monkeypatch)
    monkeypatch.setattr(publish_module, "programme_verified", lambda *_: False)
    monkeypatch.setattr(publish_module, "run_programme", lambda *_: SiteRun("programme", "published", "made"))
    publish(root, root / "outputs", params_dir=root / "params")
    assert len(calls) == 2
