"""Batch execution of the site notebook, one Papermill run per params file.

What the runner guards against (papermill's traps, measured in this project's notes):

* misspelt or wrongly typed parameters only warn in Papermill: every params file
  is validated (:func:`preflight`) before any kernel starts, and the data each
  names is loaded and checked once;
* kernel port collisions when kernels start in parallel: kernels talk over IPC
  sockets, not TCP ports, and a failed start is retried;
* a dead kernel leaves a notebook that is not marked failed: the runner marks it
  itself and records the failure;
* a failing site never stops the batch, and never destroys the site's last good
  report: each site runs in a staging folder that replaces ``outputs/<site>/``
  only on success;
* absolute paths in warnings, metadata or HTML: cleaned before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evallib.errors import DataError, ExecutionError, ParamsError
from evallib.params import SiteProtocol, find_params, load_params, read_yaml
from evallib.paths import ROOT_ENV

TEMPLATE = Path("notebooks") / "site_evaluation.ipynb"
KERNEL_START_RETRIES = 3


@dataclass(frozen=True)
class SiteJob:
    """One site to run: its validated protocol and the raw values for Papermill."""

    site_id: str
    params_file: str
    parameters: dict[str, Any]
    fingerprint: str = ""


@dataclass(frozen=True)
class SiteRun:
    """What happened to one site in a batch."""

    site_id: str
    status: str  # "evaluated", "not evaluable" or "failed"
    reason: str = ""
    seconds: float = 0.0
    attempts: int = 1
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- preflight


def preflight(params_files: list[Path], root: Path) -> list[SiteJob]:
    """Validate every params file and the data each names, before any kernel starts.

    Raises
    ------
    ParamsError
        Listing every invalid file (not just the first), or duplicate site ids.
    DataError
        When a data source cannot be loaded or lacks a protocol's outcome.
    """
    from evallib.site import load_panel

    problems: list[str] = []
    jobs: list[SiteJob] = []
    protocols: list[SiteProtocol] = []
    seen: dict[str, str] = {}
    for path in params_files:
        try:
            protocol = load_params(path)
        except ParamsError as exc:
            problems.append(str(exc))
            continue
        rel = _relative(path, root)
        if protocol.site_id in seen:
            problems.append(
                f"{rel}: site_id {protocol.site_id!r} is also used by {seen[protocol.site_id]}; ids must be unique"
            )
            continue
        if path.stem != protocol.site_id:
            problems.append(
                f"{rel}: the file name should match site_id {protocol.site_id!r} (rename it {protocol.site_id}.yaml)"
            )
            continue
        seen[protocol.site_id] = rel
        protocols.append(protocol)
        jobs.append(SiteJob(protocol.site_id, rel, read_yaml(path), fingerprint(path, protocol, root)))
    if problems:
        raise ParamsError(f"{len(problems)} params file(s) are invalid; no site was run:\n- " + "\n- ".join(problems))
    # Load each data source once, so a broken file fails here, not in 95 kernels.
    checked: dict[str, list[str]] = {}
    extents: dict[str, tuple[pd.Timestamp, set[str]]] = {}
    for protocol in protocols:
        key = repr(protocol.data_source)
        if key not in checked:
            old = os.environ.get(ROOT_ENV)
            os.environ[ROOT_ENV] = str(root)
            try:
                panel = load_panel(protocol)
                checked[key] = panel.outcomes
                extents[key] = (panel.periods().min(), set(panel.units))
            except DataError as exc:
                raise DataError(
                    f"site {protocol.site_id} ({_relative(Path(protocol.source_file), root)}): {exc}"
                ) from exc
            finally:
                if old is None:
                    os.environ.pop(ROOT_ENV, None)
                else:
                    os.environ[ROOT_ENV] = old
        problem = _check_against_data(protocol, *extents[key])
        if problem:
            raise ParamsError(f"{protocol.source_file}: {problem}")
        for o in protocol.outcomes:
            if o not in checked[key]:
                field_name = "primary_outcome" if o == protocol.primary_outcome else "secondary_outcomes"
                raise ParamsError(
                    f"{protocol.source_file}: field '{field_name}' names {o!r}, which the data source does not have. "
                    f"Allowed values: {', '.join(checked[key])}."
                )
    return jobs


_CODE_HASH: list[str] = []


def _code_hash() -> str:
    """SHA-256 of evallib's own source: a code change reruns every site, even without a version bump."""
    if not _CODE_HASH:
        h = hashlib.sha256()
        for f in sorted(Path(__file__).parent.glob("*.py")):
            h.update(f.read_bytes())
        _CODE_HASH.append(h.hexdigest())
    return _CODE_HASH[0]


