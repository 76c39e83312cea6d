"""Running a site's notebook in a batch worker's own process, one site after another.

A local batch's workers are forked from the batch's warm process (:func:`evallib.pipeline.executor.warm_up`). Forking
once more for every site cost each site 70-130 ms of kernel time on the machines measured (the fork, its exit, and
above all the copy-on-write faults: Python's reference counts write to thousands of inherited pages), 10-14% of a
site's CPU. So a local worker runs its sites in its own process, each on a fresh namespace, and is replaced by a fresh
fork of the warm process whenever it cannot be trusted to be clean:

* every notebook starts as in a process of its own: the shell's namespace, history and cell numbers reset, the
  figures closed, and matplotlib's settings, the warning filters, ``os.environ``, ``sys.path``, numpy's error
  handling, the file mode mask, the global random states (``random``, ``numpy.random``), the worker's signal
  handlers and the shell's hooks (events, extensions) as the warm process left them
  (:func:`run_in_worker`);
* a site that fails (a cell error, anything the runner raises, results that cannot be published), or leaves a
  thread running, has its worker replaced before the next site (:func:`evallib.pipeline.pool.retire_after_task`):
  a half-done step could have left a cache or a module changed;
* a worker that dies, or runs past the time limit, is killed and replaced by the pool as before, and the notebook
  it had saved so far is kept as the site's ``failed.ipynb`` (:func:`evallib.pipeline.execute.salvage_failure`).

A site's results and pages are byte-identical to those of the same site run alone in a fresh process
(``tests/test_in_worker.py``). What a notebook changes beyond that (a module's globals, an object a cache
returned) is not undone. A Dask worker runs its sites the same way in one child of its own
(:mod:`evallib.pipeline.site_process`); the programme notebook runs in a process forked for it.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evallib.pipeline.executor import SKIPPED_IN_BATCH, execute_here, reset_shell, warm_up
from evallib.pipeline.pool import retire_after_task

_FROZEN: list[bool] = []


def run_in_worker(
    template: Path, nb_out: Path, params: dict[str, Any], cwd: Path, skip_tag: str | None = SKIPPED_IN_BATCH
) -> str | None:
    """Execute one notebook in this process on the warm shell; return the failure in words, or None.

    Code cells tagged ``skip_tag`` (default: the exploration cells) are left unexecuted; None runs every cell.
    The time limit is the pool's (it kills this process); a failure has this process replaced after its task.
    """
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np

    warm_up()  # a no-op in a warm worker; it registers the engine and builds the shell
    if not _FROZEN:
        # What the worker inherited warm is never traversed by its collector (as in a forked site's process);
        # each site's own garbage still is.
        gc.freeze()
        _FROZEN.append(True)
    reason: str | None = None
    restore, threads = _process_state(), set(threading.enumerate())
    restore_shell = _shell_hooks()
    try:
        # Each notebook sees the warning filters, matplotlib settings and numpy's error handling as the warm
        # process left them, whatever the site before it changed.
        with warnings.catch_warnings(), matplotlib.rc_context(), np.errstate():
            reason = execute_here(template, nb_out, params, cwd, skip_tag)
    finally:
        try:
            plt.close("all")
            reset_shell()
            restore_shell()
            restore()
        except Exception:  # noqa: BLE001 - the site's files are written; the next site gets a fresh worker
            retire_after_task()
    running = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    if reason is not None or running:  # a failed site, or one whose thread would run on into the next site
        retire_after_task()
    return reason


def _process_state() -> Callable[[], None]:
    """What a notebook may change in this process and a process of its own would not pass on: ``os.environ``,
    ``sys.path``, the file mode mask, the warnings' format, the global random states and the worker's signal
    handlers (a SIGTERM must still stop the worker as :mod:`evallib.pipeline.pool` set it); returns the function
    that puts them back as they are now.
    """
    import numpy as np

    env, path = dict(os.environ), list(sys.path)
    umask = os.umask(0o022)  # read (the only way) and put back at once
    os.umask(umask)
    py_random, np_random = random.getstate(), np.random.get_state()  # noqa: NPY002 - the legacy global state
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    formatwarning = warnings.formatwarning  # catch_warnings keeps the filters, not the format

    def restore() -> None:
        for name in [k for k in os.environ if k not in env]:
            del os.environ[name]
        for name, value in env.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        sys.path[:] = path
        os.umask(umask)  # the modes of every later site's published files
        warnings.formatwarning = formatwarning
        random.setstate(py_random)
        np.random.set_state(np_random)  # noqa: NPY002 - a notebook may draw from it
        for signum, handler in handlers.items():
            if signal.getsignal(signum) is not handler and handler is not None:
                signal.signal(signum, handler)

    return restore


def _shell_hooks() -> Callable[[], None]:
    """What a notebook may add to the warm shell beyond its namespace, which a reset keeps: event callbacks,
    loaded extensions (``%load_ext``), the custom exception handler, input and AST transformers; returns the
    function that puts them back as they are now (else a site's ``%load_ext`` would print "already loaded" in
    every later site, and a hook it registers would run once more in each).
    """
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()  # the warm shell (executor.warm_up)
    events = {name: list(found) for name, found in shell.events.callbacks.items()}
    extensions: Any = shell.extension_manager  # built with the shell (never None once it exists)
    loaded = set(extensions.loaded)
    custom = (shell.custom_exceptions, shell.__dict__.get("CustomTB"))
    lists = [shell.ast_transformers, shell.input_transformers_post, shell.input_transformers_cleanup]
    saved = [list(x) for x in lists]

    def restore() -> None:
        for name, found in events.items():
            shell.events.callbacks[name][:] = found
        extensions.loaded.clear()
        extensions.loaded.update(loaded)
        shell.custom_exceptions = custom[0]
        if custom[1] is None:
            shell.__dict__.pop("CustomTB", None)
        else:
            shell.CustomTB = custom[1]
        for live, before in zip(lists, saved, strict=True):
            live[:] = before

    return restore
