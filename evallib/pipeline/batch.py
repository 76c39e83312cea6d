"""Batch execution of the site notebook, one Papermill run per params file, then the programme view and the static site.

A failing site never stops the batch, and neither does a dead worker (it fails only its own site); sites whose
inputs are unchanged since their last successful run are skipped; notebooks run in parallel worker processes
(forked after the imports, each running its sites in its own process; or one kernel each), or as tasks on a Dask
cluster. One run at a time holds the outputs folder; SIGTERM stops a run as Ctrl-C does: finished sites stay
published, the rest keep their previous reports, and no worker outlives the run.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evallib.errors import ExecutionError, ParamsError
from evallib.evaluation.site.evaluate import data_windows
from evallib.pipeline import cluster, dask_warm
from evallib.pipeline import executor as fast
from evallib.pipeline.execute import (
    IN_WORKER,
    SITE_TIMEOUT,
    SiteRun,
    environment,
    run_programme,
    safe_execute,
    salvage_failure,
    write_atomic,
)
from evallib.pipeline.folders import check_outputs, record_failure, recover
from evallib.pipeline.lock import check_writable, outputs_lock
from evallib.pipeline.pool import WorkerPool, interrupts_deferred, sigterm_as_interrupt, timed_out
from evallib.pipeline.preflight import (
    TEMPLATE,
    SiteJob,
    longest_first,
    preflight,
    protocols_of,
    relative,
    unchanged_since_last_run,
)
from evallib.pipeline.publish import current_expectations, publish
from evallib.pipeline.warm import SITE_WARM_MIN, WindowHelper, split_windows
from evallib.protocol.params import find_params
from evallib.protocol.writing import remove_file, remove_tree
from evallib.reporting.publishing import Expected
from evallib.reporting.signing import publish_key, tracked_outputs

if TYPE_CHECKING:
    from tqdm import tqdm


@dataclass(frozen=True)
class BatchResult:
    """The outcome of a batch run: each site's run, the seconds it took and the problems publishing reported."""

    runs: tuple[SiteRun, ...]
    seconds: float
    problems: tuple[str, ...] = ()

    @property
    def failed(self) -> list[SiteRun]:
        """The site runs that failed."""
        return [r for r in self.runs if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        """The command's exit status: 1 when any site failed, else 0."""
        return 1 if self.failed else 0


def run_batch(
    site_ids: list[str] | None = None,
    *,
    root: Path | None = None,
    params_dir: Path | None = None,
    outputs: Path | None = None,
    jobs: int | None = None,
    progress: bool = True,
    force: bool = False,
    scheduler: str | None = None,
    executor: str = "auto",
    wait: bool = False,
    site_timeout: float = SITE_TIMEOUT,
) -> BatchResult:
    """Validate, execute and publish the chosen sites (all when ``site_ids`` is empty).

    Runs ``jobs`` notebooks at a time (default: every core) in separate processes,
    keeps going when a site (or its worker) fails, writes ``outputs/run-summary.json``
    and rebuilds ``outputs/site/`` from verified results. A site whose params, notebook,
    data and evallib code are unchanged since its last successful run is skipped unless
    ``force``. Holds the outputs lock throughout (``wait``: queue behind another run), never
    indefinitely: a site (or the programme notebook) running past ``site_timeout`` seconds is
    stopped with every process it started and recorded as failed ("timed out").
    """
    if not site_timeout > 0:
        raise ExecutionError(f"--site-timeout {site_timeout!r}: give a number of seconds above 0")
    root = (root or Path.cwd()).resolve()
    params_dir = params_dir or root / "params"
    outputs = (outputs or root / "outputs").resolve()
    template = root / TEMPLATE
    if not template.is_file():
        raise ExecutionError(f"notebook template {TEMPLATE} not found under {root.name}/; run from the project root")
    if executor not in ("auto", "kernel", "forked"):
        raise ExecutionError(f"executor {executor!r}: use auto, kernel or forked")
    if executor == "auto":  # on Dask, forked means warm workers (dask_warm.py): the workers fork, not this machine
        executor = "forked" if fast.available() or scheduler is not None else "kernel"
    if executor == "forked" and scheduler is None and not fast.available():
        raise ExecutionError("the forked executor needs a POSIX machine; use --executor kernel")
    files = find_params(params_dir, site_ids)
    if not files:
        raise ParamsError(f"no params files under {relative(params_dir, root)}/; run `evallib make-params`")
    batch = preflight(files, root)
    check_writable(outputs)
    with outputs_lock(outputs, wait=wait), sigterm_as_interrupt():
        return _locked_run(
            batch,
            root,
            params_dir,
            outputs,
            template,
            jobs,
            progress,
            force,
            scheduler,
            executor,
            all_sites=not site_ids,
            timeout=site_timeout,
        )


def _locked_run(
    batch: list[SiteJob],
    root: Path,
    params_dir: Path,
    outputs: Path,
    template: Path,
    jobs: int | None,
    progress: bool,
    force: bool,
    scheduler: str | None,
    executor: str,
    *,
    all_sites: bool,
    timeout: float,
) -> BatchResult:
    expected = {j.site_id: Expected(j.result_fingerprint, j.draft) for j in batch} if all_sites else None
    check_outputs(outputs, [j.site_id for j in batch])  # a planted link is refused before anything is written
    try:
        return _sites_then_publish(
            batch, root, params_dir, outputs, template, jobs, progress, force, scheduler, executor, expected, timeout
        )
    finally:
        remove_tree(outputs / ".staging")  # however the run ends (a fault, an interrupt), no staging is left


def _sites_then_publish(
    batch: list[SiteJob],
    root: Path,
    params_dir: Path,
    outputs: Path,
    template: Path,
    jobs: int | None,
    progress: bool,
    force: bool,
    scheduler: str | None,
    executor: str,
    expected: dict[str, Expected] | None,
    timeout: float,
) -> BatchResult:
    from tqdm import tqdm

    recover(outputs)  # swaps a killed run left half-done; its staging leftovers
    publish_key(root)  # the key that signs each run record: made now, or its problem reported before any site runs
    t0 = time.perf_counter()
    runs: list[SiteRun] = []
    if not force:
        todo = []
        tracked = tracked_outputs(outputs)
        for job in batch:
            previous = unchanged_since_last_run(job, outputs, tracked)
            if previous is None:
                todo.append(job)
            else:
                reason = "unchanged since the last run (use --force to rerun)"
                runs.append(SiteRun(job.site_id, str(previous.get("status")), reason, 0.0, 0))
        batch = todo
    n_workers = max(1, min(jobs or os.cpu_count() or 1, max(1, len(batch))))
    with ExitStack() as stack:  # a Dask client stays connected for the programme notebook
        # The checkout's git state, read once for every notebook's provenance (the code that runs is the code
        # imported now), not by two git commands in each notebook.
        stack.enter_context(environment(dask_warm.site_env(root)))
        client = None
        try:
            if scheduler is not None:
                client = stack.enter_context(cluster.connected(scheduler))
                bar = tqdm(total=len(batch), desc="sites", unit="site", disable=not progress)
                runs.extend(_run_on_dask(client, batch, root, outputs, template, bar, timeout, executor))
                bar.close()
            elif batch:
                runs.extend(_run_local(batch, root, outputs, template, executor, n_workers, progress, timeout))
        except KeyboardInterrupt:
            # Finished sites are already in place (each swapped in whole); unfinished ones keep their
            # previous outputs. Drop half-built staging folders and republish from what is verified.
            with interrupts_deferred():  # a second Ctrl-C (or a SIGTERM) must not cut the clean-up
                remove_tree(outputs / ".staging")
                publish(root, outputs, expected=expected, params_dir=params_dir, programme=False)
            raise
        programme = executor if fast.available() else "kernel"
        # On warm Dask workers the programme notebook runs on a worker too (else, or if it cannot, here)
        runner = cluster.runner(client) if client is not None and executor == "forked" else run_programme
        return _finish(runs, root, params_dir, outputs, expected, t0, n_workers, programme, timeout, runner)


def _failed_run(outputs: Path, root: Path, job: SiteJob, why: str) -> SiteRun:
    return SiteRun(job.site_id, "failed", salvage_failure(outputs, root, job, why))


def _run_local(
    batch: list[SiteJob],
    root: Path,
    outputs: Path,
    template: Path,
    executor: str,
    n_workers: int,
    progress: bool,
    timeout: float,
) -> list[SiteRun]:
    from tqdm import tqdm

    # Forked executor: this process imports the libraries and loads the data windows (most in a helper process
    # meanwhile); the workers fork from it (pipeline/warm.py) and run their sites one after another in their own
    # process (pipeline/in_worker.py). A warm-up that fails here is left to the workers, whose sites then fail
    # with the reason (each worker warms up again: a no-op when this process did).
    warm = None
    if executor == "forked":
        protocols = protocols_of(batch)
        windows = data_windows(protocols)
        warm = partial(fast.warm_up, tuple(windows))
        own, others = split_windows(windows)
        with WindowHelper(others if n_workers > 1 else []) as helper:
            with suppress(Exception):
                fast.warm_up(tuple(own if helper.windows else windows))
            helper.adopt()
        with suppress(Exception):
            warm()  # the windows a failed helper left, if any
    pool = WorkerPool(n_workers, initializer=warm, timeout=timeout)
    in_worker = IN_WORKER if executor == "forked" else executor
    bar = tqdm(total=len(batch), desc="sites", unit="site", disable=not progress)
    runs: list[SiteRun] = []
    try:
        order = longest_first(batch, outputs)
        tasks = [(job, (job, str(root), str(outputs), str(template), in_worker, timeout)) for job in order]
        # A worker killed mid-site (it died, or passed the limit): its failure, with the notebook as far as it got
        for _, run in pool.run(safe_execute, tasks, on_error=partial(_failed_run, outputs, root)):
            runs.append(run)
            bar.set_postfix_str(f"{run.site_id} {run.status}")
            bar.update()
    except BaseException:
        pool.terminate()
        raise
    finally:
        bar.close()
    pool.close()
    return runs


def _run_on_dask(
    scheduler: Any,
    batch: list[SiteJob],
    root: Path,
    outputs: Path,
    template: Path,
    bar: tqdm,
    timeout: float,
    executor: str = "kernel",
) -> list[SiteRun]:
    """The same site executions as tasks on a Dask cluster (``scheduler``: its address, or a connected client).

    ``executor="forked"``: warm workers run each site from files shipped to them and return its files, which
    are published here (:mod:`evallib.pipeline.dask_warm`); ``"kernel"``: one Jupyter kernel per notebook on
    the workers, which must see the project (and ``outputs/``) at the same path. Never waits forever: when no site finishes for ``timeout`` seconds (a stuck task, a cluster whose
    workers all died), the sites still outstanding are cancelled and recorded as failed ("timed out");
    a task still running past its own limit publishes nothing (:func:`execute_site`).
    """
    runs: list[SiteRun] = []
    with cluster.connected(scheduler) as client:
        from dask.distributed import TimeoutError as DaskTimeout
        from dask.distributed import wait as dask_wait

        warm = executor == "forked"
        jobs = _submit_warm(client, batch, root, timeout) if warm else {}
        for job in batch if not warm else []:
            args = (job, str(root), str(outputs), str(template), "kernel", timeout)
            jobs[client.submit(safe_execute, *args, key=f"site-{job.site_id}-{uuid.uuid4().hex[:6]}", pure=False)] = job
        pending = set(jobs)
        while pending:
            try:
                done, pending = dask_wait(pending, timeout=timeout, return_when="FIRST_COMPLETED")
            except (DaskTimeout, TimeoutError):
                done, pending = set(), _give_up(client, pending, jobs, outputs, runs, timeout)
            for fut in done:
                try:
                    value = fut.result()
                except Exception as exc:  # noqa: BLE001 - a task the cluster lost fails its own site only
                    why = f"the Dask task failed ({type(exc).__name__})"
                    record_failure(outputs, jobs[fut].site_id, why, jobs[fut].params_file)
                    value = SiteRun(jobs[fut].site_id, "failed", why)
                # Warm workers return the site's files: published here, under this run's lock.
                run = dask_warm.publish_safely(jobs[fut], value, outputs, root) if warm else value
                runs.append(run)
                bar.set_postfix_str(f"{run.site_id} {run.status}")
                bar.update()
    return runs


def _submit_warm(client: Any, batch: list[SiteJob], root: Path, timeout: float) -> dict[Any, SiteJob]:
    """Submit each site to warm workers with the files it reads, the data windows and the git state."""
    windows, env, template = (
        tuple(data_windows(protocols_of(batch))),
        dask_warm.site_env(root),
        (root / TEMPLATE).read_bytes(),
    )
    dask_warm.calm_cluster(client)  # the scheduler's and nannies' housekeeping; each worker calms itself
    # Each worker warms itself with its first site where it will run enough sites for that to pay (warm.py)
    warm_site = len(batch) >= SITE_WARM_MIN * max(1, len(client.scheduler_info().get("workers", {})))
    jobs = {}
    for job in batch:
        files = dask_warm.site_files(root, job, template)
        key = f"site-{job.site_id}-{uuid.uuid4().hex[:6]}"
        args = (job, files, windows, env, timeout, warm_site)
        jobs[client.submit(*dask_warm.packed(dask_warm.run_site, *args), key=key, pure=False)] = job
    return jobs


def _give_up(
    client: Any, pending: set[Any], jobs: dict[Any, SiteJob], outputs: Path, runs: list[SiteRun], timeout: float
) -> set[Any]:
    """No site finished within the limit: cancel the outstanding ones and record each as timed out."""
    client.cancel(list(pending), force=True)
    for fut in pending:
        job = jobs[fut]
        why = timed_out(timeout) + "; no site on the cluster finished in that time"
        record_failure(outputs, job.site_id, why, job.params_file)
        runs.append(SiteRun(job.site_id, "failed", why))
    return set()


def _finish(
    runs: list[SiteRun],
    root: Path,
    params_dir: Path,
    outputs: Path,
    expected: dict[str, Expected] | None,
    t0: float,
    n_workers: int,
    executor: str,
    timeout: float = SITE_TIMEOUT,
    runner: cluster.Runner = run_programme,
) -> BatchResult:
    """Tidy up after the site runs: failure records, the programme view (``runner``), the summary and the site."""
    runs.sort(key=lambda r: r.site_id)
    for r in runs:
        # A site that now runs cleanly leaves no stale failure record behind.
        if r.status != "failed":
            for name in ("failure.json", "failed.ipynb"):
                remove_file(outputs / r.site_id / name)  # never through a link
    remove_tree(outputs / ".staging")
    problems: list[str] = []
    if expected is None:  # some sites were chosen: the others are checked against their params files too
        expected, problems = current_expectations(root, params_dir)
    done = publish(
        root, outputs, expected=expected, executor=executor, problems=problems, timeout=timeout, runner=runner
    )
    if done.programme.status not in ("skipped", "unchanged"):
        runs.append(done.programme)
    result = BatchResult(tuple(runs), time.perf_counter() - t0, done.problems)
    summary = {"seconds": round(result.seconds, 2), "workers": n_workers, "runs": [asdict(r) for r in runs]}
    write_atomic(outputs / "run-summary.json", json.dumps(summary, indent=2) + "\n")
    return result


def summary_table(result: BatchResult) -> str:
    """Plain-text table of a batch: one line per site, then the totals."""
    lines = [f"{'site':<6} {'status':<14} {'secs':>6}  reason", "-" * 78]
    for r in result.runs:
        reason = r.reason if len(r.reason) <= 60 else r.reason[:57] + "..."
        lines.append(f"{r.site_id:<6} {r.status:<14} {r.seconds:>6.1f}  {reason}")
    counts: dict[str, int] = {}
    for r in result.runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines.append("-" * 78)
    lines.append(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f" in {result.seconds:.1f} s")
    return "\n".join(lines)
