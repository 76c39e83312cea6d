"""The batch's Dask client after its sites: the programme notebook on a warm worker, published by the client.

``evallib run --scheduler`` keeps one client (:func:`connected`) for its sites and then its programme notebook,
which, with warm workers (the default forked executor), runs where the sites ran rather than on the client: the
client never warmed, and would otherwise import and warm the whole analysis stack for this one notebook. The task
carries the notebook template, the project's ``evallib.toml`` and a copy of each verified ``results.json`` the page
is made from (the ones a local run copies: :func:`evallib.pipeline.execute.run_programme`) as bytes, packed
(:func:`evallib.pipeline.dask_warm.packed`). The worker lays them out in a private temporary project and runs the
notebook there as a local run does (the forked executor, the page rendered, a run record signed with a throwaway
key), and returns the finished files as bytes. The client checks them (every file there and under
:data:`RETURNED_MAX_BYTES`, the run record names exactly the results the client chose and the hash of the returned
page, recomputed here), writes its own run record signed with its own key and swaps ``outputs/programme/`` in under
its outputs lock. Nothing the worker returns is used as a path. A report that fails the checks is refused and
recorded as the programme's failure: the previous programme report stays, no longer linked, as when the notebook
fails.

When the cluster has no worker, or the task fails on it (a lost worker, a worker that cannot run it as a local run
would, no answer within the time limit and a margin), the client runs the notebook itself, as a local run does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

from evallib.errors import EvalLibError, ExecutionError
from evallib.pipeline import dask_warm
from evallib.pipeline.execute import SITE_TIMEOUT, SiteRun, environment, run_programme
from evallib.pipeline.folders import FAILURE_FILES, publish_dir, record_failure
from evallib.pipeline.preflight import PROGRAMME_TEMPLATE
from evallib.pipeline.warm import malloc_defaults
from evallib.protocol import writing
from evallib.protocol.paths import ROOT_ENV
from evallib.protocol.writing import make_dir, remove_tree
from evallib.reporting.publishing import SiteEntry, inputs_fingerprint
from evallib.reporting.signing import KEY_ENV, programme_record_fields, sign
from evallib.sources.files import SETTINGS_FILE

__all__ = ["RETURNED_MAX_BYTES", "connected", "publish_programme", "run_on_worker", "runner"]

#: The files of ``outputs/programme/`` that come back from a worker.
PROGRAMME_FILES = ("report.html", "report.ipynb", "run.json")
#: The most a returned file may hold: a programme page with its figures is a few MB; anything far larger is not one.
RETURNED_MAX_BYTES = dask_warm.RETURNED_MAX_BYTES
#: How long past the notebook's own limit the client waits for the task before running the notebook itself: the
#: worker stops the notebook at the limit and returns its failure, so only a lost or stuck task takes this long.
MARGIN = 120.0

Runner = Callable[[Path, Path, str, list[SiteEntry], float], SiteRun]


@contextmanager
def connected(scheduler: Any) -> Iterator[Any]:
    """A Dask client of the scheduler at the address ``scheduler`` for the duration, or ``scheduler`` itself when it
    is a client already (the batch keeps one for its sites and then its programme notebook).
    """
    if not isinstance(scheduler, str):
        yield scheduler
        return
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ExecutionError("the Dask backend needs dask[distributed]: pip install 'evallib[dask]'") from exc
    with Client(scheduler) as client:
        yield client


def runner(client: Any) -> Runner:
    """:func:`run_programme`'s stand-in for a batch on warm Dask workers: the notebook runs on one of ``client``'s."""
    return partial(_run_on_cluster, client)


def _run_on_cluster(
    client: Any, root: Path, outputs: Path, executor: str, sites: list[SiteEntry], timeout: float = SITE_TIMEOUT
) -> SiteRun:
    template = root / PROGRAMME_TEMPLATE
    chosen = [e for e in sites if e.page is not None]
    if not template.is_file() or not chosen or not _has_workers(client):
        # Nothing to run (run_programme says so), or no worker to run it: the client runs it, as a local run does.
        return run_programme(root, outputs, executor, chosen, timeout)
    t0 = time.perf_counter()
    files = {PROGRAMME_TEMPLATE.as_posix(): writing.read_file(template)}
    if (root / SETTINGS_FILE).is_file():
        files[SETTINGS_FILE] = writing.read_file(root / SETTINGS_FILE)
    results = {e.site_id: writing.read_file(outputs / e.site_id / "results.json") for e in chosen}
    task = dask_warm.packed(run_on_worker, files, results, timeout)
    future = None
    try:
        future = client.submit(*task, key=f"programme-{uuid.uuid4().hex[:6]}", pure=False)
        run, returned = future.result(timeout=timeout + MARGIN)
        if not isinstance(run, SiteRun) or not isinstance(returned, dict):
            raise TypeError("the programme task returned something else than its run and files")
    except KeyboardInterrupt:
        _cancel(future)
        raise
    except Exception:  # noqa: BLE001 - a scheduler gone, a lost, refused or stuck task: the client runs it itself
        _cancel(future)
        return run_programme(root, outputs, executor, chosen, timeout)
    with dask_warm.TASK_LOCK:  # signed with this machine's key, not an in-process task's throwaway one
        run = publish_programme(chosen, run, returned, outputs)
    return SiteRun("programme", run.status, run.reason, time.perf_counter() - t0, run.attempts)


def _has_workers(client: Any) -> bool:
    try:
        return bool(client.scheduler_info().get("workers"))
    except Exception:  # noqa: BLE001 - a scheduler gone since the sites ran has no worker for this
        return False


def _cancel(future: Any) -> None:
    if future is not None:
        with suppress(Exception):  # a client already closed: nothing left to cancel
            future.cancel()


def run_on_worker(
    files: dict[str, bytes], results: dict[str, bytes], timeout: float
) -> tuple[SiteRun, dict[str, bytes]]:
    """Run the programme notebook on a Dask worker over shipped ``results``; return its run and files (a Dask task).

    ``files`` holds the notebook template and ``evallib.toml`` by project-relative path, ``results`` each site's
    ``results.json`` by site id. They are laid out in a private temporary project (removed however the task ends)
    and the notebook runs there as :func:`run_programme` runs it locally, with the forked executor, signed with a
    throwaway key (the client signs its own record). Returns the published files, or the failure's notebook.

    Raises
    ------
    EvalLibError
        When this worker cannot run it as a local run would (BLAS on several threads, installed files changed
        since it warmed): the client then runs it itself.
    """
    with dask_warm.TASK_LOCK:  # one notebook at a time in this process: its environment and key are process-wide
        why = dask_warm.refusal()
        if why is not None:
            raise EvalLibError(why)
        dask_warm.calm_this_worker()  # the notebook warms up as a local one does (run_programme)
        base = Path(tempfile.mkdtemp(prefix="evallib-programme-"))
        try:
            return _run_in(base, files, results, timeout)
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _run_in(
    base: Path, files: dict[str, bytes], results: dict[str, bytes], timeout: float
) -> tuple[SiteRun, dict[str, bytes]]:
    project = base / "project"
    project.mkdir()
    for name, data in files.items():
        path = project / dask_warm.safe_relative(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    outputs = make_dir(project / "outputs", project)
    entries = []
    for site_id, data in results.items():
        if len(dask_warm.safe_relative(site_id).parts) != 1:
            raise EvalLibError(f"site id {site_id!r} shipped to the worker is not a folder name")
        writing.write_atomic(make_dir(outputs / site_id, project) / "results.json", data)
        entries.append(SiteEntry(site_id, "evaluated", json.loads(data), page=outputs / site_id / "report.html"))
    key = dask_warm.throwaway_key(base)  # outside the temporary project, as signing requires
    # The temporary project as the root for the signing too (the key must lie outside it), restored after.
    with environment({KEY_ENV: str(key), ROOT_ENV: str(project)}), malloc_defaults():
        run = run_programme(project, outputs, "forked", entries, timeout)
    folder = outputs / "programme"
    names = FAILURE_FILES if run.status == "failed" else PROGRAMME_FILES
    return run, {n: writing.read_file(folder / n) for n in names if writing.check_file(folder / n)}


def publish_programme(chosen: list[SiteEntry], run: SiteRun, files: dict[str, bytes], outputs: Path) -> SiteRun:
    """Publish (on the client, under its outputs lock) the programme files a worker returned, or its failure.

    A report is published only when every file came back under :data:`RETURNED_MAX_BYTES` and its run record
    names the results the client chose (:func:`inputs_fingerprint` of ``chosen``, computed here) and the page's
    hash as computed here; the client then writes its own record, signed with its own key, and swaps the folder
    in (:func:`publish_dir`). Otherwise the previous report stays, unlinked, beside the failure's record.
    """
    failure = str(run.reason) if run.status == "failed" else _problem(chosen, run, files)
    attempts = run.attempts if type(run.attempts) is int and run.attempts >= 0 else 1  # unpickled: any type
    if failure is None:
        page = files["report.html"]
        record = {"inputs": inputs_fingerprint(chosen), "report_sha256": hashlib.sha256(page).hexdigest()}
        record["signature"] = sign(programme_record_fields(record))  # this machine's key (reporting/signing.py)
        staging = writing.fresh_dir(make_dir(outputs / ".staging", outputs), "programme-")
        try:
            writing.write_atomic(staging / "report.html", page)
            writing.write_atomic(staging / "report.ipynb", files["report.ipynb"])
            writing.write_atomic(staging / "run.json", json.dumps(record, indent=2) + "\n")
            publish_dir(staging, outputs / "programme")
        finally:
            remove_tree(staging)
        return SiteRun("programme", "published", "", attempts=attempts)
    kept: Path | None = None
    notebook = files.get("failed.ipynb") if run.status == "failed" else None
    try:
        if isinstance(notebook, bytes) and len(notebook) <= RETURNED_MAX_BYTES:
            kept = writing.fresh_dir(make_dir(outputs / ".staging", outputs), "programme-")
            writing.write_atomic(kept / "failed.ipynb", notebook)
        record_failure(outputs, "programme", failure, notebook=None if kept is None else kept / "failed.ipynb")
    finally:
        if kept is not None:
            remove_tree(kept)
    return SiteRun("programme", "failed", failure, attempts=attempts)


def _problem(chosen: list[SiteEntry], run: SiteRun, files: dict[str, bytes]) -> str | None:
    """Why the programme files a worker returned cannot be published (None when they can)."""
    if run.status != "published" or any(not isinstance(files.get(n), bytes) for n in PROGRAMME_FILES):
        return "the Dask worker returned an incomplete programme report; nothing was published"
    if any(len(files[n]) > RETURNED_MAX_BYTES for n in PROGRAMME_FILES):
        return f"the Dask worker returned a programme file over {RETURNED_MAX_BYTES // 2**20} MB; nothing was published"
    try:
        record = json.loads(files["run.json"])
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return "the Dask worker returned an unreadable programme run record; nothing was published"
    if (
        not isinstance(record, dict)
        or record.get("inputs") != inputs_fingerprint(chosen)
        or record.get("report_sha256") != hashlib.sha256(files["report.html"]).hexdigest()
    ):
        return (
            "the programme report the Dask worker returned does not match its run record or the results chosen "
            "here; nothing was published"
        )
    return None
