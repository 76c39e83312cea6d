"""End-to-end: the batch command on a few real sites, failures, dead kernels, preflight, Papermill CLI, nbval."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import nbformat
import pytest

from evallib.errors import ParamsError
from evallib.pipeline.batch import run_batch
from evallib.pipeline.cli import main as cli_main

from .conftest import ROOT

pytestmark = pytest.mark.e2e
TEMPLATE = ROOT / "notebooks" / "site_evaluation.ipynb"


def _project(tmp_path: Path, sites: list[str], programme: bool = False) -> Path:
    """A minimal project tree: the notebook template(s) and the named sites' params."""
    (tmp_path / "notebooks").mkdir()
    shutil.copy(TEMPLATE, tmp_path / "notebooks")
    if programme:
        shutil.copy(ROOT / "notebooks" / "programme_summary.ipynb", tmp_path / "notebooks")
    for sid in sites:
        kind = "vanguards" if sid.startswith("V") else "ics"
        (tmp_path / "params" / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "params" / kind / f"{sid}.yaml", tmp_path / "params" / kind)
    return tmp_path


def _no_machine_paths(text: str, tmp: Path) -> None:
    for bad in (str(tmp), str(ROOT), sys.prefix):
        assert bad not in text, f"absolute path {bad} leaked"


def test_batch_publishes_every_site(tmp_path: Path) -> None:
    root = _project(tmp_path, ["V04", "V45", "I12"], programme=True)
    result = run_batch(None, root=root, jobs=2, progress=False)
    assert result.exit_code == 0
    assert {r.site_id: r.status for r in result.runs} == {
        "I12": "evaluated",
        "V04": "evaluated",
        "V45": "not evaluable",
        "programme": "published",
    }
    out = root / "outputs"
    index = (out / "site" / "index.html").read_text()
    assert "Open Government Licence v3.0" in index
    for sid in ("V04", "V45", "I12"):
        res = json.loads((out / sid / "results.json").read_text())
        assert res["site_id"] == sid and res["status"] in ("evaluated", "not evaluable")
        assert f"href='{sid}.html'" in index
        page = (out / "site" / f"{sid}.html").read_text()
        assert "Open Government Licence" in page and "def " not in page  # code hidden
        _no_machine_paths(page, tmp_path)
        nb = (out / sid / "report.ipynb").read_text()
        _no_machine_paths(nb, tmp_path)
    assert "does not act on a local population" in index
    assert "href='programme.html'" in index
    from evallib.reporting.disclosure import check_published

    assert check_published(out / "site") == []  # no unsuppressed count in any published table
    front = (out / "site" / "programme.html").read_text()
    assert "pooled" in front.lower() and "PACS" in front and "Open Government Licence" in front
    _no_machine_paths(front, tmp_path)
    assert re.search(
        r'data-status="evaluated".*?data-sort="V04">.*?[+-][0-9.]+%.*?[+-][0-9.]+% to [+-][0-9.]+%', index, re.S
    )
    assert json.loads((out / "run-summary.json").read_text())["runs"][0]["site_id"] == "I12"
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


