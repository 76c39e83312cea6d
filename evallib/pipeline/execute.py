"""Executing one notebook (a site's or the programme's) and publishing its outputs atomically.

What this guards against (papermill's traps, measured in this project's notes):

* kernel port collisions when kernels start in parallel: kernels talk over IPC
  sockets, not TCP ports, and a failed start is retried;
* a dead kernel leaves a notebook that is not marked failed: it is marked here and
  the failure recorded;
* a failing site never destroys the site's last good report: each site runs in a
  staging folder that replaces ``outputs/<site>/`` only on success;
* absolute paths in warnings, metadata or HTML: cleaned before anything is written;
* results that do not match the fingerprint checked before the run (data changed
  while it ran, departures from the protocol) are a failure, never published;
* every record (``failure.json``, ``failed.ipynb``, ``run.json``) is written whole or
  not at all, and a SIGTERM waits for a folder swap in progress;
* nothing is written through a link (:mod:`evallib.protocol.writing`): a planted
  ``outputs/<site>`` link is refused, never followed;
* a swap cut by a kill never loses the last good report: the folder is exchanged
  atomically where the kernel can, else :func:`recover` puts the old copy back whenever
  the current folder holds no complete report;
* a notebook that runs past the time limit is stopped and recorded as failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evallib.errors import EvalLibError
from evallib.pipeline.executor import SKIPPED_IN_BATCH, run_forked, warm_up
from evallib.pipeline.folders import publish_dir, record_failure
from evallib.pipeline.in_worker import run_in_worker
from evallib.pipeline.notebook import PARAMS_FILE_ENV
from evallib.pipeline.pool import retire_after_task, timed_out
from evallib.pipeline.preflight import PROGRAMME_TEMPLATE, TEMPLATE, SiteJob, project_env, relative
from evallib.protocol import writing
from evallib.protocol.paths import ROOT_ENV
from evallib.protocol.writing import UnsafePath, fault_message, is_fault, make_dir, read_file, remove_tree
from evallib.reporting.publishing import SiteEntry, inputs_fingerprint, read_json
from evallib.reporting.signing import programme_record_fields, sign, site_record_fields
from evallib.reporting.static_site import render_report, scrub_paths

KERNEL_START_RETRIES = 3
#: The executor a local batch's workers use for the forked executor: each site in the worker's own process
#: (:mod:`evallib.pipeline.in_worker`); "forked" forks a process per site (Dask workers, the programme).
IN_WORKER = "in-worker"
#: The default limit on one site's (or the programme's) notebook, in seconds: generous; ``--site-timeout``.
SITE_TIMEOUT = 20 * 60.0


@dataclass(frozen=True)
class SiteRun:
    """What happened to one site in a batch."""

    site_id: str
    status: str  # "evaluated", "not evaluable" or "failed"
    reason: str = ""
    seconds: float = 0.0
    attempts: int = 1
    timings: dict[str, float] = field(default_factory=dict)


def _kernel_manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        """Kernels on IPC sockets: no TCP port to collide on when many start at once."""

        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def _clean_notebook(path: Path, site_id: str, root: Path, failure: str | None = None) -> Any:
    """Relative paths in papermill metadata; a visible failure marker when needed. Returns the notebook as
    written (for the page, so that it is not read again).
    """
    import nbformat
    from nbformat import v4

    # Without nbformat's schema validation, which only logs (it never refuses) and cost more than the reading and
    # writing themselves: papermill has just written this notebook through nbformat, which validated it, and only
    # strings change here. The text written is nbformat.writes's own, byte for byte (the same v4 writer).
    nb = v4.reads(read_file(path).decode("utf-8"))
    meta = nb.metadata.setdefault("papermill", {})
    meta["input_path"] = str(PROGRAMME_TEMPLATE if site_id == "programme" else TEMPLATE)
    meta["output_path"] = f"outputs/{site_id}/report.ipynb"
    meta.pop("cwd", None)
    if failure is not None:
        meta["exception"] = True
        banner = nbformat.v4.new_markdown_cell(
            f'<span style="color:red;font-size:2em">Execution failed: {failure}</span>'
        )
        banner.metadata["tags"] = ["papermill-error-cell-tag"]
        nb.cells.insert(0, banner)
    text = v4.writes(nb)
    scrubbed = scrub_paths(text, root)
    write_atomic(path, scrubbed)
    return nb if scrubbed == text else v4.reads(scrubbed)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all, never through a link (:func:`writing.write_atomic`)."""
    writing.write_atomic(path, text)


