"""Every public module, class, method and function of evallib has a NumPy-style docstring: ruff's pydocstyle
rules are switched on for the package (``ruff check .`` runs in tests/test_packaging.py) and off only for tests,
benchmarks and tools; every estimator's docstring has a Notes section (its estimand and assumptions)."""

from __future__ import annotations

import ast
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


def _estimators() -> list[tuple[str, ast.ClassDef]]:
    """Public classes under evallib/methods with a ``fit`` method: the estimators."""
    found = []
    for path in sorted((ROOT / "evallib" / "methods").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                if any(isinstance(b, ast.FunctionDef) and b.name == "fit" for b in node.body):
                    found.append((path.relative_to(ROOT).as_posix(), node))
    return found


def test_every_estimator_states_its_estimand_and_assumptions_in_notes() -> None:
    estimators = _estimators()
    assert len(estimators) >= 9, [node.name for _, node in estimators]
    for path, node in estimators:
        doc = ast.get_docstring(node) or ""
        assert "\nNotes\n-----\n" in doc, f"{path}: {node.name} has no NumPy Notes section"