@pytest.mark.parametrize("executor", ["forked", "kernel"])
def test_failures_keep_the_last_good_report(tmp_path: Path, executor: str) -> None:
    root = _project(tmp_path, ["V04", "V08"])
    assert run_batch(None, root=root, jobs=2, progress=False, executor=executor).exit_code == 0
    good = (root / "outputs" / "V04" / "report.html").read_bytes()
    # A template whose code fails for V04 (cell error) and kills the kernel for V08.
    nb = nbformat.read(TEMPLATE, as_version=4)
    nb.cells.insert(
        3,
        nbformat.v4.new_code_cell(
            'if site_id == "V04":\n    raise RuntimeError("boom in V04")\nif site_id == "V08":\n    import os\n    os._exit(1)'
        ),
    )
    nbformat.write(nb, root / "notebooks" / "site_evaluation.ipynb")
    result = run_batch(None, root=root, jobs=2, progress=False, executor=executor)
    assert result.exit_code == 1
    runs = {r.site_id: r for r in result.runs}
    assert runs["V04"].status == "failed" and "boom in V04" in runs["V04"].reason
    assert runs["V08"].status == "failed"
    assert ("kernel died" if executor == "kernel" else "process running it died (exit code 1)") in runs["V08"].reason
    out = root / "outputs"
    assert (out / "V04" / "report.html").read_bytes() == good  # previous report untouched
    failed = nbformat.read(out / "V04" / "failed.ipynb", as_version=4)
    assert failed.metadata.papermill.exception and "boom in V04" in json.dumps(
        [c.get("outputs", []) for c in failed.cells]
    )
    dead = nbformat.read(out / "V08" / "failed.ipynb", as_version=4)
    assert dead.metadata.papermill.exception and "Execution failed" in dead.cells[0].source  # marked by the runner
    assert json.loads((out / "V08" / "failure.json").read_text())["status"] == "failed"
    index = (out / "site" / "index.html").read_text()
    assert index.count("last run failed") == 2 and "previous report shown" in index


def test_invalid_params_stop_the_batch_before_any_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _project(tmp_path, ["V04", "V45"])
    bad = root / "params" / "vanguards" / "V45.yaml"
    bad.write_text(bad.read_text().replace("seed:", "sed:"))
    with pytest.raises(ParamsError, match="'sed' is not a known field"):
        run_batch(None, root=root, progress=False)
    assert not (root / "outputs").exists()
    monkeypatch.chdir(root)
    assert cli_main(["run", "V04", "V45", "--no-progress"]) == 2
    assert "V45.yaml" in capsys.readouterr().err
    assert cli_main(["validate", "V04"]) == 0


def test_plain_papermill_cli_accepts_a_params_file(tmp_path: Path) -> None:
    env = {**os.environ, "EVALLIB_PROJECT_ROOT": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(TEMPLATE),
        str(tmp_path / "out.ipynb"),
        "-f",
        str(ROOT / "params" / "vanguards" / "V45.yaml"),
        "--no-progress-bar",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    # Exploration goes to scratch/, never to the published outputs/.
    assert json.loads((tmp_path / "scratch" / "V45" / "results.json").read_text())["status"] == "not evaluable"
    assert not (tmp_path / "outputs").exists()


def test_site_notebook_passes_nbval_lax(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    nb = tmp_path / "notebooks" / "site_evaluation.ipynb"
    shutil.copy(TEMPLATE, nb)
    (tmp_path / "params" / "vanguards").mkdir(parents=True)  # the notebook's site_id names a params file
    shutil.copy(ROOT / "params" / "vanguards" / "V04.yaml", tmp_path / "params" / "vanguards")
    env = {**os.environ, "EVALLIB_PROJECT_ROOT": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        str(nb),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"\d+ passed", done.stdout)
    assert (tmp_path / "scratch" / "V04" / "results.json").exists()  # the default site is evaluated, in scratch/


@pytest.mark.unit
def test_run_forked_leaves_the_parents_garbage_collector_as_it_was(tmp_path: Path) -> None:
    # gc.freeze() runs in the parent and is never undone: cyclic garbage present at each fork is moved to the
    # permanent generation and never collected in a worker that runs many sites (and the batch process).
    from evallib.pipeline.executor import available, run_forked, warm_up

    if not available():
        pytest.skip("no fork")
    warm_up()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("y = 2")]
    nbformat.write(nb, tmp_path / "t.ipynb")

    class Node:
        pass

    cycle = Node()
    cycle.self = cycle  # type: ignore[attr-defined]
    ref = weakref.ref(cycle)
    del cycle
    try:
        assert run_forked(tmp_path / "t.ipynb", tmp_path / "o.ipynb", {}, tmp_path) is None
        gc.collect()
        assert ref() is None
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