def fingerprint(params_file: Path, protocol: SiteProtocol, root: Path) -> str:
    """What a site's outputs depend on: its params file, the notebook, the data and evallib itself."""
    from evallib import __version__
    from evallib.site import _sha256, data_files

    old = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(root)
    try:
        files = data_files(protocol)
    finally:
        if old is None:
            os.environ.pop(ROOT_ENV, None)
        else:
            os.environ[ROOT_ENV] = old
    h = hashlib.sha256()
    h.update(params_file.read_bytes())
    template = root / TEMPLATE
    if template.is_file():
        h.update(template.read_bytes())
    for f in files:
        h.update(f.name.encode() + (_sha256(f).encode() if f.is_file() else b"missing"))
    h.update(__version__.encode() + _code_hash().encode())
    return h.hexdigest()


def unchanged_since_last_run(job: SiteJob, outputs: Path) -> dict[str, Any] | None:
    """The previous results when the site's fingerprint matches its last successful run, else None."""
    folder = outputs / job.site_id
    record, results = folder / "run.json", folder / "results.json"
    if not (record.is_file() and results.is_file()) or (folder / "failure.json").exists():
        return None
    try:
        if json.loads(record.read_text(encoding="utf-8")).get("fingerprint") != job.fingerprint:
            return None
        return json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_against_data(protocol: SiteProtocol, data_start: pd.Timestamp, units: set[str]) -> str:
    """Protocol errors that only the data reveal (empty string when there are none).

    Trust codes that neither the data nor the NHS trust register know are typing
    errors; a known trust missing from the data makes the site "not evaluable" instead.
    """
    from evallib.data import BUNDLED
    from evallib.registry import known_trusts

    known = units | (
        known_trusts() if isinstance(protocol.data_source, str) and protocol.data_source in BUNDLED else set()
    )
    unknown = [c for c in protocol.treated_units if c not in known]
    if unknown:
        return (
            f"field 'treated_units' has code(s) {', '.join(unknown)} that are neither in the data nor NHS trust "
            "codes. Check the ODS codes of the site's trusts."
        )
    missing = [c for c in protocol.comparison_include if c not in units]
    if missing:
        return (
            f"field 'comparison_include' names {', '.join(missing)}, not in the data, so the comparison pool would "
            "lose them (or be empty). Use codes present in the data."
        )
    if protocol.start <= data_start:
        return (
            f"field 'intervention_start' is {protocol.intervention_start}, at or before the first period of the data "
            f"({data_start:%Y-%m}), so there can be no pre-period. Check the date or the data source."
        )
    return ""


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


# --------------------------------------------------------------------------- one site


def _kernel_manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):  # type: ignore[misc]
        """Kernels on IPC sockets: no TCP port to collide on when many start at once."""

        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def scrub_paths(text: str, root: Path) -> str:
    """Remove absolute paths of this machine from text bound for publication."""
    import sys
    import tempfile

    prefixes = {str(root.resolve()), str(root), sys.prefix, sys.base_prefix, str(Path.home()), tempfile.gettempdir()}
    for prefix in sorted((p for p in prefixes if p and p != "/"), key=len, reverse=True):
        text = text.replace(prefix + os.sep, "").replace(prefix, "")
    return text


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


PROGRAMME_TEMPLATE = Path("notebooks") / "programme_summary.ipynb"


def run_programme(root: Path, outputs: Path, executor: str = "kernel") -> SiteRun:
    """Execute the programme notebook over every published results.json; publish outputs/programme/.

    Skipped (status "skipped") when the project has no programme notebook or no site
    was evaluated. Like a site, a failure keeps the previous programme report.
    """
    from evallib.publish import render_report

    template = root / PROGRAMME_TEMPLATE
    if not template.is_file() or not any(outputs.glob("*/results.json")):
        return SiteRun("programme", "skipped", "no programme notebook or no site results")
    t0 = time.perf_counter()
    os.environ[ROOT_ENV] = str(root)
    staging = outputs / ".staging" / f"programme-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    nb_out = staging / "report.ipynb"
    params = {"outputs_dir": _relative(outputs, root)}
    if executor == "forked":
        from evallib.executor import run_forked, warm_up

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
    from evallib.publish import render_report

    root_p, out_p = Path(root), Path(outputs)
    os.environ[ROOT_ENV] = str(root_p)
    t0 = time.perf_counter()
    staging = out_p / ".staging" / f"{job.site_id}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    nb_out = staging / "report.ipynb"
    params = {**job.parameters, "output_dir": "."}
    if executor == "forked":
        from evallib.executor import run_forked

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


def _safe_execute(job: SiteJob, root: str, outputs: str, template: str, executor: str = "kernel") -> SiteRun:
    try:
        return execute_site(job, root, outputs, template, executor)
    except Exception as exc:  # noqa: BLE001 - one site's crash must not stop the batch; it is recorded
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return SiteRun(job.site_id, "failed", f"runner error: {scrub_paths(detail, Path(root))}")


# --------------------------------------------------------------------------- batch


