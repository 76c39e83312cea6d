"""The reference values the tests compare against live in the repository, beside the scripts that produced them.

A fresh clone has nothing outside the repository, so every stored output a test reads must exist here, no test may
point outside it, every script in tests/reference/ has its stored output and README.md lists both, and each peer
library's recomputation agrees with the published numbers to the digits they are printed with.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from .reference import REFERENCE, digits, json_output, values

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: How tests name a stored output or a fixture file.
_NAMED = re.compile(r"""(?<![\w.])(?:values|json_output|digits)\(\s*["']([^"']+)["']|FIXTURES\s*/\s*["']([^"']+)["']""")
#: Published output (R) -> a peer library's recomputation of the same names, and the distribution its script needs.
PEERS = {
    "organ_donations/fixest_organ_donations.out": ("organ_donations/pyfixest_organ_donations.out", "pyfixest"),
    "mpdta/did_mpdta.out": ("mpdta/csdid_mpdta.out", "csdid"),
    "sicily/bernal2017_sicily.out": ("sicily/statsmodels_sicily.out", "statsmodels"),
    "prop99/synthdid_prop99.out": ("prop99/synthdid_py_prop99.out", "synthdid-py"),
}
#: Stored output of a Python script -> the distribution the script needs (rerun where it is installed).
RERUNNABLE = dict(PEERS.values()) | {"nhs_growth/pandas_programme_growth.out": "pandas"}


def _test_sources() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def _reference_files() -> list[Path]:
    return sorted(
        p for p in REFERENCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"
    )


def test_every_reference_file_named_in_the_tests_exists() -> None:
    named = [
        (path, REFERENCE / stored if stored else TESTS / "fixtures" / fixture)
        for path in _test_sources()
        for stored, fixture in _NAMED.findall(path.read_text())
    ]
    assert len(named) >= 10  # the pattern still finds how the tests name their files
    missing = sorted(f"{p.relative_to(ROOT)} names {f.relative_to(ROOT)}" for p, f in named if not f.is_file())
    assert missing == []


def test_no_test_cites_a_file_outside_the_repository() -> None:
    # Spelled in pieces so that this file does not match itself.
    forbidden = [".." + "/shared", "shared" + "/reference", "shared" + "/data", "REFERENCE" + ".md"]
    texts = [p for p in TESTS.rglob("*") if p.is_file() and p.suffix in {".py", ".md", ".R", ".out", ".json", ".txt"}]
    found = sorted(
        f"{p.relative_to(ROOT)}: {word}"
        for p in texts
        if "__pycache__" not in p.parts
        for word in forbidden
        if word in p.read_text()
    )
    assert found == []


def test_every_script_has_its_stored_output_and_the_readme_lists_both() -> None:
    readme = (REFERENCE / "README.md").read_text()
    files = [p for p in _reference_files() if p.name != "README.md"]
    scripts = [p for p in files if p.suffix in {".R", ".py"}]
    assert {p.parent.name for p in scripts} >= {"organ_donations", "mpdta", "sicily", "prop99", "metafor"}
    for script in scripts:
        outputs = [script.with_suffix(".out"), script.with_suffix(".json")]
        assert any(o.is_file() for o in outputs), f"{script.relative_to(ROOT)} has no stored output beside it"
    unlisted = [str(p.relative_to(REFERENCE)) for p in files if str(p.relative_to(REFERENCE)) not in readme]
    assert unlisted == []


def test_each_stored_output_names_its_software() -> None:
    for path in _reference_files():
        if path.suffix == ".out":
            header = [line for line in path.read_text().splitlines() if line.startswith("#")]
            assert header, f"{path.relative_to(ROOT)} has no header naming its software and source"
            assert re.search(r"\d+\.\d+", " ".join(header)) or "version not recorded" in " ".join(header)
            assert values(str(path.relative_to(REFERENCE)))  # parses, one value per name
    assert "metafor_version" in json_output("metafor/metafor_rma.json")["source"]


@pytest.mark.parametrize("published", sorted(PEERS))
def test_peer_recomputation_agrees_with_the_published_values(published: str) -> None:
    """Every published number, to within one unit of its last printed digit (rounding, and the point where an
    iterative solver stops, can move the last digit)."""
    peer = values(PEERS[published][0])
    places = digits(published)
    for name, value in values(published).items():
        assert name in peer, f"{PEERS[published][0]} lacks {name}"
        assert abs(peer[name] - value) <= 10.0 ** -places[name] + 1e-12, (name, value, peer[name])


@pytest.mark.parametrize("stored", sorted(RERUNNABLE))
def test_python_script_reproduces_its_stored_output(stored: str) -> None:
    """Where the library is installed (statsmodels and pandas always; the others with the bench extra or by hand)."""
    distribution = RERUNNABLE[stored]
    try:
        version(distribution)
    except PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed")
    script = REFERENCE / Path(stored).with_suffix(".py")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=True)
    fresh = dict(line.split(" = ") for line in done.stdout.splitlines() if " = " in line and not line.startswith("#"))
    kept = values(stored)
    assert set(fresh) == set(kept)
    for name, value in kept.items():
        assert float(fresh[name]) == pytest.approx(value, rel=1e-7, abs=1e-9), name


def test_readme_names_only_tests_that_exist() -> None:
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)", (REFERENCE / "README.md").read_text())
    assert len(named) >= 20
    missing = sorted({f"{f}::{t}" for f, t in named if f"def {t}(" not in (ROOT / f).read_text()})
    assert missing == []
