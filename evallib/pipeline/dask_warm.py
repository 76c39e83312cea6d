"""Warm Dask workers: sites run on a Dask cluster the way the local forked executor runs them, from shipped files.

The client sends each task what the site's notebook reads from the project: the notebook template, the site's
params file, the own-data files the params name (in the project or in a data folder it names: :func:`site_files`)
and the project's ``evallib.toml``, as bytes in the task's arguments (nothing is scattered, so a cluster without
workers cannot hang the submission), with the bundled data windows the batch will harmonise and the project's git
state. On the worker, the first task imports evallib, warms what the forked executor warms
(:func:`evallib.pipeline.executor.warm_up`: the libraries, the data windows, matplotlib) and stops Dask's stack
profiler (:func:`calm_worker`); every task then lays the files out in a private temporary project and runs the
site exactly as a local run does (:func:`evallib.pipeline.execute.safe_execute` in the worker's site process, one
child forked warm that runs the sites one after another: :mod:`evallib.pipeline.site_process`).
The site's finished files come back to the client as bytes; the client, which holds the outputs lock, writes
them into its own staging folder, signs the run record with its own key and swaps the folder in
(:func:`publish_returned`). Nothing relies on a path the client and the workers share, and a worker never
writes the client's ``outputs/``.

One site runs at a time in each worker process (the site's environment is process-wide, as it is in a local
worker); give workers one thread each and as many workers as cores. Started with
``dask worker ADDRESS --nworkers N --nthreads 1 --preload-nanny evallib.pipeline.nanny``, the workers fork from
one fork server that imported and warmed once (:mod:`evallib.pipeline.nanny`), so a cold cluster pays that
once rather than once per worker. Each task travels packed (:func:`packed`): the scheduler, which unpickles
every task, never imports evallib.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from evallib.errors import EvalLibError
from evallib.evaluation.record.fingerprint import DIRTY_ENV, source_state
from evallib.pipeline.execute import SITE_TIMEOUT, SiteRun, environment
from evallib.pipeline.executor import warm_up
from evallib.pipeline.folders import FAILURE_FILES, publish_dir, record_failure
from evallib.pipeline.housekeeping import CALMER_MS, PROFILER_CALLBACKS, calm_cluster, calm_this_worker, calm_worker
from evallib.pipeline.preflight import TEMPLATE, SiteJob
from evallib.pipeline.site_process import run_in_child
from evallib.pipeline.warm import installed_state, reads_bundled_only, warm_with_site
from evallib.protocol import writing
from evallib.protocol.params import SiteProtocol
from evallib.protocol.writing import UnsafePath, fault_message, is_fault, make_dir, remove_tree
from evallib.reporting.signing import KEY_ENV, sign, site_record_fields
from evallib.reporting.static_site import scrub_paths
from evallib.sources.files import SETTINGS_FILE, SHIPPED, FileSource, data_folders, max_data_bytes, read_checked

__all__ = [
    "CALMER_MS",
    "PROFILER_CALLBACKS",
    "calm_cluster",
    "calm_this_worker",
    "calm_worker",
    "publish_safely",
    "run_site",
    "site_files",
]

#: The files of a published site's folder that come back from a worker, and the most one may hold (a page with
#: its figures is a few MB; anything far larger is not one).
REPORT_FILES = ("results.json", "run.json", "report.html", "report.ipynb")
RETURNED_MAX_BYTES = 64 * 2**20
_COMMIT_ENV = "EVALLIB_GIT_COMMIT"
#: Where own-data files from data folders outside the client's project travel, and the file saying where each
#: path a params file names went (:func:`site_files`); neither is a path in the project.
OUTSIDE = ".evallib-data-folders"
MANIFEST = ".evallib-shipped.json"
#: One BLAS thread per process, as `evallib run` and a Dask nanny set them: results then match to the last bit.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Held while a task runs a site (its environment, key, root, params file and shipped paths, ``SHIPPED``, are
#: process-wide), and by the client while it reads a site's files or signs and publishes one: with an in-process
#: cluster (``LocalCluster(processes=False)``) the workers are threads of the client's process, which would
#: otherwise read data through a task's shipped paths or sign a report with a task's throwaway key.
TASK_LOCK = threading.Lock()
_WARMED: set[Any] = set()  # the data windows loaded, and "site" once a site warmed the worker
_INSTALLED: list[str] = []  # installed_state() when the worker first warmed
#: The pid of the fork server this worker was forked from warm (:mod:`evallib.pipeline.nanny`), if any.
FORKED: list[int] = []


def site_files(root: Path, job: SiteJob, template: bytes | None = None) -> dict[str, bytes]:
    """What ``job``'s notebook reads from the project, as bytes by project-relative path.

    The notebook template (``template`` when the caller read it once for the batch), the site's params file,
    the project's ``evallib.toml`` (when there is one) and each own-data file the params name, checked and
    read as a local run reads it (:func:`evallib.sources.files.read_checked`: inside the project or a data
    folder ``evallib.toml`` names, a regular file under the size limit, the checked path opened without
    following a link). A file in the project travels under its project-relative path; a file in a data folder
    outside it under ``OUTSIDE/<folder's place in the list>/<folder's name>/<path in it>``, laid out beside
    the worker's project (:func:`run_site`). Where the params name a file otherwise (an absolute path, ``..``,
    a link), :data:`MANIFEST` says where it went. A file that fails the checks is not shipped: the worker's
    run then fails on it as a local run does.
    """
    with TASK_LOCK:  # no task of an in-process worker has its shipped paths in place meanwhile
        return _site_files(root, job, template)


def _site_files(root: Path, job: SiteJob, template: bytes | None) -> dict[str, bytes]:
    files = {TEMPLATE.as_posix(): template if template is not None else (root / TEMPLATE).read_bytes()}
    files[job.params_file] = (root / job.params_file).read_bytes()
    if (root / SETTINGS_FILE).is_file():
        files[SETTINGS_FILE] = (root / SETTINGS_FILE).read_bytes()
    try:
        protocol = SiteProtocol.from_mapping(job.parameters)
        folders = data_folders(root)
    except EvalLibError:
        return files  # preflight has refused it already
    paths: dict[str, str] = {}
    outside: dict[int, str] = {}
    for spec in protocol.analyses:
        source = spec.data_source
        if not isinstance(source, FileSource):
            continue
        try:
            real, data = read_checked(source.path, root)
        except EvalLibError:
            continue
        if real.is_relative_to(folders[0]):
            name = real.relative_to(folders[0]).as_posix()
        else:  # the first named folder holding it, as the published name (display_path) takes it
            i = next(i for i, f in enumerate(folders) if real.is_relative_to(f))
            if not folders[i].name:
                continue  # a data folder at / cannot be laid out under its name
            outside[i] = folders[i].name
            name = f"{OUTSIDE}/{i}/{folders[i].name}/{real.relative_to(folders[i]).as_posix()}"
        files.setdefault(name, data)
        if str(Path(source.path)) != name:
            paths[str(Path(source.path))] = name
    if paths:
        cap = max_data_bytes(root) // 2**20
        manifest = {"paths": paths, "folders": sorted(outside.items()), "max_megabytes": cap}
        files[MANIFEST] = json.dumps(manifest).encode()
    return files


def _lay_out(files: dict[str, bytes], base: Path) -> Path:
    """Write ``files`` (:func:`site_files`) into a fresh project under ``base``; point the data reader at them.

    Files from data folders outside the client's project go to ``base/data-folders``, each folder under its
    own name, and the worker's ``evallib.toml`` names those folders in the client's order, so the checks and
    the published file names are the client's. Returns the project folder.
    """
    project = base / "project"

    def place(name: str) -> Path:
        rel = safe_relative(name)
        return base / "data-folders" / PurePosixPath(*rel.parts[1:]) if rel.parts[0] == OUTSIDE else project / rel

    for name, data in files.items():
        if name != MANIFEST:
            path = place(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    manifest = json.loads(files[MANIFEST]) if MANIFEST in files else {}
    folders = [base / "data-folders" / str(int(i)) / safe_relative(n) for i, n in manifest.get("folders", [])]
    if folders:
        # Unescaped: JSON writes a character past U+FFFF as a surrogate pair, which TOML refuses.
        names = ", ".join(json.dumps(str(f), ensure_ascii=False) for f in folders)
        toml = f"[data]\nfolders = [{names}]\nmax_megabytes = {int(manifest['max_megabytes'])}\n"
        (project / SETTINGS_FILE).write_text(toml, encoding="utf-8")
    shipped = {written: str(place(name)) for written, name in manifest.get("paths", {}).items()}
    SHIPPED.clear()
    SHIPPED.update(shipped)
    return project


def packed(func: Callable[..., Any], *args: Any) -> tuple[Callable[[bytes], Any], bytes]:
    """``func(*args)`` as a Dask task that a scheduler can unpickle without importing evallib or pandas.

    Dask's scheduler unpickles every task it is sent; a task naming :func:`run_site` with a :class:`SiteJob`
    made it import evallib (about 2.5 s of CPU in a fresh scheduler, and evallib installed where the scheduler
    runs). Here the function and its arguments travel as one bytes object, unpickled only on the worker, by a
    caller defined inside a function so that Dask sends it by value. Submit as ``client.submit(*packed(...))``.
    """

    def call(payload: bytes) -> Any:
        import pickle

        function, arguments = pickle.loads(payload)  # noqa: S301 - sent by this run's client
        return function(*arguments)

    return call, pickle.dumps((func, args), protocol=pickle.HIGHEST_PROTOCOL)


def site_env(root: Path) -> dict[str, str]:
    """The environment a site's notebook needs from the client's project: its git commit and whether it is dirty."""
    state = source_state(root)
    dirty = state["dirty"]
    return {_COMMIT_ENV: state["commit"] or "", DIRTY_ENV: "" if dirty is None else ("1" if dirty else "0")}


def safe_relative(name: str) -> PurePosixPath:
    """``name`` as a path inside the project (a shipped file's or a site's), refused when it could leave it."""
    p = PurePosixPath(name)
    if p.is_absolute() or not p.parts or ".." in p.parts:
        raise EvalLibError(f"file {name!r} shipped to the worker is not a path inside the project")
    return p


def refusal() -> str | None:
    """Why this worker cannot run a notebook as a local run would (None when it can): BLAS on several threads, or
    installed files changed since it warmed. Called under ``TASK_LOCK``; the first call records the installed state.
    """
    many = [v for v in BLAS_THREADS if os.environ.get(v) != "1"]
    if many:  # the estimates' last digits depend on how BLAS splits its sums: one thread, as `evallib run` uses
        return (
            f"the Dask worker does not run BLAS on one thread ({', '.join(many)} not 1), so its results could differ "
            "in the last digits from a local run; start workers with `dask worker` (its nanny sets them) or set "
            "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"
        )
    installed = installed_state()
    if _INSTALLED and _INSTALLED[0] != installed:
        return (
            "this Dask worker warmed up from other evallib code or bundled data than it has installed now, so "
            "its results would not be the installed version's; restart the `dask worker` commands (a nanny "
            "restarting its worker is not enough with the evallib preload) and run again"
        )
    _INSTALLED[:1] = [installed]
    return None


def throwaway_key(base: Path) -> Path:
    """A signing key for one task, in ``base`` (outside the task's project, as signing requires): the client signs
    what comes back with its own.
    """
    key = base / "throwaway.key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    return key


def run_site(
    job: SiteJob,
    files: dict[str, bytes],
    windows: tuple[tuple[str, Any, Any], ...],
    env: dict[str, str],
    timeout: float = SITE_TIMEOUT,
    warm_site: bool = False,
) -> tuple[SiteRun, dict[str, bytes]]:
    """Run one site on a Dask worker from shipped files; return its run and its folder's files (a Dask task).

    The worker is warmed once (libraries and ``windows``); the site runs in a private temporary project
    holding ``files`` (:func:`site_files`), in the worker's site process, as a local run does. The run record is
    signed with a throwaway key: the client signs it again with its own (:func:`publish_returned`). The
    temporary project is removed however the task ends. With ``warm_site`` (a batch large enough to pay for
    it), the worker's first site is also evaluated and drawn once in the worker before its site process forks
    (:func:`evallib.pipeline.warm.warm_with_site`, as the local batch's parent does), so every later site
    starts with what that loaded and compiled.

    The warm state outlives a run (a standing cluster's second run pays no warm-up), so it is kept only for
    the evallib code and bundled data it was made from: a worker whose installed files changed since it
    warmed fails each site with the fix (restart the workers) rather than run stale code or data.
    """
    with TASK_LOCK:
        why = refusal()
        if why is not None:
            return SiteRun(job.site_id, "failed", why), {}
        first = windows not in _WARMED
        if first:
            calm_this_worker()
            warm_up(windows)
            _WARMED.add(windows)
        base = Path(tempfile.mkdtemp(prefix=f"evallib-{job.site_id}-"))
        try:
            project = _lay_out(files, base)
            outputs = make_dir(project / "outputs", project)
            key = throwaway_key(base)
            # The project root and params file are set (and restored) by execute_site, and by warm_with_site for
            # its warm-up: nothing of this temporary project outlives the task in the worker's process.
            with environment({**env, KEY_ENV: str(key)}):
                if warm_site:
                    _warm_with(job, project)
                run = run_in_child(len(_WARMED), job, project, outputs, timeout, {**env, KEY_ENV: str(key)})
            folder = outputs / job.site_id
            names = FAILURE_FILES if run.status == "failed" else REPORT_FILES
            files = {n: writing.read_file(folder / n) for n in names if writing.check_file(folder / n)}
            return run, files
        finally:
            SHIPPED.clear()
            shutil.rmtree(base, ignore_errors=True)


def _warm_with(job: SiteJob, project: Path) -> None:
    """Evaluate and draw ``job``'s site once in this worker, discarding it (never raises), if it reads only
    bundled data.

    A warm-up is never stopped part-way (:func:`evallib.pipeline.warm.warm_with_site` runs it to the end), so it
    is bounded by its choice of site (:func:`evallib.pipeline.warm.reads_bundled_only`). A worker whose first site reads its own data
    warms with the first later one that does not, or not at all.
    """
    if "site" in _WARMED:
        return
    try:
        protocol = SiteProtocol.from_mapping(job.parameters)
    except EvalLibError:
        return  # preflight has refused it already
    if not reads_bundled_only(protocol):
        return
    _WARMED.add("site")  # tried once, whatever happens
    warm_with_site(protocol, project)


def publish_returned(job: SiteJob, run: SiteRun, files: dict[str, bytes], outputs: Path) -> SiteRun:
    """Publish (on the client) what a worker returned for ``job``: the report swapped in whole, or the failure.

    A report is checked (the run record's hashes match the files and it names this site and the fingerprints
    checked before the run; the results pass a local site's checks: that fingerprint, no parameter departing
    from the params file), written to a staging folder under ``outputs/.staging``, its run record signed with
    this machine's key, and the folder swapped into ``outputs/<site>`` (:func:`publish_dir`); the site's status
    is the one its results state. Anything amiss is the site's failure, and its last good report stays. The
    worker is trusted for the rest: results that pass these checks are signed as this machine's.
    """
    if run.status != "failed":
        problem = _report_problem(job, files)
        if problem is None:
            results = json.loads(files["results.json"])  # its status as the results say, not as the worker did
            run = replace(run, status=str(results["status"]), reason=str(results.get("reason", "")))
            staging = writing.fresh_dir(make_dir(outputs / ".staging", outputs), f"{job.site_id}-")
            try:
                record = json.loads(files["run.json"])
                record["signature"] = sign(site_record_fields(job.site_id, record))
                for name in REPORT_FILES:
                    data = files[name] if name != "run.json" else (json.dumps(record, indent=2) + "\n").encode()
                    writing.write_atomic(staging / name, data)
                publish_dir(staging, outputs / job.site_id)
            finally:
                remove_tree(staging)
            return run
        run = replace(run, status="failed", reason=problem)
    notebook: Path | None = None
    kept: Path | None = None
    if isinstance(files.get("failed.ipynb"), bytes) and len(files["failed.ipynb"]) <= RETURNED_MAX_BYTES:
        kept = writing.fresh_dir(make_dir(outputs / ".staging", outputs), f"{job.site_id}-")
        notebook = kept / "failed.ipynb"
        writing.write_atomic(notebook, files["failed.ipynb"])
    try:
        record_failure(outputs, job.site_id, run.reason, job.params_file, notebook)
    finally:
        if kept is not None:
            remove_tree(kept)
    return run


def publish_safely(job: SiteJob, value: Any, outputs: Path, root: Path) -> SiteRun:
    """:func:`publish_returned` for what a task returned (a ``(run, files)`` pair, or the run of a lost task),
    with a fault writing ``outputs/`` recorded as the site's failure in one line, as :func:`safe_execute` does.
    """
    if isinstance(value, SiteRun):
        return value  # already recorded
    try:
        run, files = value
        with TASK_LOCK:  # signed with this machine's key, not an in-process task's throwaway one
            return publish_returned(job, run, files, outputs)
    except Exception as exc:  # noqa: BLE001 - one site's publishing fault must not stop the batch; it is recorded
        reason = fault_message(exc, outputs) if is_fault(exc) else f"runner error: {type(exc).__name__}"  # type: ignore[arg-type]
        reason = scrub_paths(str(exc) if isinstance(exc, EvalLibError) else reason, root)
        try:
            record_failure(outputs, job.site_id, reason, job.params_file)
        except (OSError, UnsafePath):
            pass  # the outputs folder itself is failing; the summary still reports the site
        return SiteRun(job.site_id, "failed", reason)


def _report_problem(job: SiteJob, files: dict[str, bytes]) -> str | None:
    """Why the files a worker returned cannot be published as ``job``'s report (None when they can)."""
    if any(not isinstance(files.get(n), bytes) or len(files[n]) > RETURNED_MAX_BYTES for n in REPORT_FILES):
        return "the Dask worker returned an incomplete or oversized report; nothing was published"
    try:
        record = json.loads(files["run.json"])
        results = json.loads(files["results.json"])
    except (ValueError, RecursionError):
        return "the Dask worker returned an unreadable report; nothing was published"
    sha = {n: hashlib.sha256(files[n]).hexdigest() for n in ("results.json", "report.html")}
    if (
        not isinstance(record, dict)
        or record.get("results_sha256") != sha["results.json"]
        or record.get("report_sha256") != sha["report.html"]
        or record.get("result_fingerprint") != job.result_fingerprint
        or record.get("fingerprint") != job.fingerprint
    ):
        return "the report the Dask worker returned does not match its run record; nothing was published"
    if record.get("site_id") != job.site_id or not isinstance(results, dict) or "status" not in results:
        return "the Dask worker returned another site's report or no status; nothing was published"
    provenance = results.get("provenance")
    if not isinstance(provenance, dict) or provenance.get("fingerprint") != job.result_fingerprint:
        return (
            "the results do not match what was checked before the run (the worker's evallib, or the data, params "
            "or code changed while it ran); nothing was published: run it again"
        )
    if provenance.get("departures"):  # as a local site's results are checked (execute.py)
        return "the notebook ran with parameters that depart from the params file; nothing was published"
    return None
