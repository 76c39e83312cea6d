"""Executing one notebook (a site's or the programme's) and publishing its outputs atomically.

What this guards against (papermill's traps, measured in this project's notes):

* kernel port collisions when kernels start in parallel: kernels talk over IPC
  sockets, not TCP ports, and a failed start is retried;
* a dead kernel leaves a notebook that is not marked failed: it is marked here and
  the failure recorded;
* a failing site never destroys the site's last good report: each site runs in a
  staging folder that replaces ``outputs/<site>/`` only on success;
* absolute paths in warnings, metadata or HTML: cleaned before anything is written.
"""

from __future__ import annotations

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
from evallib.pipeline.preflight import PROGRAMME_TEMPLATE, TEMPLATE, SiteJob, relative
from evallib.protocol.paths import ROOT_ENV
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


def _publish_dir(staging: Path, final: Path) -> None:
    """Replace ``final`` with ``staging`` so readers see the old or the new folder, never half."""
    trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    if final.exists():
        final.rename(trash)
    staging.rename(final)
    shutil.rmtree(trash, ignore_errors=True)


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


def run_programme(root: Path, outputs: Path, executor: str = "kernel") -> SiteRun:
    """Execute the programme notebook over every published results.json; publish outputs/programme/.

    Skipped (status "skipped") when the project has no programme notebook or no site
    was evaluated. Like a site, a failure keeps the previous programme report.
    """
    template = root / PROGRAMME_TEMPLATE
    if not template.is_file() or not any(outputs.glob("*/results.json")):
        return SiteRun("programme", "skipped", "no programme notebook or no site results")
    t0 = time.perf_counter()
    os.environ[ROOT_ENV] = str(root)
    staging = outputs / ".staging" / f"programme-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    nb_out = staging / "report.ipynb"
    params = {"outputs_dir": relative(outputs, root)}
    if executor == "forked":
        warm_up()
        failure, attempts = run_forked(template, nb_out, params, staging), 1
    else:
        failure, attempts = execute_notebook(template, nb_out, params, staging)
    final = outputs / "programme"
    if failure is not None:
        failure = scrub_paths(failure, root)
        final.mkdir(parents=True, exist_ok=True)
        if nb_out.exists():
            _clean_notebook(nb_out, "programme", root, failure)
            shutil.copyfile(nb_out, final / "failed.ipynb")
        (final / "failure.json").write_text(json.dumps({"status": "failed", "reason": failure}, indent=2) + "\n")
        shutil.rmtree(staging, ignore_errors=True)
        return SiteRun("programme", "failed", failure, time.perf_counter() - t0, attempts)
    _clean_notebook(nb_out, "programme", root)
    render_report(nb_out, staging / "report.html", title="New care models: the programme view", root=root)
    _publish_dir(staging, final)
    return SiteRun("programme", "published", "", time.perf_counter() - t0, attempts)


def execute_site(job: SiteJob, root: str, outputs: str, template: str, executor: str = "kernel") -> SiteRun:
    """Run one site's notebook (called in a worker process).

    The notebook runs in ``outputs/.staging/<site>-<id>/``; on success the folder
    becomes ``outputs/<site>/``. On failure the previous report stays where it is,
    and ``failed.ipynb`` (with the traceback) and ``failure.json`` go beside it.
    """
    root_p, out_p = Path(root), Path(outputs)
    os.environ[ROOT_ENV] = str(root_p)
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
    final = out_p / job.site_id
    if failure is None and not (staging / "results.json").exists():
        failure = "the notebook finished without writing results.json"
    if failure is not None:
        failure = scrub_paths(failure, root_p)
        if nb_out.exists():
            _clean_notebook(nb_out, job.site_id, root_p, failure)
        final.mkdir(parents=True, exist_ok=True)
        if nb_out.exists():
            shutil.copyfile(nb_out, final / "failed.ipynb")
        record = {"site_id": job.site_id, "status": "failed", "reason": failure, "params_file": job.params_file}
        tmp = final / ".failure.json.tmp"
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        tmp.replace(final / "failure.json")
        shutil.rmtree(staging, ignore_errors=True)
        return SiteRun(job.site_id, "failed", failure, time.perf_counter() - t0, attempts, {"execute": t_exec})
    _clean_notebook(nb_out, job.site_id, root_p)
    t1 = time.perf_counter()
    results = json.loads((staging / "results.json").read_text(encoding="utf-8"))
    render_report(nb_out, staging / "report.html", title=f"{job.site_id}: {results.get('site_name', '')}", root=root_p)
    t_render = time.perf_counter() - t1
    run_record = {
        "site_id": job.site_id,
        "fingerprint": job.fingerprint,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (staging / "run.json").write_text(json.dumps(run_record, indent=2) + "\n", encoding="utf-8")
    _publish_dir(staging, final)
    return SiteRun(
        job.site_id,
        results["status"],
        results.get("reason", ""),
        time.perf_counter() - t0,
        attempts,
        {"execute": t_exec, "render": t_render},
    )


def safe_execute(job: SiteJob, root: str, outputs: str, template: str, executor: str = "kernel") -> SiteRun:
    try:
        return execute_site(job, root, outputs, template, executor)
    except Exception as exc:  # noqa: BLE001 - one site's crash must not stop the batch; it is recorded
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return SiteRun(job.site_id, "failed", f"runner error: {scrub_paths(detail, Path(root))}")
