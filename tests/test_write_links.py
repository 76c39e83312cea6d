"""No file is touched through a link: every file and folder the pipeline writes under ``outputs/`` and
``scratch/`` is refused when a link (or an object evallib did not make) stands at its name, with a message
naming the path and the fix, never following the link, truncating its target or echoing either.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from evallib.errors import EvalLibError
from evallib.evaluation.record import results_file
from evallib.evaluation.record.results_file import write_results
from evallib.pipeline.cli import main as cli_main
from evallib.pipeline.folders import record_failure, recover
from evallib.protocol.paths import ROOT_ENV

from .conftest import tree_digest

PRECIOUS = "precious: must never be truncated, followed or shown\n"


def _victim(tmp_path: Path) -> Path:
    """A folder outside the project that a planted link points to, holding files with evallib's names."""
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("failure.json", "failed.ipynb", "results.json", "run.json", "report.html"):
        (victim / name).write_text(PRECIOUS)
    return victim


@pytest.mark.unit
def test_a_linked_site_folder_never_receives_a_failure_record(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    victim = _victim(tmp_path)
    before = tree_digest(victim)
    (outputs / "X99").symlink_to(victim, target_is_directory=True)
    notebook = tmp_path / "report.ipynb"
    notebook.write_text("{}")
    with pytest.raises(EvalLibError) as caught:
        record_failure(outputs, "X99", "the worker process running it died (signal 9)", notebook=notebook)
    message = str(caught.value)
    assert "X99 is a symbolic link" in message and "remove it" in message
    assert str(victim) not in message and "victim" not in message and PRECIOUS.strip() not in message
    assert tree_digest(victim) == before


@pytest.mark.unit
def test_recovery_never_restores_a_planted_old_copy_link(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    victim = _victim(tmp_path)
    (outputs / ".V04.old-1234abcd").symlink_to(victim, target_is_directory=True)
    with pytest.raises(EvalLibError, match=r"\.V04\.old-1234abcd is a symbolic link"):
        recover(outputs)
    assert not (outputs / "V04").exists() and not (outputs / "V04").is_symlink()  # not put in place


@pytest.mark.unit
def test_a_linked_staging_folder_is_refused_not_followed(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    victim = _victim(tmp_path)
    before = tree_digest(victim)
    (outputs / ".staging").symlink_to(victim, target_is_directory=True)
    with pytest.raises(EvalLibError, match=r"\.staging is a symbolic link"):
        recover(outputs)
    assert tree_digest(victim) == before


def _evaluation(site_id: str) -> SimpleNamespace:
    return SimpleNamespace(protocol=SimpleNamespace(site_id=site_id), to_json_dict=lambda: {"site_id": site_id})


@pytest.mark.unit
def test_scratch_results_are_never_written_through_a_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    (root / "scratch" / "V04").mkdir(parents=True)
    monkeypatch.setenv(ROOT_ENV, str(root))
    victim = _victim(tmp_path)
    before = tree_digest(victim)
    # A link at the temporary name the writer used to use: never opened, never truncated.
    (root / "scratch" / "V04" / ".results.json.tmp").symlink_to(victim / "results.json")
    monkeypatch.setattr(results_file, "provenance", lambda protocol: {})  # the stand-in has no data to hash
    written = write_results(_evaluation("V04"))
    assert json.loads(written.read_text()) == {"site_id": "V04", "provenance": {}} and not written.is_symlink()
    assert tree_digest(victim) == before
    # A planted scratch/<site> link: refused, with the path and the fix.
    (root / "scratch" / "V05").symlink_to(victim, target_is_directory=True)
    with pytest.raises(EvalLibError, match=r"scratch/V05 is a symbolic link.*remove it"):
        write_results(_evaluation("V05"))
    assert tree_digest(victim) == before


def _entries(outputs: Path) -> dict[str, int]:
    return {p.name: os.lstat(p).st_mtime_ns for p in outputs.iterdir() if p.name != ".lock"}


@pytest.mark.unit
def test_calibration_tables_are_never_written_through_a_link(tmp_path: Path) -> None:
    import pandas as pd

    from evallib.pipeline.calibrate import _write_csv

    folder = tmp_path / "outputs" / "calibration"
    folder.mkdir(parents=True)
    victim = _victim(tmp_path)
    before = tree_digest(victim)
    (folder / ".summary.csv.tmp").symlink_to(victim / "results.json")  # the temporary name it used to use
    (folder / "fake_sites.csv").symlink_to(victim / "run.json")
    _write_csv(pd.DataFrame({"a": [1]}), folder / "summary.csv")
    assert (folder / "summary.csv").read_text() == "a\n1\n"
    with pytest.raises(EvalLibError, match=r"calibration/fake_sites.csv is a symbolic link"):
        _write_csv(pd.DataFrame({"a": [1]}), folder / "fake_sites.csv")
    assert tree_digest(victim) == before


def _copy(src: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(src, root, symlinks=True)
    return root


@pytest.mark.e2e
@pytest.mark.parametrize("planted", ["V04", ".staging", "V04/failure.json", "site"])
def test_a_planted_link_in_outputs_stops_the_run_before_anything_is_written(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, planted: str
) -> None:
    root = _copy(published_project, tmp_path)
    victim = _victim(tmp_path)
    target = root / "outputs" / planted
    if target.is_dir():
        shutil.copytree(target, victim, dirs_exist_ok=True)  # the target looks like the real thing
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    before = tree_digest(victim)
    target.symlink_to(victim / "failure.json" if planted.endswith(".json") else victim)
    outputs_before = _entries(root / "outputs")
    monkeypatch.chdir(root)
    # A failing site: on the old code its failure.json and failed.ipynb went into the link's target.
    nb = root / "notebooks" / "site_evaluation.ipynb"
    nb.write_text(
        nb.read_text().replace("from evallib import ", "raise RuntimeError('boom')\\nfrom evallib import ", 1)
    )
    assert cli_main(["run", "V04", "--force", "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"outputs/{planted} is a symbolic link" in lines[0] and "then run again" in lines[0]
    assert str(tmp_path) not in err and "victim" not in err and "precious" not in err and "Traceback" not in err
    assert tree_digest(victim) == before
    assert _entries(root / "outputs") == outputs_before  # nothing written (the lock file aside)
    assert cli_main(["publish"]) == 2  # publishing refuses it too
    assert tree_digest(victim) == before
