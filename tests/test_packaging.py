"""The project's set-up promises: dependencies agree across pyproject, constraints and environment.yml;
the README's quick start holds exactly two commands and CI runs the second."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from .conftest import ROOT

pytestmark = pytest.mark.unit


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict[str, Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in meta["dependencies"] + meta["optional-dependencies"]["test"]]
    return {_norm(r.name): r for r in reqs}


def _constraints() -> dict[str, Version]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            out[_norm(name)] = Version(version)
    return out


def _conda() -> dict[str, Version]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and "=" in dep and not dep.startswith("python="):
            name, version = dep.split("=")
            out[_norm(name)] = Version(version)
    return out


def test_environment_yml_matches_pyproject_and_constraints() -> None:
    py, pins, conda = _pyproject(), _constraints(), _conda()
    pinned_direct = {n: v for n, v in pins.items() if n in py}
    assert set(py) <= set(pins), f"unpinned in constraints.txt: {set(py) - set(pins)}"
    assert set(py) == set(conda), f"pyproject vs environment.yml: {set(py) ^ set(conda)}"
    for name, req in py.items():
        assert conda[name] == pinned_direct[name], f"{name}: environment.yml {conda[name]} vs constraints {pins[name]}"
        assert req.specifier.contains(pins[name]), f"{name} {pins[name]} is outside pyproject's {req.specifier}"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert {"-e ."} == set(next(d for d in env["dependencies"] if isinstance(d, dict))["pip"])


def _quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^#+ *Quick start\s*\n+```[a-z]*\n(.*?)```", text, re.S | re.M | re.I)
    assert block, "README needs a 'Quick start' heading followed by a code block"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_quick_start_has_two_commands_and_ci_runs_the_test_one() -> None:
    cmds = _quick_start()
    assert len(cmds) == 2
    test_cmd = cmds[1].split("#")[0].strip()
    assert test_cmd in (ROOT / ".ci" / "run").read_text()
    assert "run" in cmds[0] and "test" in test_cmd


def test_bundled_data_carries_its_licence() -> None:
    readme = (ROOT / "evallib" / "data" / "nhs" / "README.md").read_text()
    assert "Open Government Licence v3.0" in readme


def test_ruff_clean() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
