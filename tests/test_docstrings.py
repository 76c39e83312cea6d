"""Every public module, class, method and function of evallib has a NumPy-style docstring: ruff's pydocstyle
rules are switched on for the package (``ruff check .`` runs in tests/test_packaging.py) and off only for tests,
benchmarks and tools."""

from __future__ import annotations

import tomllib

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.unit


def _lint() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]


def test_docstring_rules_are_on_with_the_numpy_convention() -> None:
    lint = _lint()
    assert "D" in lint["select"]
    assert lint["pydocstyle"]["convention"] == "numpy"
    # Missing docstrings on public modules, classes, methods and functions are never ignored.
    assert not {"D", "D1", "D100", "D101", "D102", "D103", "D104"} & set(lint["ignore"])


def test_docstring_rules_are_off_only_outside_the_package() -> None:
    for pattern, rules in _lint().get("per-file-ignores", {}).items():
        if any(r == "D" or r.startswith("D1") for r in rules):
            assert pattern.split("/")[0] in ("tests", "benchmarks", "tools"), pattern