@dataclass(frozen=True)
class BatchResult:
    runs: tuple[SiteRun, ...]
    seconds: float

    @property
    def failed(self) -> list[SiteRun]:
        return [r for r in self.runs if r.status == "failed"]

    @property
    def exit_code(self) -> int:
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
) -> BatchResult:
    """Validate, execute and publish the chosen sites (all when ``site_ids`` is empty).

    Runs ``jobs`` notebooks at a time (default: every core) in separate processes,
    keeps going when a site fails, writes ``outputs/run-summary.json`` and rebuilds
    ``outputs/site/``. A site whose params file, notebook, data and evallib code are
    unchanged since its last successful run is skipped unless ``force``.
    """
    from tqdm import tqdm

    from evallib.publish import build_site

    root = (root or Path.cwd()).resolve()
    params_dir = params_dir or root / "params"
    outputs = (outputs or root / "outputs").resolve()
    template = root / TEMPLATE
    if not template.is_file():
        raise ExecutionError(f"notebook template {TEMPLATE} not found under {root.name}/; run from the project root")
    files = find_params(params_dir, site_ids)
    if not files:
        raise ParamsError(f"no params files under {_relative(params_dir, root)}/; run `evallib make-params`")
    batch = preflight(files, root)
    outputs.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(outputs / ".staging", ignore_errors=True)  # leftovers of a killed run
    t0 = time.perf_counter()
    runs: list[SiteRun] = []
    if not force:
        todo = []
        for job in batch:
            previous = unchanged_since_last_run(job, outputs)
            if previous is None:
                todo.append(job)
            else:
                runs.append(
                    SiteRun(
                        job.site_id, previous["status"], "unchanged since the last run (use --force to rerun)", 0.0, 0
                    )
                )
        batch = todo
    n_workers = max(1, min(jobs or os.cpu_count() or 1, max(1, len(batch))))
    from evallib import executor as fast

    if executor not in ("auto", "kernel", "forked"):
        raise ExecutionError(f"executor {executor!r}: use auto, kernel or forked")
    if executor == "auto":
        executor = "forked" if fast.available() and scheduler is None else "kernel"
    if executor == "forked" and (scheduler is not None or not fast.available()):
        raise ExecutionError("the forked executor needs a local POSIX machine; use --executor kernel")
    bar = tqdm(total=len(batch), desc="sites", unit="site", disable=not progress)
    if scheduler is not None:
        runs.extend(_run_on_dask(scheduler, batch, root, outputs, template, bar))
        bar.close()
        return _finish(runs, root, outputs, batch, t0, n_workers, executor)
    # Forked executor: each worker imports the heavy libraries once, then forks per notebook.
    pool = ProcessPoolExecutor(max_workers=n_workers, initializer=fast.warm_up if executor == "forked" else None)
    try:
        futures = {
            pool.submit(_safe_execute, job, str(root), str(outputs), str(template), executor): job for job in batch
        }
        for fut in as_completed(futures):
            run = fut.result()
            runs.append(run)
            bar.set_postfix_str(f"{run.site_id} {run.status}")
            bar.update()
    except KeyboardInterrupt:
        # Finished sites are already published (each is swapped in whole); unfinished ones keep
        # their previous outputs. Drop half-built staging folders and republish the index.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        shutil.rmtree(outputs / ".staging", ignore_errors=True)
        build_site(outputs)
        raise
    pool.shutdown(wait=True)
    bar.close()
    return _finish(runs, root, outputs, batch, t0, n_workers, executor)


def _run_on_dask(
    scheduler: str, batch: list[SiteJob], root: Path, outputs: Path, template: Path, bar: object
) -> list[SiteRun]:
    """The same site executions as tasks on a Dask cluster (workers must see the same files)."""
    try:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed
    except ImportError as exc:
        raise ExecutionError("the Dask backend needs dask[distributed]: pip install 'evallib[dask]'") from exc
    runs = []
    with Client(scheduler) as client:
        futures = [
            client.submit(
                _safe_execute,
                job,
                str(root),
                str(outputs),
                str(template),
                key=f"site-{job.site_id}-{uuid.uuid4().hex[:6]}",
                pure=False,
            )
            for job in batch
        ]
        for fut in dask_completed(futures):
            run = fut.result()
            runs.append(run)
            bar.set_postfix_str(f"{run.site_id} {run.status}")  # type: ignore[attr-defined]
            bar.update()  # type: ignore[attr-defined]
    return runs


def _finish(
    runs: list[SiteRun], root: Path, outputs: Path, batch: list[SiteJob], t0: float, n_workers: int, executor: str
) -> BatchResult:
    """Tidy up after the site runs: failure records, the programme view, the summary and the site."""
    from evallib.publish import build_site

    runs.sort(key=lambda r: r.site_id)
    for r in runs:
        # A site that now runs cleanly leaves no stale failure record behind.
        if r.status != "failed":
            for name in ("failure.json", "failed.ipynb"):
                (outputs / r.site_id / name).unlink(missing_ok=True)
    if batch or not (outputs / "programme" / "report.html").exists():
        programme = run_programme(root, outputs, executor)
        if programme.status != "skipped":
            runs.append(programme)
    result = BatchResult(tuple(runs), time.perf_counter() - t0)
    summary = {"seconds": round(result.seconds, 2), "workers": n_workers, "runs": [asdict(r) for r in runs]}
    tmp = outputs / ".run-summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(outputs / "run-summary.json")
    build_site(outputs)
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
