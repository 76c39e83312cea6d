"""Batch execution of the site notebook, one Papermill run per params file, then the programme view
and the static site.

A failing site never stops the batch; sites whose inputs are unchanged since their
last successful run are skipped; notebooks run in parallel processes (forked after
the imports, or one kernel each), or as tasks on a Dask cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from evallib.errors import ExecutionError, ParamsError
from evallib.pipeline import executor as fast
from evallib.pipeline.execute import SiteRun, run_programme, safe_execute
from evallib.pipeline.preflight import TEMPLATE, SiteJob, preflight, relative, unchanged_since_last_run
from evallib.protocol.params import find_params
from evallib.reporting.static_site import build_site


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

    root = (root or Path.cwd()).resolve()
    params_dir = params_dir or root / "params"
    outputs = (outputs or root / "outputs").resolve()
    template = root / TEMPLATE
    if not template.is_file():
        raise ExecutionError(f"notebook template {TEMPLATE} not found under {root.name}/; run from the project root")
    files = find_params(params_dir, site_ids)
    if not files:
        raise ParamsError(f"no params files under {relative(params_dir, root)}/; run `evallib make-params`")
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
            pool.submit(safe_execute, job, str(root), str(outputs), str(template), executor): job for job in batch
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
                safe_execute,
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
