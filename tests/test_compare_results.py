"""tools/compare_results.py: the check that a change which should alter no result did not."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location("compare_results", ROOT / "tools" / "compare_results.py")
compare_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_results)  # type: ignore[union-attr]

RESULT = {
    "site_id": "V01",
    "status": "evaluated",
    "flags": ["Short follow-up"],
    "results": [{"term": "treated_x_post", "estimate": -0.0123, "ci_low": None, "p_value": 0.5}],
    "robustness": {"survives": True},
    "provenance": {"git_commit": "aaa", "params_sha256": "p1"},
}


def _folder(root: Path, name: str, sites: dict[str, dict]) -> Path:
    folder = root / name
    for site, content in sites.items():
        (folder / site).mkdir(parents=True)
        (folder / site / "results.json").write_text(json.dumps(content))
    return folder


def test_folders_differing_only_in_the_commit_are_identical(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    new = copy.deepcopy(RESULT)
    new["provenance"]["git_commit"] = "bbb"
    a = _folder(tmp_path, "a", {"V01": RESULT})
    b = _folder(tmp_path, "b", {"V01": new})
    assert compare_results.main([str(a), str(b)]) == 0
    assert (
        "1 site compared, ignoring provenance.git_commit, provenance.fingerprint: identical" in capsys.readouterr().out
    )


def test_any_changed_value_is_reported_with_its_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    new = copy.deepcopy(RESULT)
    new["results"][0]["estimate"] = -0.0124
    new["results"][0]["ci_low"] = -1.0
    new["robustness"]["survives"] = 1  # a bool that became a number is a difference
    new["flags"].append("another caution")
    a = _folder(tmp_path, "a", {"V01": RESULT, "V02": RESULT})
    b = _folder(tmp_path, "b", {"V01": new, "V03": RESULT})
    assert compare_results.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "V01: results[0].estimate: -0.0123 -> -0.0124" in out
    assert "V01: results[0].ci_low: None -> -1.0" in out
    assert "V01: robustness.survives: True -> 1" in out
    assert "V01: flags: 1 items -> 2 items" in out
    assert "V02: only in" in out and "V03: only in" in out


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    assert compare_results.main([str(tmp_path / "nope"), str(tmp_path)]) == 2
