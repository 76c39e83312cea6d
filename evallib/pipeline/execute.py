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
  not at all, and a SIGTERM waits for a folder swap in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evallib.pipeline.executor import run_forked, warm_up
from evallib.pipeline.notebook import PARAMS_FILE_ENV
from evallib.pipeline.pool import critical
from evallib.pipeline.preflight import PROGRAMME_TEMPLATE, TEMPLATE, SiteJob, project_env, relative
from evallib.protocol.paths import ROOT_ENV
from evallib.reporting.publishing import SiteEntry, inputs_fingerprint, read_json
from evallib.reporting.signing import programme_record_fields, sign, site_record_fields
from evallib.reporting.static_site import render_report, scrub_paths

KERNEL_START_RETRIES = 3


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

    class IPCKernelManager(AsyncKernelManager):  # type: ignore[misc]
        """Kernels on IPC sockets: no TCP port to collide on when many start at once."""

        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def _clean_notebook(path: Path, site_id: str, root: Path, failure: str | None = None) -> None:
    """Relative paths in papermill metadata; a visible failure marker when needed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
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
    text = scrub_paths(nbformat.writes(nb), root)
    path.write_text(text, encoding="utf-8")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary name, flushed, then renamed)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _publish_dir(staging: Path, final: Path) -> None:
    """Replace ``final`` with ``staging`` so readers see the old or the new folder, never half.

    A SIGTERM waits for the two renames; a process killed between them leaves the old folder as
    ``.<site>.old-*``, which :func:`recover` puts back before the next run.
    """
    trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    with critical():
        if final.exists():
            final.rename(trash)
        staging.rename(final)
    shutil.rmtree(trash, ignore_errors=True)


def recover(outputs: Path) -> list[str]:
    """Undo swaps cut short by a killed run: a site folder missing beside its ``.old`` copy gets it back."""
    restored = []
    for trash in sorted(outputs.glob(".*.old-*")):
        name = trash.name[1:].rsplit(".old-", 1)[0]
        final = outputs / name
        if trash.is_dir() and not final.exists():
            trash.rename(final)
            restored.append(name)
        else:
            shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(outputs / ".staging", ignore_errors=True)  # leftovers of a killed run (we hold the lock)
    for tmp in outputs.glob(".site-staging-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    return restored


def record_failure(
    outputs: Path, site_id: str, reason: str, params_file: str = "", notebook: Path | None = None
) -> None:
    """``failure.json`` (and ``failed.ipynb``) beside the site's last good report, each written whole."""
    final = outputs / site_id
    with critical():
        final.mkdir(parents=True, exist_ok=True)
        if notebook is not None and notebook.exists():
            write_atomic(final / "failed.ipynb", notebook.read_text(encoding="utf-8"))
        record = {"site_id": site_id, "status": "failed", "reason": reason, "params_file": params_file}
        write_atomic(final / "failure.json", json.dumps(record, indent=2) + "\n")


def execute_notebook(template: Path, nb_out: Path, params: dict[str, Any], cwd: Path) -> tuple[str | None, int]:
    """Execute one notebook with Papermill on an IPC kernel; return (failure or None, attempts).

    A cell error and a dead kernel are failures (the output notebook is kept); a
    kernel that fails to start is retried, as parallel starts can collide.
    """
    import papermill as pm
    from nbclient.exceptions import DeadKernelError

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
                kernel_manager_class=_kernel_manager_class(),
            )
            return None, attempts
        except pm.PapermillExecutionError as exc:
            return f"{exc.ename}: {exc.evalue}", attempts
        except DeadKernelError as exc:
            return f"the kernel died ({exc}); the notebook stopped part-way", attempts
        except (RuntimeError, TimeoutError) as exc:
            # Kernel start-up failures (e.g. "Kernel died before replying to kernel_info").
            if attempts >= KERNEL_START_RETRIES:
                return f"the kernel could not start after {attempts} attempts: {exc}", attempts
            time.sleep(0.5 * attempts)


