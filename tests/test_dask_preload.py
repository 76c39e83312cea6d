"""A cold Dask cluster's start-up: workers forked from one warm process (``pipeline/nanny.py``), tasks a
scheduler unpickles without evallib (``dask_warm.packed``), and what the client shares with in-process workers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from evallib.pipeline import dask_warm
from evallib.pipeline.batch import run_batch
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import find_params
from evallib.sources import files as data_files

from .conftest import make_project

distributed = pytest.importorskip("dask.distributed")
BIN = Path(sys.executable).parent


def test_a_task_reaches_the_worker_without_the_scheduler_importing_evallib() -> None:
    import cloudpickle

    call, payload = dask_warm.packed(dask_warm.safe_relative, "a/b")
    blob = cloudpickle.dumps((call, payload))  # as Dask sends a task to the scheduler, which unpickles it
    code = (
        "import pickle, sys\n"
        "sys.modules['evallib'] = sys.modules['pandas'] = None  # importing either now fails\n"
        "call, payload = pickle.loads(sys.stdin.buffer.read())\n"
        "print(type(payload).__name__, sorted(m for m in sys.modules if m.startswith('evallib') and sys.modules[m]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True)
    assert out.stdout.decode().split() == ["bytes", "[]"]
    assert call(payload) == PurePosixPath("a/b")  # the worker's call runs the packed function


@pytest.mark.e2e
def test_workers_started_with_the_preload_fork_from_one_warm_process_and_give_a_local_runs_results(
    tmp_path: Path,
) -> None:
    def _warm_state() -> dict[str, Any]:
        from evallib.pipeline import dask_warm

        return {
            "forked from": list(dask_warm.FORKED),
            "parent": os.getppid(),
            "imported": "papermill" in sys.modules and "evallib.reporting.report" in sys.modules,
            "installed": bool(dask_warm._INSTALLED),
            "warmed": sorted(map(str, dask_warm._WARMED)),
        }  # nested: sent by value to the workers

    def _tick(dask_worker: Any) -> float:
        return float(dask_worker.periodic_callbacks["tick"].callback_time)

    local = make_project(tmp_path / "local", ["V04"], programme=False, small=True)
    on_dask = make_project(tmp_path / "dask", ["V04"], programme=False, small=True)
    assert run_batch(None, root=local, progress=False).exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp_path}
    scheduler = subprocess.Popen(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    worker = [str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"]
    workers = subprocess.Popen([*worker, "--host", "127.0.0.1", "--preload-nanny", "evallib.pipeline.nanny"], **quiet)
    try:
        with distributed.Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=120)
            before = list(client.run(_warm_state).values())
            nannies = list(client.run(_tick, nanny=True).values())  # before any run's client calmed them
            result = run_batch(None, root=on_dask, progress=False, scheduler=address)
    finally:
        for p in (workers, scheduler):
            p.send_signal(signal.SIGTERM)
        for p in (workers, scheduler):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
    [server] = {s["parent"] for s in before}
    # both workers forked from one fork server that imported and warmed (with a site too) before either
    # started, and that recorded the installed files it warmed from; the batch's data windows wait for its tasks
    assert [s["forked from"] for s in before] == [[server], [server]]
    assert all(s["imported"] and s["installed"] and s["warmed"] == ["site"] for s in before)
    assert nannies == [dask_warm.CALMER_MS["tick"]] * 2  # each nanny calmed itself at its start
    assert result.exit_code == 0, result.runs
    for site in ("S01", "V04"):
        a = (local / "outputs" / site / "results.json").read_bytes()
        assert a == (on_dask / "outputs" / site / "results.json").read_bytes()  # byte-identical


def test_the_client_waits_for_an_in_process_task_to_restore_the_shipped_paths_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``LocalCluster(processes=False)`` a task runs in a thread of the client's process: while it holds a
    site's shipped paths (``SHIPPED``) and throwaway key (in the environment), the client's reading of another
    site's files and its signing and publishing wait for the task to finish and restore them.
    """
    from evallib.pipeline.execute import SiteRun
    from evallib.reporting.signing import KEY_ENV

    root = make_project(tmp_path / "p", ["V04"], programme=False, small=True)
    [job] = [j for j in preflight(find_params(root / "params", None), root) if j.site_id == "S01"]
    expected = dask_warm.site_files(root, job)
    assert len(expected) > 2  # the own-data file travels too
    holding, release = threading.Event(), threading.Event()

    def task() -> None:  # what run_site does to the process while a site runs
        with dask_warm.TASK_LOCK:
            data_files.SHIPPED.update({name: f"/nowhere/{name}" for name in expected})
            os.environ[KEY_ENV] = "/nowhere/throwaway.key"
            holding.set()
            release.wait(10)
            data_files.SHIPPED.clear()
            os.environ.pop(KEY_ENV)

    keys: list[str | None] = []
    monkeypatch.setattr(dask_warm, "publish_returned", lambda *a: keys.append(os.environ.get(KEY_ENV)) or a[1])
    monkeypatch.delenv(KEY_ENV, raising=False)
    seen: list[Any] = []
    worker = threading.Thread(target=task)
    worker.start()
    holding.wait(10)
    run = SiteRun("S01", "evaluated", "")
    client = threading.Thread(
        target=lambda: seen.extend(
            [dask_warm.site_files(root, job), dask_warm.publish_safely(job, (run, {}), root, root)]
        )
    )
    client.start()
    time.sleep(0.3)
    assert seen == [] and keys == []  # waiting for the task
    release.set()
    client.join(10)
    worker.join(10)
    assert seen == [expected, run]
    assert keys == [None]  # signed after the task's throwaway key was gone
