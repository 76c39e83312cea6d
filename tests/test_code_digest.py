"""The code part of the fingerprint covers the whole package and its report templates, wherever
``record/fingerprint.py`` sits in the tree: a change to an estimator or to a template reruns every site."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.unit


def _digest(parent: Path) -> str:
    """code_digest() of the evallib under ``parent`` (a fresh process, so nothing is cached)."""
    code = "from evallib.evaluation.record.fingerprint import code_digest; print(code_digest())"
    env = {**os.environ, "PYTHONPATH": str(parent)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=parent, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_a_change_to_an_estimator_or_a_template_changes_the_code_digest(tmp_path: Path) -> None:
    copy = tmp_path / "evallib"
    shutil.copytree(ROOT / "evallib", copy, ignore=shutil.ignore_patterns("data", "__pycache__", "*.pyc"))
    before = _digest(tmp_path)
    with (copy / "methods" / "did" / "twfe.py").open("a") as fh:
        fh.write("# an edit to an estimator\n")
    after_method = _digest(tmp_path)
    with (copy / "reporting" / "templates" / "style.css").open("a") as fh:
        fh.write("/* an edit to the stylesheet */\n")
    after_template = _digest(tmp_path)
    assert len({before, after_method, after_template}) == 3