def _staging(outputs: Path, prefix: str) -> Path:
    """A new staging folder ``outputs/.staging/<prefix><id>`` made by this process."""
    return writing.fresh_dir(make_dir(outputs / ".staging", outputs), prefix)


def execute_notebook(
    template: Path, nb_out: Path, params: dict[str, Any], cwd: Path, timeout: float = SITE_TIMEOUT
) -> tuple[str | None, int]:
    """Execute one notebook with Papermill on an IPC kernel; return (failure or None, attempts).

    A cell error and a dead kernel are failures (the output notebook is kept); a
    kernel that fails to start is retried, as parallel starts can collide. The exploration
    cells (tagged :data:`~evallib.pipeline.executor.SKIPPED_IN_BATCH`) are not run.
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    attempts = 0
    while True:
        attempts += 1
        try:
            pm.execute_notebook(
                str(template),
                str(nb_out),
                parameters=params,
                cwd=str(cwd),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                start_timeout=120,
                execution_timeout=max(1, int(timeout)),
                kernel_manager_class=_kernel_manager_class(),
                skip_cells_with_tag=SKIPPED_IN_BATCH,
            )
            return None, attempts
        except pm.PapermillExecutionError as exc:
            return f"{exc.ename}: {exc.evalue}", attempts
        except CellTimeoutError:
            return timed_out(timeout), attempts
        except DeadKernelError as exc:
            return f"the kernel died ({exc}); the notebook stopped part-way", attempts
        except (RuntimeError, TimeoutError) as exc:
            # Kernel start-up failures (e.g. "Kernel died before replying to kernel_info").
            if attempts >= KERNEL_START_RETRIES:
                return f"the kernel could not start after {attempts} attempts: {exc}", attempts
            time.sleep(0.5 * attempts)


def run_programme(
    root: Path,
    outputs: Path,
    executor: str = "kernel",
    sites: list[SiteEntry] | None = None,
    timeout: float = SITE_TIMEOUT,
) -> SiteRun:
    """Execute the programme notebook over the verified results of ``sites``; publish outputs/programme/.

    The notebook reads copies of exactly those results (never drafts, stale or unreadable
    ones); ``programme/run.json`` records which, so the page is linked only while they are
    what the site shows. Skipped (status "skipped") when the project has no programme
    notebook or there are no results. A failure (or a notebook past ``timeout`` seconds)
    keeps the previous programme report, which is then no longer linked. However it ends
    (an interrupt included), its staging folder is removed.
    """
    template = root / PROGRAMME_TEMPLATE
    chosen = [e for e in (sites or []) if e.page is not None]
    if not template.is_file() or not chosen:
        return SiteRun("programme", "skipped", "no programme notebook or no site results")
    t0 = time.perf_counter()
    staging = _staging(outputs, "programme-")
    try:
        return _programme_in(staging, root, outputs, executor, chosen, timeout, t0)
    finally:
        remove_tree(staging)
        try:
            (outputs / ".staging").rmdir()  # `evallib publish` leaves no empty staging folder behind
        except OSError:
            pass  # not empty: a run's sites are staged there (the run removes it at its end)


def _programme_in(
    staging: Path, root: Path, outputs: Path, executor: str, chosen: list[SiteEntry], timeout: float, t0: float
) -> SiteRun:
    inputs = staging / "inputs"
    for e in chosen:
        make_dir(inputs / e.site_id, staging)
        writing.copy_file(outputs / e.site_id / "results.json", inputs / e.site_id / "results.json")
    nb_out = staging / "report.ipynb"
    inside = inputs.resolve().is_relative_to(root.resolve())
    params = {"outputs_dir": relative(inputs, root) if inside else str(inputs)}
    with project_env(root):  # for the notebook only: this process's environment is left as it was
        if executor == "forked":
            warm_up()
            failure, attempts = run_forked(root / PROGRAMME_TEMPLATE, nb_out, params, staging, timeout), 1
        else:
            failure, attempts = execute_notebook(root / PROGRAMME_TEMPLATE, nb_out, params, staging, timeout)
    if failure is not None:
        failure = scrub_paths(failure, root)
        if nb_out.exists():
            _clean_notebook(nb_out, "programme", root, failure)
        record_failure(outputs, "programme", failure, notebook=nb_out)
        return SiteRun("programme", "failed", failure, time.perf_counter() - t0, attempts)
    nb = _clean_notebook(nb_out, "programme", root)
    render_report(nb, staging / "report.html", title="New care models: the programme view", root=root)
    remove_tree(inputs)
    record = {
        "inputs": inputs_fingerprint(chosen),
        "report_sha256": hashlib.sha256((staging / "report.html").read_bytes()).hexdigest(),
    }
    record["signature"] = sign(programme_record_fields(record))  # made on this machine (reporting/signing.py)
    write_atomic(staging / "run.json", json.dumps(record, indent=2) + "\n")
    publish_dir(staging, outputs / "programme")
    return SiteRun("programme", "published", "", time.perf_counter() - t0, attempts)


def execute_site(
    job: SiteJob, root: str, outputs: str, template: str, executor: str = "kernel", timeout: float = SITE_TIMEOUT
) -> SiteRun:
    """Run one site's notebook (called in a worker process).

    The notebook runs in ``outputs/.staging/<site>-<id>/``; on success the folder
    becomes ``outputs/<site>/``. On failure the previous report stays where it is,
    and ``failed.ipynb`` (with the traceback) and ``failure.json`` go beside it. A run
    past ``timeout`` seconds is a failure and publishes nothing (the pool normally stops
    it first; this holds on Dask too).
    """
    root_p, out_p = Path(root), Path(outputs)
    # For the notebook only (the kernel or forked child inherits them): the project, and exactly the protocol it
    # loads. Restored after, so nothing of this site reaches whatever this process runs next.
    with environment({ROOT_ENV: str(root_p), PARAMS_FILE_ENV: str(root_p / job.params_file)}):
        t0 = time.perf_counter()
        staging = _staging(out_p, f"{job.site_id}-")
        try:
            return _site_in(staging, job, root_p, out_p, Path(template), executor, timeout, t0)
        finally:
            remove_tree(staging)  # gone already when it was swapped in


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in ``os.environ`` for the duration; each variable restored (or removed) after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _site_in(
    staging: Path, job: SiteJob, root_p: Path, out_p: Path, template: Path, executor: str, timeout: float, t0: float
) -> SiteRun:
    nb_out = staging / "report.ipynb"
    params = {**job.parameters, "output_dir": "."}
    if executor == IN_WORKER:
        failure, attempts = run_in_worker(template, nb_out, params, staging), 1
    elif executor == "forked":
        failure, attempts = run_forked(template, nb_out, params, staging, timeout), 1
    else:
        failure, attempts = execute_notebook(template, nb_out, params, staging, timeout)
    t_exec = time.perf_counter() - t0
    results = read_json(staging / "results.json") if failure is None else None
    if failure is None:
        failure = _results_problem(results, job)
    if failure is None and time.perf_counter() - t0 > timeout:
        failure = timed_out(timeout)
    if failure is not None or results is None:
        failure = scrub_paths(failure or "no results", root_p)
        if nb_out.exists():
            _clean_notebook(nb_out, job.site_id, root_p, failure)
        record_failure(out_p, job.site_id, failure, job.params_file, nb_out)
        return SiteRun(job.site_id, "failed", failure, time.perf_counter() - t0, attempts, {"execute": t_exec})
    nb = _clean_notebook(nb_out, job.site_id, root_p)
    t1 = time.perf_counter()
    title = f"{job.site_id}: {results.get('site_name', '')}"
    render_report(nb, staging / "report.html", title=title, root=root_p, fingerprint=job.result_fingerprint)
    t_render = time.perf_counter() - t1
    run_record = {
        "site_id": job.site_id,
        "fingerprint": job.fingerprint,
        "result_fingerprint": job.result_fingerprint,
        # The exact files this run made: any later edit (a copy, a hand edit) no longer matches.
        "results_sha256": hashlib.sha256(read_file(staging / "results.json")).hexdigest(),
        "report_sha256": hashlib.sha256(read_file(staging / "report.html")).hexdigest(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    # Signed with this machine's key: a record anyone could recompute (a pull request) never verifies.
    run_record["signature"] = sign(site_record_fields(job.site_id, run_record))
    write_atomic(staging / "run.json", json.dumps(run_record, indent=2) + "\n")
    publish_dir(staging, out_p / job.site_id)
    return SiteRun(
        job.site_id,
        results["status"],
        results.get("reason", ""),
        time.perf_counter() - t0,
        attempts,
        {"execute": t_exec, "render": t_render},
    )


def salvage_failure(outputs: Path, root: Path, job: SiteJob, why: str) -> str:
    """Record ``job``'s failure when the process running its notebook was killed (it died, or passed the time
    limit); returns the reason recorded.

    The notebook as far as it got (saved before each cell) is kept as ``failed.ipynb``, marked failed, when its
    staging folder is still there (the site ran in a worker of this run: :data:`IN_WORKER`).
    """
    pattern = re.compile(re.escape(job.site_id) + "-[0-9a-f]{8}")
    staged = None
    with suppress(OSError, UnsafePath):  # a link planted there is never followed: no notebook then
        staging = outputs / ".staging"
        found = staging.iterdir() if writing.check_dir(staging) else iter(())  # .staging itself a link too
        folders = [p for p in found if pattern.fullmatch(p.name) and writing.check_dir(p)]
        notebooks = [p / "report.ipynb" for p in folders if writing.check_file(p / "report.ipynb")]
        staged = max(notebooks, key=lambda p: p.stat().st_mtime) if notebooks else None
    if staged is not None:
        why = f"{why}; the notebook stopped part-way"
        try:
            _clean_notebook(staged, job.site_id, root, why)
        except Exception:  # noqa: BLE001 - a notebook cut mid-write: the failure is recorded without it
            staged = None
    record_failure(outputs, job.site_id, why, job.params_file, staged)
    return why


def _results_problem(results: dict[str, Any] | None, job: SiteJob) -> str | None:
    """Why the notebook's results cannot be published as this site's (None when they can)."""
    if results is None:
        return "the notebook finished without writing a readable results.json"
    prov = results.get("provenance") or {}
    if prov.get("departures"):
        return "the notebook ran with parameters that depart from the params file; nothing was published"
    if prov.get("fingerprint") != job.result_fingerprint:
        return (
            "the results do not match what was checked before the run (the data, params or code changed while "
            "it ran); nothing was published: run it again"
        )
    return None


def safe_execute(
    job: SiteJob, root: str, outputs: str, template: str, executor: str = "kernel", timeout: float = SITE_TIMEOUT
) -> SiteRun:
    """:func:`execute_site`, with any error of the runner itself recorded as the site's failure.

    A file-system fault (full disk, read-only or immutable folder) or a link where the site's
    files go is recorded as one line naming the folder and the fix, never a traceback.
    """
    try:
        run = execute_site(job, root, outputs, template, executor, timeout)
        if run.status == "failed" and executor == IN_WORKER:
            retire_after_task()  # results that cannot be published, or a late fault: as for a cell error
        return run
    except Exception as exc:  # noqa: BLE001 - one site's crash must not stop the batch; it is recorded
        if is_fault(exc):  # named for the outputs folder, not the staging folder inside it
            reason = fault_message(exc, Path(outputs))  # type: ignore[arg-type]
        elif isinstance(exc, EvalLibError):
            reason = str(exc)
        else:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            reason = f"runner error: {scrub_paths(detail, Path(root))}"
        reason = scrub_paths(reason, Path(root))
        if executor == IN_WORKER:
            retire_after_task()  # the runner failed part-way in this process: a fresh worker for the next site
        try:
            record_failure(Path(outputs), job.site_id, reason, job.params_file)
        except (OSError, UnsafePath):
            pass  # the outputs folder itself is failing; the summary still reports the site
        return SiteRun(job.site_id, "failed", reason)
