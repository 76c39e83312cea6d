"""The type hints are checked: mypy, configured in pyproject.toml (``[tool.mypy]``), finds no error in evallib,
and the package says it is typed (PEP 561 ``py.typed``, shipped as package data)."""

from __future__ import annotations

import tomllib

import pytest
from mypy import api

from .conftest import ROOT

pytestmark = pytest.mark.unit


def _mypy_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def test_mypy_finds_no_error_in_evallib() -> None:
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(ROOT / "evallib"),
        ]
    )
    assert status == 0, f"mypy found errors in evallib:\n{stdout}{stderr}"
    assert "Success: no issues found" in stdout


def test_mypy_config_checks_every_module_with_no_blanket_ignore() -> None:
    config = _mypy_config()
    assert config["files"] == ["evallib"]
    assert config["python_version"] == "3.11"
    for flag in ("check_untyped_defs", "disallow_untyped_defs", "disallow_incomplete_defs", "disallow_any_generics"):
        assert config[flag] is True, flag
    assert "ignore-without-code" in config["enable_error_code"]
    for override in config.get("overrides", []):
        assert not override.get("ignore_errors"), f"errors switched off for {override['module']}"
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        assert not any(m.startswith("evallib") for m in modules), f"evallib relaxed in mypy: {modules}"


def test_package_is_marked_typed_and_ships_the_marker() -> None:
    assert (ROOT / "evallib" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["evallib"]
