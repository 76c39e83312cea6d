"""What a batch's parent process loads and compiles before its workers fork, so that no site pays for it again.

Each site's notebook runs in a worker forked from the batch's process (:mod:`evallib.pipeline.in_worker`), and
starts with whatever that process held. Anything a site would otherwise load or compile on first use (the
report templates, nbconvert's templates, nbformat's schema validator, matplotlib's SVG writer and fonts, the
site registry, the text measurements of figure layout) is paid for once here, as it is once for the floor
that ``benchmarks/batch_profile.py`` measures in one process. Nothing here changes what a site computes or
shows: a site's results and pages are the same with or without it (``tests/test_batch_warm_parent.py``).

The data windows are harmonised partly in a helper process forked from the batch's process (:class:`WindowHelper`),
while the batch's process imports and compiles; the helper's windows are pickled back
and taken into the batch's cache before the workers fork (each window is still harmonised once per batch).

For Dask workers (``pipeline/dask_warm.py``), which warm the same way: one site evaluated and drawn, discarded
(:func:`warm_with_site`), :func:`malloc_defaults` (the heap a worker's site process inherits under a Dask nanny) and
:func:`installed_state` (the code and data a warm state was made from).
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import io
import multiprocessing as mp
import os
import signal
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evallib.sources.files import FileSource

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import pandas as pd

    from evallib.protocol.params import SiteProtocol

Window = tuple[str, "pd.Timestamp", "pd.Timestamp"]

#: A Dask worker with at least this many of a batch's sites is warmed with one whole site (evaluated and drawn,
#: then discarded) before its site process forks: it costs one site's CPU and saved each site forked after it about
#: a tenth of a second of first-use costs. A local worker warms itself with its first site instead.
SITE_WARM_MIN = 16
#: The most seconds the batch waits for its window helper; past it the helper is stopped and the batch's process
#: harmonises the helper's windows itself.
HELPER_LIMIT = 300.0
_DONE: list[str] = []


def split_windows(windows: list[Window]) -> tuple[list[Window], list[Window]]:
    """The windows this process harmonises itself and those a helper harmonises meanwhile: a third here, since
    this process also imports and compiles what every site needs in that time (about as long as the helper's
    two thirds).
    """
    own = windows[2::3]
    return own, [w for w in windows if w not in own]


def _harmonise_for_parent(conn: Connection, windows: list[Window]) -> None:
    """The helper process: harmonise ``windows`` and send the cache entries back (or None when that failed)."""
    from evallib.pipeline.pool import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle; it stops this process
    # Not the batch's SIGTERM handler (raising KeyboardInterrupt here printed a traceback): a SIGTERM just ends it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        from evallib.evaluation.site.units import harmonised_windows

        entries: list[Any] | None = harmonised_windows(windows)
    except Exception:  # noqa: BLE001 - the batch's process harmonises them itself
        entries = None
    try:
        conn.send(entries)
    except (OSError, ValueError):
        pass  # the batch's process has gone or closed its end
    except Exception:  # noqa: BLE001 - entries that cannot be pickled: say so, no traceback (pickling writes nothing)
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass


class WindowHelper:
    """A process forked from this one that harmonises some data windows while this one does other work.

    :meth:`adopt` takes its windows into this process's cache (:func:`evallib.evaluation.site.units.adopt`):
    afterwards this process holds them as if it had harmonised them, and a process forked from it inherits them.
    A helper that fails, dies or runs past :data:`HELPER_LIMIT` leaves its windows to this process (the caller's
    :func:`~evallib.evaluation.site.units.prefetch` then harmonises them). Used as a context manager: on leaving,
    a helper not yet adopted is stopped (a run that fails or is interrupted leaves no process behind).
    """

    def __init__(self, windows: list[Window]) -> None:
        self.windows = list(windows)
        self._conn: Connection | None = None
        self._process: Any = None
        if not self.windows or "fork" not in mp.get_all_start_methods():
            return
        ctx = mp.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_harmonise_for_parent, args=(send, self.windows), daemon=True)
        # As for a site's process (executor.run_forked): the helper's collector leaves the inherited objects
        # alone, so it does not touch (and copy) every page of this process's heap.
        gc.freeze()
        try:
            self._process.start()
        finally:
            gc.unfreeze()
        send.close()
        self._conn = receive

    def adopt(self, limit: float = HELPER_LIMIT) -> bool:
        """Wait for the helper (at most ``limit`` seconds) and take in its windows; whether it delivered them."""
        from evallib.evaluation.site.units import adopt

        conn, self._conn = self._conn, None
        if conn is None:
            return False
        entries = None
        try:
            if conn.poll(limit):
                entries = conn.recv()
        except (EOFError, OSError):
            entries = None
        finally:
            conn.close()
            self.stop(wait=entries is not None)
        if entries is None:
            return False
        adopt(entries)
        return True

    def stop(self, wait: bool = False) -> None:
        """Stop the helper (``wait``: first give it a few seconds to leave by itself, as it does once it has sent
        its windows) and reap it.
        """
        p, self._process = self._process, None
        if p is None:
            return
        if wait:
            p.join(5)
        if p.is_alive():
            p.kill()
        p.join(5)

    def __enter__(self) -> WindowHelper:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.stop()


def warm_pages() -> None:
    """Compile what every site's page compiles on first use: the report templates, matplotlib's SVG writer and
    fonts, nbformat's schema validator and nbconvert's templates (once per process).
    """
    if "pages" in _DONE:
        return
    import nbformat
    from matplotlib.figure import Figure

    from evallib.reporting.static_site import render_report
    from evallib.reporting.templating import environment, figure_src

    env = environment()
    for name in env.list_templates(filter_func=lambda n: n.endswith(".j2")):
        env.get_template(name)
    fig = Figure(figsize=(2, 2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="warm")
    ax.set(title="warm", xlabel="x", ylabel="y")
    ax.legend()
    figure_src(fig)
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("execute_result", data={"text/html": "<p>warm</p>", "text/plain": "warm"})
    nb.cells = [nbformat.v4.new_markdown_cell("# Warm\n\n*a* `b`"), nbformat.v4.new_code_cell("1", outputs=[out])]
    with tempfile.TemporaryDirectory() as tmp:
        nbformat.write(nb, Path(tmp) / "warm.ipynb")
        render_report(Path(tmp) / "warm.ipynb", Path(tmp) / "warm.html", title="warm")
    _DONE.append("pages")


def reads_bundled_only(protocol: SiteProtocol) -> bool:
    """Whether every analysis of ``protocol`` reads bundled data: a warm-up site of bounded cost (the bundled data
    are of a size fixed by the install; a site's own file may be as large as the size limit allows).
    """
    return not any(isinstance(spec.data_source, FileSource) for spec in protocol.analyses)


def warm_with_site(protocol: SiteProtocol, root: Path) -> bool:
    """Evaluate ``protocol``'s site and draw its page in this process, keeping nothing but what that loaded or
    compiled on first use; return whether it finished without error.

    Never raises (a site that fails here fails again in its own process, where it is recorded), and is never
    stopped part-way: stopping Python code from outside means raising in it asynchronously (a signal handler's
    exception in the main thread, ``PyThreadState_SetAsyncExc`` in another), which can land inside a ``finally``
    that restores the environment or ``sys.stdout``, or between a lock's acquiring and its ``try``, leaving the
    lock held in this process and in every site forked from it. Callers bound its cost by their choice of site
    instead (:func:`reads_bundled_only`). Warnings and printed text are discarded: the sites' notebooks show their
    own.
    """
    import matplotlib.pyplot as plt

    from evallib.evaluation.site.evaluate import evaluate_site
    from evallib.pipeline.preflight import project_env
    from evallib.reporting.report import full_report

    try:
        with project_env(root), warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            with redirect_stderr(io.StringIO()):
                full_report(evaluate_site(protocol))
    except Exception:  # noqa: BLE001 - the site runs (and fails, if it does) in its own process
        return False
    finally:
        plt.close("all")
    return True


#: glibc's mallopt parameters, and the thresholds its dynamic defaults reach (32 MiB the most an allocation
#: is served from the heap rather than its own mapping; twice that kept before the heap is trimmed).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HEAP_MMAP_THRESHOLD = 32 * 2**20
_NANNY_TRIM = "MALLOC_TRIM_THRESHOLD_"


@contextmanager
def malloc_defaults() -> Iterator[None]:
    """While a site runs, glibc's heap kept as in a local run, where a Dask nanny started the worker with
    ``MALLOC_TRIM_THRESHOLD_`` (65536 by default: the heap trimmed at every free of 64 KiB, and every array of
    128 KiB or more in a mapping of its own); the forked site inherits it.

    Under the nanny's setting a site's process took about 30 times the page faults (and most of a second more
    CPU, mostly in the kernel) zeroing fresh pages for each array. Only the allocator's thresholds change, not
    what is computed. Restored after (the worker's own memory is trimmed as the nanny asked); nothing happens
    without the variable or without glibc.
    """
    nanny = os.environ.get(_NANNY_TRIM, "")
    libc = None
    if nanny.isdigit():
        try:
            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            libc = None
    if libc is None:
        yield
        return
    mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, 2 * HEAP_MMAP_THRESHOLD)
    try:
        yield
    finally:
        mallopt(_M_TRIM_THRESHOLD, int(nanny))
        mallopt(_M_MMAP_THRESHOLD, 128 * 2**10)  # glibc's starting value, where the nanny's setting leaves it


def installed_state() -> str:
    """SHA-256 of the evallib source, report templates and bundled data files installed here, as on disk now
    (a few megabytes: milliseconds a task).
    """
    from evallib.sources.bundled import bundled_data_dir

    package = Path(__file__).resolve().parents[1]  # evallib/ (this file is evallib/pipeline/)
    h = hashlib.sha256()
    names = [*package.rglob("*.py"), *(package / "reporting" / "templates").glob("*"), *bundled_data_dir().rglob("*")]
    for f in sorted(p for p in names if p.is_file()):
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()
