"""A local batch's worker runs its sites one after another in its own process (pipeline/in_worker.py), and each
site is as if it ran alone: the same results and page, byte for byte; a fresh namespace, cell numbers, matplotlib
settings and once-only warnings; a worker replaced after a site that failed; the notebook so far kept when the
worker is killed mid-site."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline import executor, pool

from .conftest import make_project

pytestmark = pytest.mark.skipif(not executor.available(), reason="the forked executor needs fork")

# A cell put right after the parameters: what the notebook's process looks like when the site starts, logged.
PROBE = """\
import json, os, sys
import matplotlib
sys.path.insert(0, {mods!r})
import warner
seen = {{"site": site_id, "pid": os.getpid(), "leftover": "planted" in globals(),
        "count": get_ipython().execution_count, "linewidth": matplotlib.rcParams["lines.linewidth"]}}
planted = True
matplotlib.rcParams["lines.linewidth"] = 7.0
import warnings
warnings.showwarning = lambda message, *args, **kwargs: print(f"shown: {{message}}")  # not pytest's recorder
warner.warn_once()
with open({log!r}, "a", encoding="utf-8") as f:
    f.write(json.dumps(seen) + "\\n")
{extra}"""


def _probe(root: Path, tmp: Path, extra: str = "") -> Path:
    mods, log = tmp / "mods", tmp / "probe.log"
    mods.mkdir(exist_ok=True)
    # A module's "shown once" registry outlives a site unless the worker resets it: the warning must show each time.
    (mods / "warner.py").write_text(
        'import warnings\n\ndef warn_once():\n    warnings.warn("a once-only warning", UserWarning)\n'
    )
    path, probed = root / "notebooks" / "site_evaluation.ipynb", tmp / f"probed-{len(extra)}.ipynb"
    if not probed.exists():  # one template (one cell id) for every project of a test
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(2, nbformat.v4.new_code_cell(PROBE.format(mods=str(mods), log=str(log), extra=extra)))
        nbformat.write(nb, probed)
    path.write_bytes(probed.read_bytes())
    return log


def _seen(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _published(root: Path, site: str) -> tuple[bytes, bytes]:
    folder = root / "outputs" / site
    return (folder / "results.json").read_bytes(), (folder / "report.html").read_bytes()


@pytest.mark.e2e
def test_sites_run_one_after_another_in_a_worker_as_if_each_ran_alone(tmp_path: Path) -> None:
    from evallib.pipeline.batch import run_batch

    together = make_project(tmp_path / "together", ["V04", "V06", "V33"], programme=False)
    log = _probe(together, tmp_path)
    result = run_batch(None, root=together, progress=False, jobs=1, executor="forked")
    assert result.exit_code == 0, result.runs
    seen = _seen(log)
    assert len(seen) == 3 and len({s["pid"] for s in seen}) == 1  # one worker process ran all three
    for s in seen:  # each started as a new process's notebook would
        assert not s["leftover"] and s["linewidth"] == seen[0]["linewidth"] != 7.0
        assert s["count"] == seen[0]["count"]
    for site in ("V04", "V06", "V33"):
        nb = nbformat.read(together / "outputs" / site / "report.ipynb", as_version=4)
        probe = next(c for c in nb.cells if "warner.warn_once()" in c.source)
        assert "shown: a once-only warning" in json.dumps(probe.outputs)  # shown in every site, not the first only
    last = seen[-1]["site"]
    alone = make_project(tmp_path / "alone", [last], programme=False)
    _probe(alone, tmp_path)  # the same cell (the same paths), so the pages can be compared
    assert run_batch(None, root=alone, progress=False, jobs=1, executor="forked").exit_code == 0
    assert _published(together, last) == _published(alone, last)  # results and page, byte for byte


@pytest.mark.e2e
def test_a_site_that_fails_has_its_worker_replaced_before_the_next(tmp_path: Path) -> None:
    from evallib.pipeline.batch import run_batch

    root = make_project(tmp_path / "p", ["V04", "V06", "V33"], programme=False)
    log = _probe(root, tmp_path, extra='if site_id == "V06":\n    raise RuntimeError("boom in V06")')
    result = run_batch(None, root=root, progress=False, jobs=1, executor="forked")
    runs = {r.site_id: r for r in result.runs}
    assert runs["V06"].status == "failed" and "boom in V06" in runs["V06"].reason
    assert {runs["V04"].status, runs["V33"].status} == {"evaluated"}
    seen = _seen(log)
    order = [s["site"] for s in seen]
    for before, after in pairwise(seen):
        assert (before["pid"] != after["pid"]) == (before["site"] == "V06"), order  # a fresh worker only after V06
    assert all(not s["leftover"] for s in seen)


@pytest.mark.e2e
def test_a_worker_killed_mid_site_keeps_the_notebook_so_far(tmp_path: Path) -> None:
    from evallib.pipeline.batch import run_batch

    root = make_project(tmp_path / "p", ["V04", "V06"], programme=False)
    _probe(root, tmp_path, extra='if site_id == "V06":\n    os.kill(os.getpid(), 9)')
    result = run_batch(None, root=root, progress=False, jobs=1, executor="forked")
    runs = {r.site_id: r for r in result.runs}
    assert runs["V04"].status == "evaluated"
    assert runs["V06"].status == "failed" and "died (signal 9)" in runs["V06"].reason
    failed = nbformat.read(root / "outputs" / "V06" / "failed.ipynb", as_version=4)
    assert failed.metadata.papermill.exception and "Execution failed" in failed.cells[0].source
    assert "parameters" in json.dumps([c.metadata.get("tags", []) for c in failed.cells])  # as far as it got
    assert str(tmp_path) not in (root / "outputs" / "V06" / "failed.ipynb").read_text(encoding="utf-8")
    assert not (root / "outputs" / ".staging").exists()


def _pid() -> int:
    import os

    return os.getpid()


def _pid_then_retire() -> int:
    import os

    pool.retire_after_task()
    return os.getpid()


@pytest.mark.unit
def test_a_task_can_ask_for_its_worker_to_be_replaced() -> None:
    workers = pool.WorkerPool(1)
    try:
        tasks = [(name, ()) for name in ("a", "b", "c", "d")]
        fns = {"a": _pid, "b": _pid_then_retire, "c": _pid, "d": _pid}
        pids = {}
        for name, args in tasks:
            for job, pid in workers.run(fns[name], [(name, args)], on_error=lambda j, why: why):
                pids[job] = pid
    finally:
        workers.close()
    assert pids["a"] == pids["b"] != pids["c"] == pids["d"]


def _twice(template: str, folder: str) -> list[str]:
    """In a worker: the same notebook twice through run_in_worker; the two executed notebooks' text."""
    from evallib.pipeline.executor import warm_up
    from evallib.pipeline.in_worker import run_in_worker

    warm_up()
    texts = []
    for i in range(2):
        out = Path(folder) / f"out{i}.ipynb"
        assert run_in_worker(Path(template), out, {}, Path(folder)) is None
        texts.append(out.read_text(encoding="utf-8"))
    return texts


