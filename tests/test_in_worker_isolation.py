"""What a site changes in its worker's process never reaches the next site the worker runs (pipeline/in_worker.py):
environment variables, ``sys.path``, the file mode mask, numpy's error handling, the global random states, the
worker's signal handlers and the shell's hooks (events, extensions) are put back after each notebook; a site that
leaves a thread running, or fails after its notebook ran (results that cannot be published), has its worker replaced
before the next site, as a cell error does."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evallib.pipeline import pool

pytestmark = pytest.mark.integration

# What the notebook's process looks like when the notebook starts, printed; then every piece of it changed.
REPORT = """\
import json, os, random, signal, sys
import numpy as np
print("state:", json.dumps({"env": os.environ.get("EVALLIB_TEST_LEAK"), "path": "/leaked" in sys.path,
      "divide": np.geterr()["divide"], "random": random.random(), "np_random": float(np.random.random()),
      "sigterm": signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, "umask": os.umask(0o022)}))
os.umask(0o022)"""
CHANGE = """\
os.environ["EVALLIB_TEST_LEAK"] = "set by the site before"
sys.path.insert(0, "/leaked")
np.seterr(all="raise")
random.seed(1)
np.random.seed(1)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.umask(0o077)"""


def _task(kind: str, template: str = "", folder: str = "") -> Any:
    """In a worker: ``kind`` "twice" runs ``template`` twice through run_in_worker (each run's cell outputs),
    "once" once (its failure and this worker's pid), "site" once as a site whose notebook writes no results (its
    status, reason and this worker's pid), else this worker's pid.
    """
    from evallib.pipeline.execute import IN_WORKER, safe_execute
    from evallib.pipeline.in_worker import run_in_worker
    from evallib.pipeline.preflight import SiteJob

    if kind == "twice":  # each run's outputs, cell by cell
        runs = []
        for i in range(2):
            out = Path(folder) / f"out{i}.ipynb"
            assert run_in_worker(Path(template), out, {}, Path(folder)) is None
            runs.append([c["outputs"] for c in json.loads(out.read_text(encoding="utf-8"))["cells"]])
        return runs
    if kind == "once":
        return run_in_worker(Path(template), Path(folder) / "out.ipynb", {}, Path(folder)), os.getpid()
    if kind == "site":
        outputs = Path(folder) / "outputs"
        outputs.mkdir()
        job = SiteJob("X1", "params/X1.yaml", {})
        run = safe_execute(job, folder, str(outputs), template, IN_WORKER, 600.0)
        return run.status, run.reason, os.getpid()
    return os.getpid()


def _in_one_worker(tasks: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    workers = pool.WorkerPool(1)
    try:
        return [value for _, value in workers.run(_task, tasks, on_error=lambda job, why: why)]
    finally:
        workers.close()


def test_a_sites_environment_path_error_handling_random_state_and_signals_never_reach_the_next_site(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    template = forked_notebook(REPORT, CHANGE)
    [runs] = _in_one_worker([("twice", ("twice", str(template), str(tmp_path)))])
    assert isinstance(runs, list), runs
    first, second = (json.loads("".join(outputs[0][0]["text"]).split("state:", 1)[1]) for outputs in runs)
    assert first["env"] is None and not first["path"] and first["divide"] != "raise" and not first["sigterm"]
    assert second == first  # the second notebook started as the first did, random draws included


def test_a_site_that_leaves_a_thread_running_has_its_worker_replaced(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    template = forked_notebook(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()"
    )
    (reason, pid), after = _in_one_worker([("a", ("once", str(template), str(tmp_path))), ("b", ("pid",))])
    assert reason is None  # the site itself succeeded
    assert after != pid  # but its thread must not run on beside the next site


def test_a_site_that_ran_but_cannot_be_published_has_its_worker_replaced(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    template = forked_notebook("x = 1")  # runs without error, writes no results.json
    (status, reason, pid), after = _in_one_worker([("a", ("site", str(template), str(tmp_path))), ("b", ("pid",))])
    assert status == "failed" and "results.json" in reason
    assert after != pid  # replaced as after a cell error: the runner's failure came after the notebook ran


def test_a_sites_extensions_and_event_hooks_never_reach_the_next_site(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    # A fresh process would load the extension again (silently) and run the site's hook once after each cell.
    template = forked_notebook(
        "%load_ext autoreload",
        'get_ipython().events.register("post_run_cell", lambda result: print("hook ran"))',
        "x = 1",
    )
    [runs] = _in_one_worker([("twice", ("twice", str(template), str(tmp_path)))])
    assert isinstance(runs, list), runs
    assert runs[0][0] == [] and "hook ran" in json.dumps(runs[0][2])
    assert runs[1] == runs[0]
