"""Warm Dask workers (pipeline/dask_warm.py): sites run from files shipped to the workers, published by the client.

A real ``distributed.LocalCluster`` on 127.0.0.1 (two worker processes, one thread each). The workers are made
unable to open anything under the client's project (an audit hook that refuses it, in their own working
directory), so a run that matches the local one byte for byte proves nothing was read from a shared path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from evallib.pipeline import dask_warm
from evallib.pipeline.batch import run_batch
from evallib.pipeline.execute import SiteRun
from evallib.pipeline.preflight import TEMPLATE, preflight
from evallib.protocol.params import find_params

from .conftest import ROOT, make_project

distributed = pytest.importorskip("dask.distributed")


def _cluster() -> Any:
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )


def _wall_off(client: Any, project: Path, workdir: Path) -> None:
    """Each worker moves to ``workdir`` and can no longer open, list or enter anything under ``project``."""
    fenced = str(project.resolve())

    def install(fence: str, cwd: str) -> None:
        import os
        import sys

        def refuse(event: str, args: tuple[Any, ...]) -> None:
            if event in ("open", "os.listdir", "os.scandir", "os.chdir") and args and isinstance(args[0], str | Path):
                if os.path.abspath(os.fspath(args[0])).startswith(fence):
                    raise PermissionError(f"the worker read the client's project: {args[0]}")

        os.chdir(cwd)
        sys.addaudithook(refuse)  # kept for the worker's life, inherited by every process it forks

    client.run(install, fenced, str(workdir))
    with pytest.raises(PermissionError):  # the fence holds
        client.run(lambda path: open(path).close(), str(project / TEMPLATE))


def _site_jobs(root: Path) -> list[Any]:
    return preflight(find_params(root / "params", None), root)


def test_site_files_ship_the_params_notebook_and_own_data(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ["V04"], programme=False, small=True)
    jobs = {j.site_id: j for j in _site_jobs(root)}
    files = dask_warm.site_files(root, jobs["S01"])
    assert files[TEMPLATE.as_posix()] == (root / TEMPLATE).read_bytes()
    assert files["params/other/S01.yaml"] == (root / "params" / "other" / "S01.yaml").read_bytes()
    assert files["data/small.csv"] == (root / "data" / "small.csv").read_bytes()
    assert "data/small.csv" not in dask_warm.site_files(root, jobs["V04"])  # bundled data travel with evallib


def test_a_returned_report_that_does_not_match_its_record_is_not_published(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ["V04"], programme=False)
    [job] = _site_jobs(root)
    outputs = root / "outputs"
    outputs.mkdir()
    record = {"fingerprint": job.fingerprint, "result_fingerprint": job.result_fingerprint}
    files = {
        "results.json": b"{}",
        "report.html": b"<html></html>",
        "report.ipynb": b"{}",
        "run.json": json.dumps({**record, "results_sha256": "0", "report_sha256": "0"}).encode(),
    }
    run = dask_warm.publish_returned(job, SiteRun("V04", "evaluated"), files, outputs)
    assert run.status == "failed" and "does not match its run record" in run.reason
    assert json.loads((outputs / "V04" / "failure.json").read_text())["status"] == "failed"
    assert not (outputs / "V04" / "results.json").exists()
    assert not any((outputs / ".staging").glob("*"))


def test_a_fault_publishing_a_returned_report_fails_that_site_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    root = make_project(tmp_path / "p", ["V04"], programme=False)
    [job] = _site_jobs(root)
    (root / "outputs").mkdir()

    def full(*args: Any) -> SiteRun:
        raise OSError(errno.ENOSPC, "No space left on device", str(root / "outputs" / ".staging" / "x"))

    monkeypatch.setattr(dask_warm, "publish_returned", full)
    run = dask_warm.publish_safely(job, (SiteRun("V04", "evaluated"), {}), root / "outputs", root)
    assert run.status == "failed" and "outputs" in run.reason and str(root) not in run.reason
    assert json.loads((root / "outputs" / "V04" / "failure.json").read_text())["reason"] == run.reason


def test_a_worker_with_several_blas_threads_fails_the_site_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "p", ["V04"], programme=False)
    [job] = _site_jobs(root)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    run, files = dask_warm.run_site(job, dask_warm.site_files(root, job), (), {})
    assert run.status == "failed" and "OPENBLAS_NUM_THREADS" in run.reason and "dask worker" in run.reason
    assert files == {}


@pytest.mark.e2e
def test_warm_dask_run_matches_local_run_without_reading_the_project(tmp_path: Path) -> None:
    local = make_project(tmp_path / "local", ["V04", "V45"], programme=False, small=True)
    on_dask = make_project(tmp_path / "dask", ["V04", "V45"], programme=False, small=True)
    assert run_batch(None, root=local, progress=False).exit_code == 0
    (tmp_path / "elsewhere").mkdir()
    with _cluster() as cluster, distributed.Client(cluster) as client:
        _wall_off(client, on_dask, tmp_path / "elsewhere")
        result = run_batch(None, root=on_dask, progress=False, scheduler=cluster.scheduler_address)

        def profiling(dask_worker: Any) -> tuple[bool, bool]:
            from evallib.pipeline import dask_warm

            running = dask_worker.periodic_callbacks["profile"].is_running()
            return bool(dask_warm._WARMED), running

        states = list(client.run(profiling).values())
    assert (True, False) in states and (True, True) not in states  # a warm worker's profiler is stopped
    assert result.exit_code == 0, result.runs
    assert {r.site_id: r.status for r in result.runs} == {
        "S01": "evaluated",
        "V04": "evaluated",
        "V45": "not evaluable",
    }
    for site in ("S01", "V04", "V45"):
        a = (local / "outputs" / site / "results.json").read_bytes()
        assert a == (on_dask / "outputs" / site / "results.json").read_bytes()  # byte-identical
        assert (on_dask / "outputs" / "site" / f"{site}.html").exists()  # signed here, so published
    compare = [
        sys.executable,
        str(ROOT / "tools" / "compare_results.py"),
        str(local / "outputs"),
        str(on_dask / "outputs"),
    ]
    assert subprocess.run(compare, capture_output=True, text=True, check=False).returncode == 0
    assert not (on_dask / "outputs" / ".staging").exists()


@pytest.mark.e2e
def test_a_failing_site_and_a_dead_worker_on_dask_fail_only_their_own_sites(tmp_path: Path) -> None:
    import dask

    root = make_project(tmp_path / "p", ["V04", "V45"], programme=False, small=True)
    path = root / "notebooks" / "site_evaluation.ipynb"
    nb = nbformat.read(path, as_version=4)
    # S01 kills its Dask worker once the other two sites are published (an idle worker steals what was queued).
    done = [str(root / "outputs" / "V04" / "results.json"), str(root / "outputs" / "V45" / "failure.json")]
    code = (
        "import os, signal, time\nif site_id == 'V45':\n    raise RuntimeError('boom')\n"
        f"if site_id == 'S01':\n    t = time.time()\n    while not all(map(os.path.exists, {done!r})) "
        "and time.time() - t < 240:\n        time.sleep(0.2)\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    )
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, path)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), _cluster() as cluster:  # no retry
        result = run_batch(None, root=root, progress=False, scheduler=cluster.scheduler_address)
    runs = {r.site_id: r for r in result.runs}
    assert runs["V04"].status == "evaluated"
    assert (root / "outputs" / "V04" / "results.json").exists()
    assert runs["V45"].status == "failed" and "boom" in runs["V45"].reason
    assert (root / "outputs" / "V45" / "failed.ipynb").exists()
    assert runs["S01"].status == "failed" and "KilledWorker" in runs["S01"].reason
    for site in ("V45", "S01"):
        assert json.loads((root / "outputs" / site / "failure.json").read_text())["status"] == "failed"