@pytest.mark.integration
def test_a_sites_warning_filters_never_reach_the_next_site_a_worker_runs(
    tmp_path: Path, forked_notebook: Callable[..., Path]
) -> None:
    # A site that turns warnings into errors, or hides them, does so for itself only.
    forked_notebook(
        "import warnings\n"
        'print("every warning an error:", warnings.filters[0] == ("error", None, Warning, None, 0))\n'
        'warnings.simplefilter("error")'
    )
    workers = pool.WorkerPool(1)
    try:
        args = (str(tmp_path / "t.ipynb"), str(tmp_path))
        texts = [value for _, value in workers.run(_twice, [("t", args)], on_error=lambda j, why: why)][0]
    finally:
        workers.close()
    assert isinstance(texts, list), texts
    assert all("every warning an error: False" in text for text in texts)


@pytest.mark.e2e
def test_a_dask_workers_sites_run_in_one_child_forked_afresh_when_its_warm_state_grows(tmp_path: Path) -> None:
    """A Dask worker's site process (pipeline/site_process.py): its sites run one after another in one child of
    the worker, as a local worker runs them, and a new child is forked once the worker has warmed more."""
    import os

    from evallib.pipeline import dask_warm, site_process
    from evallib.pipeline.preflight import preflight
    from evallib.protocol.params import find_params
    from evallib.reporting.signing import KEY_ENV

    root = make_project(tmp_path / "p", ["V04", "V06", "V33"], programme=False)
    log = _probe(root, tmp_path)
    jobs = {j.site_id: j for j in preflight(find_params(root / "params", None), root)}
    outputs = root / "outputs"
    outputs.mkdir()
    env = {**dask_warm.site_env(root), KEY_ENV: str(dask_warm.throwaway_key(tmp_path))}
    try:
        runs = [site_process.run_in_child(1, jobs[s], root, outputs, 600.0, env) for s in ("V04", "V06")]
        runs.append(site_process.run_in_child(2, jobs["V33"], root, outputs, 600.0, env))  # the worker warmed more
    finally:
        if "pool" in site_process._CHILD:
            site_process._CHILD.pop("pool").close()
    assert [r.status for r in runs] == ["evaluated"] * 3, runs
    pids = [s["pid"] for s in _seen(log)]
    assert pids[0] == pids[1] != pids[2] and os.getpid() not in pids
    for site in ("V04", "V06", "V33"):  # published in the worker's outputs, as a task returns them
        assert (outputs / site / "results.json").is_file() and (outputs / site / "report.html").is_file()