def run_programme(root: Path, outputs: Path, executor: str = "kernel", sites: list[SiteEntry] | None = None) -> SiteRun:
    """Execute the programme notebook over the verified results of ``sites``; publish outputs/programme/.

    The notebook reads copies of exactly those results (never drafts, stale or unreadable
    ones); ``programme/run.json`` records which, so the page is linked only while they are
    what the site shows. Skipped (status "skipped") when the project has no programme
    notebook or there are no results. A failure keeps the previous programme report, which
    is then no longer linked.
    """
    template = root / PROGRAMME_TEMPLATE
    chosen = [e for e in (sites or []) if e.page is not None]
    if not template.is_file() or not chosen:
        return SiteRun("programme", "skipped", "no programme notebook or no site results")
    t0 = time.perf_counter()
    staging = outputs / ".staging" / f"programme-{uuid.uuid4().hex[:8]}"
    inputs = staging / "inputs"
    for e in chosen:
        (inputs / e.site_id).mkdir(parents=True)
        shutil.copyfile(outputs / e.site_id / "results.json", inputs / e.site_id / "results.json")
    nb_out = staging / "report.ipynb"
    inside = inputs.resolve().is_relative_to(root.resolve())
    params = {"outputs_dir": relative(inputs, root) if inside else str(inputs)}
    with project_env(root):  # for the notebook only: this process's environment is left as it was
        if executor == "forked":
            warm_up()
            failure, attempts = run_forked(template, nb_out, params, staging), 1
        else:
            failure, attempts = execute_notebook(template, nb_out, params, staging)
    if failure is not None:
        failure = scrub_paths(failure, root)
        if nb_out.exists():
            _clean_notebook(nb_out, "programme", root, failure)
        record_failure(outputs, "programme", failure, notebook=nb_out)
        shutil.rmtree(staging, ignore_errors=True)
        return SiteRun("programme", "failed", failure, time.perf_counter() - t0, attempts)
    _clean_notebook(nb_out, "programme", root)
    render_report(nb_out, staging / "report.html", title="New care models: the programme view", root=root)
    shutil.rmtree(inputs)
    record = {
        "inputs": inputs_fingerprint(chosen),
        "report_sha256": hashlib.sha256((staging / "report.html").read_bytes()).hexdigest(),
    }
    record["signature"] = sign(programme_record_fields(record))  # made on this machine (reporting/signing.py)
    write_atomic(staging / "run.json", json.dumps(record, indent=2) + "\n")
    _publish_dir(staging, outputs / "programme")
    return SiteRun("programme", "published", "", time.perf_counter() - t0, attempts)


def execute_site(job: SiteJob, root: str, outputs: str, template: str, executor: str = "kernel") -> SiteRun:
    """Run one site's notebook (called in a worker process).

    The notebook runs in ``outputs/.staging/<site>-<id>/``; on success the folder
    becomes ``outputs/<site>/``. On failure the previous report stays where it is,
    and ``failed.ipynb`` (with the traceback) and ``failure.json`` go beside it.
    """
    root_p, out_p = Path(root), Path(outputs)
    os.environ[ROOT_ENV] = str(root_p)
    os.environ[PARAMS_FILE_ENV] = str(root_p / job.params_file)  # the notebook loads exactly this protocol
    t0 = time.perf_counter()
    staging = out_p / ".staging" / f"{job.site_id}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    nb_out = staging / "report.ipynb"
    params = {**job.parameters, "output_dir": "."}
    if executor == "forked":
        failure, attempts = run_forked(Path(template), nb_out, params, staging), 1
    else:
        failure, attempts = execute_notebook(Path(template), nb_out, params, staging)
    t_exec = time.perf_counter() - t0
    results = read_json(staging / "results.json") if failure is None else None
    if failure is None:
        failure = _results_problem(results, job)
    if failure is not None or results is None:
        failure = scrub_paths(failure or "no results", root_p)
        if nb_out.exists():
            _clean_notebook(nb_out, job.site_id, root_p, failure)
        record_failure(out_p, job.site_id, failure, job.params_file, nb_out)
        shutil.rmtree(staging, ignore_errors=True)
        return SiteRun(job.site_id, "failed", failure, time.perf_counter() - t0, attempts, {"execute": t_exec})
    _clean_notebook(nb_out, job.site_id, root_p)
    t1 = time.perf_counter()
    title = f"{job.site_id}: {results.get('site_name', '')}"
    render_report(nb_out, staging / "report.html", title=title, root=root_p, fingerprint=job.result_fingerprint)
    t_render = time.perf_counter() - t1
    run_record = {
        "site_id": job.site_id,
        "fingerprint": job.fingerprint,
        "result_fingerprint": job.result_fingerprint,
        # The exact files this run made: any later edit (a copy, a hand edit) no longer matches.
        "results_sha256": hashlib.sha256((staging / "results.json").read_bytes()).hexdigest(),
        "report_sha256": hashlib.sha256((staging / "report.html").read_bytes()).hexdigest(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    # Signed with this machine's key: a record anyone could recompute (a pull request) never verifies.
    run_record["signature"] = sign(site_record_fields(job.site_id, run_record))
    write_atomic(staging / "run.json", json.dumps(run_record, indent=2) + "\n")
    _publish_dir(staging, out_p / job.site_id)
    return SiteRun(
        job.site_id,
        results["status"],
        results.get("reason", ""),
        time.perf_counter() - t0,
        attempts,
        {"execute": t_exec, "render": t_render},
    )


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


def safe_execute(job: SiteJob, root: str, outputs: str, template: str, executor: str = "kernel") -> SiteRun:
    """:func:`execute_site`, with any error of the runner itself recorded as the site's failure."""
    try:
        return execute_site(job, root, outputs, template, executor)
    except Exception as exc:  # noqa: BLE001 - one site's crash must not stop the batch; it is recorded
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        reason = f"runner error: {scrub_paths(detail, Path(root))}"
        try:
            record_failure(Path(outputs), job.site_id, reason, job.params_file)
        except OSError:
            pass  # the outputs folder itself is failing; the summary still reports the site
        return SiteRun(job.site_id, "failed", reason)
