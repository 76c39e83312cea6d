"""Time limits: no stuck process holds the batch (and the outputs lock) for ever. A site past ``--site-timeout``
(a notebook cell that never ends, a stopped worker) is killed with every process it started and recorded as
failed ("timed out") while the other sites succeed; the programme notebook has the same limit; a Dask cluster
that runs nothing is given up on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from evallib.pipeline.cli import main as cli_main
from evallib.pipeline.pool import WorkerPool

from .conftest import tree_digest

LIMIT = "20"  # seconds: a site takes 1-5 s here, so only the stuck one reaches it


def _task(kind: str, pidfile: str = "") -> str:
    """A pool task: ``endless`` sleeps for ever after starting a process in a session of its own (as a
    Jupyter kernel is started), ``stopped`` stops its own worker, ``quick`` returns at once."""
    if kind == "endless":
        child = subprocess.Popen(["sleep", "1000"], start_new_session=True)
        Path(pidfile).write_text(str(child.pid))
        time.sleep(1000)
    if kind == "stopped":
        os.kill(os.getpid(), signal.SIGSTOP)
    return "done"


def _slow_warm_up() -> None:
    time.sleep(3)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while _alive(pid):
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.unit
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_the_pool_stops_a_task_past_its_limit_with_every_process_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "kernel.pid"
    pool = WorkerPool(1, timeout=2)
    # Without the limit this would wait for ever: after 120 s a watchdog kills every worker, so the test fails.
    done = threading.Event()

    def watchdog() -> None:
        if done.wait(120):
            return
        while not done.wait(1):
            for pid in pool.pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        jobs = [("endless", ("endless", str(pidfile))), ("stopped", ("stopped",)), ("quick", ("quick",))]
        results = dict(pool.run(_task, jobs, on_error=lambda job, why: why))
    finally:
        done.set()
        pool.close()
    assert results["quick"] == "done"  # the batch went on with a fresh worker
    for job in ("endless", "stopped"):
        assert results[job].startswith("timed out: stopped after 2 s") and "--site-timeout" in results[job]
    assert _gone(int(pidfile.read_text()))  # the process in its own session went with its worker


@pytest.mark.unit
def test_the_warm_up_is_not_charged_to_the_first_site() -> None:
    pool = WorkerPool(1, initializer=_slow_warm_up, timeout=2)
    try:
        assert dict(pool.run(_task, [("quick", ("quick",))], on_error=lambda job, why: why)) == {"quick": "done"}
    finally:
        pool.close()


@pytest.mark.integration
def test_a_forked_notebook_past_its_limit_is_stopped(tmp_path: Path) -> None:
    from evallib.pipeline import executor

    executor._register()
    template = tmp_path / "endless.ipynb"
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(1000)")]
    nbformat.write(nb, template)
    failure = executor.run_forked(template, tmp_path / "out.ipynb", {}, tmp_path, timeout=2)
    assert failure is not None and failure.startswith("timed out: stopped after 2 s")


@pytest.mark.integration
def test_a_dask_cluster_that_runs_nothing_is_given_up_on(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    from evallib.pipeline.batch import _run_on_dask

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    jobs = [SimpleNamespace(site_id=s, params_file=f"params/{s}.yaml") for s in ("V04", "V45")]
    bar = SimpleNamespace(set_postfix_str=lambda text: None, update=lambda: None)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:  # no worker
        runs = _run_on_dask(cluster.scheduler_address, jobs, tmp_path, outputs, tmp_path / "nb.ipynb", bar, 2)
    assert sorted((r.site_id, r.status) for r in runs) == [("V04", "failed"), ("V45", "failed")]
    for sid in ("V04", "V45"):
        reason = json.loads((outputs / sid / "failure.json").read_text())["reason"]
        assert reason.startswith("timed out") and "no site on the cluster finished" in reason


def _copy(src: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(src, root, symlinks=True)
    return root


def _inject(root: Path, code: str) -> None:
    path = root / "notebooks" / "site_evaluation.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, path)


def _report(root: Path, sid: str) -> dict[str, str]:
    return {k: v for k, v in tree_digest(root / "outputs" / sid).items() if k in ("results.json", "report.html")}


def _check_timed_out_alone(root: Path, last_good: dict[str, str], summary: str) -> None:
    failure = json.loads((root / "outputs" / "S01" / "failure.json").read_text())
    assert failure["reason"].startswith(f"timed out: stopped after {LIMIT} s"), failure
    assert _report(root, "S01") == last_good  # the last good report stays
    for sid, status in (("V04", "evaluated"), ("V45", "not evaluable")):
        assert f"{sid:<6} {status}" in summary  # the others ran and succeeded
        assert not (root / "outputs" / sid / "failure.json").exists()
    assert not (root / "outputs" / ".staging").exists()


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_cell_that_never_ends_fails_its_site_alone(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    last_good = _report(root, "S01")
    pidfile = tmp_path / "pids"
    _inject(
        root,
        f"import os, time\nif site_id == 'S01':\n    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(100000)",
    )
    monkeypatch.chdir(root)
    assert cli_main(["run", "--jobs", "2", "--no-progress", "--site-timeout", LIMIT]) == 1
    _check_timed_out_alone(root, last_good, capsys.readouterr().out)
    assert _gone(int(pidfile.read_text()))  # the notebook process was stopped with its worker
    failed = (root / "outputs" / "S01" / "failed.ipynb").read_text(encoding="utf-8")
    assert "time.sleep(100000)" in failed and "timed out" in failed  # the notebook as far as it got, marked


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_stopped_worker_fails_its_site_alone(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    last_good = _report(root, "S01")
    pidfile = tmp_path / "pids"
    # The worker runs the notebook in its own process (pipeline/in_worker.py): the notebook's process is the worker.
    _inject(root, f"import os\nif site_id == 'S01':\n    open({str(pidfile)!r}, 'w').write(str(os.getpid()))")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "evallib", "run", "--jobs", "2", "--no-progress", "--site-timeout", LIMIT]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.time() < deadline and proc.poll() is None, "S01 never started"
        time.sleep(0.1)
    worker = int(pidfile.read_text())
    os.kill(worker, signal.SIGSTOP)  # the worker holding S01 stops answering
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-2000:]
    _check_timed_out_alone(root, last_good, out)
    assert _gone(worker)
