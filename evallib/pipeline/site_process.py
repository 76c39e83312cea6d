"""A Dask worker's site process: its sites run one after another in one child forked from the warm worker.

A Dask worker runs its tasks in threads, which cannot be stopped, so a site's notebook never runs in the worker's
own process. Forking a process per site, as it did, cost each site 70-130 ms of kernel time (copy-on-write
faults on the inherited pages), as it did locally. Instead each warm worker keeps one child
(:class:`~evallib.pipeline.pool.WorkerPool` of one), forked once it is warm, which runs the worker's sites one after
another in its own process, exactly as a local worker does (:mod:`evallib.pipeline.in_worker`): each site as if
alone, the child replaced after a site that failed, killed and replaced at the time limit, the notebook so far kept
when it dies. The child is forked afresh whenever the worker's warm state grows (new data windows, the warm-up
site), so it always starts from what the worker has loaded; the site's environment and shipped file paths travel
with each task.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evallib.pipeline.execute import IN_WORKER, SiteRun, environment, safe_execute, salvage_failure
from evallib.pipeline.pool import WorkerPool
from evallib.pipeline.preflight import TEMPLATE, SiteJob
from evallib.pipeline.warm import malloc_defaults
from evallib.sources.files import SHIPPED

_CHILD: dict[str, Any] = {}


def _run_here(
    job: SiteJob, project: str, outputs: str, timeout: float, env: dict[str, str], shipped: dict[str, str]
) -> SiteRun:
    """In the child: one site in this process, with the task's environment and shipped paths (restored after)."""
    SHIPPED.clear()
    SHIPPED.update(shipped)
    try:
        with environment(env):
            return safe_execute(job, project, outputs, str(Path(project) / TEMPLATE), IN_WORKER, timeout)
    finally:
        SHIPPED.clear()


def run_in_child(
    state: object, job: SiteJob, project: Path, outputs: Path, timeout: float, env: dict[str, str]
) -> SiteRun:
    """Run ``job`` in this worker's site process, forked afresh when ``state`` (what the worker has warmed)
    changed since it was forked; returns the site's run (its files are in ``outputs``, as with a local run).
    """
    pool = _CHILD.get("pool")
    if pool is not None and _CHILD.get("state") != state:
        pool.close()
        pool = None
    # The child's heap as a local run's, not the nanny's trim setting (warm.malloc_defaults), for every fork.
    with malloc_defaults(), _may_fork():
        if pool is None:
            pool = _CHILD["pool"] = WorkerPool(1, timeout=timeout)
            _CHILD["state"] = state
        pool.timeout = timeout
        args = (job, str(project), str(outputs), timeout, env, dict(SHIPPED))
        for _, run in pool.run(_run_here, [(job, args)], on_error=lambda j, why: _failed(outputs, project, j, why)):
            return run
    raise RuntimeError("the site process returned nothing")  # pragma: no cover - run() yields once per task


@contextmanager
def _may_fork() -> Iterator[None]:
    """Let this process start the site process though it is a daemon (a Dask worker under a nanny): the child is
    never left behind, since it dies with the thread that forked it or with this process (``pool.die_with_parent``),
    which is what multiprocessing's refusal guards against.
    """
    config = mp.current_process()._config  # type: ignore[attr-defined]
    daemon = config.get("daemon")
    config["daemon"] = False
    try:
        yield
    finally:
        config["daemon"] = daemon


def _failed(outputs: Path, project: Path, job: SiteJob, why: str) -> SiteRun:
    return SiteRun(job.site_id, "failed", salvage_failure(outputs, project, job, why))
