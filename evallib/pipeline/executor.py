"""Fast notebook execution: a Papermill engine that runs cells in a process that imported everything once.

A Jupyter kernel per notebook costs about 3 s before the first cell does anything: starting the kernel and
importing pandas, statsmodels and matplotlib again. Here a warm process (:func:`warm_up`) executes the cells
in-process on an IPython shell and writes the executed notebook through Papermill as usual (parameter injection,
metadata, failure banners). A batch's workers run their sites this way one after another in their own process
(:mod:`evallib.pipeline.in_worker`, the shell reset for each); :func:`run_forked` runs one notebook in a child
forked for it (copy-on-write: nothing it does reaches this process), as the programme notebook runs. A child that
dies is reported like a dead kernel.

POSIX only (``os.fork``); elsewhere the runner uses ordinary kernels.
"""

from __future__ import annotations

import gc
import io
import json
import os
import re
import signal
import sys
import threading
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evallib.pipeline.pool import die_with_parent, set_child, timed_out
from evallib.pipeline.quick_save import QuickSave
from evallib.pipeline.warm import warm_pages

if TYPE_CHECKING:
    import pandas as pd

ENGINE_NAME = "evallib-forked"
#: Cells with this tag (the notebook's exploration: ``evaluation.tidy()``, ``evaluation.plot()``) are not run by
#: batch runs, on either executor: the published page leaves them out (``reporting.static_site.UNPUBLISHED_TAGS``),
#: so running them only cost time. JupyterLab, plain papermill and nbval still run them (papermill's and nbclient's
#: ``skip_cells_with_tag``; the cells stay in the executed notebook, without outputs).
SKIPPED_IN_BATCH = "explore"
_SHELL: list[Any] = []


def available() -> bool:
    """Whether sites can run in forked processes here (POSIX with ``fork``; never on Windows)."""
    return hasattr(os, "fork") and sys.platform != "win32"


def warm_up(windows: tuple[tuple[str, pd.Timestamp, pd.Timestamp], ...] = ()) -> None:
    """Import what the notebooks import, load and harmonise the data ``windows`` the sites will read, and
    build one pristine shell, before any fork (so every forked site starts with all of it in memory).
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    # bdb, IPython's history logger and the results writer (evallib's lazily loaded ``write_results``) too: every
    # site's notebook would otherwise import them afresh in its own process, about 4 ms a site.
    import bdb  # noqa: F401

    import IPython.core.logger  # noqa: F401
    import papermill  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    import evallib.evaluation.record.results_file  # noqa: F401
    import evallib.evaluation.site.evaluate  # noqa: F401
    import evallib.pipeline.notebook  # noqa: F401
    import evallib.reporting.programme_page  # noqa: F401
    import evallib.reporting.report  # noqa: F401
    from evallib.evaluation.site.units import prefetch

    prefetch(list(windows))
    _register()
    warm_pages()
    if not _SHELL:
        config = Config()
        config.HistoryManager.enabled = False  # forked children would share one history database
        _SHELL.append(InteractiveShell.instance(config=config))


def reset_shell() -> None:
    """Start the warm shell afresh, as a new process's would be: namespace, output history, cell numbers."""
    if _SHELL:
        _SHELL[0].reset(new_session=True)


def _register() -> None:
    from papermill.engines import Engine, NotebookExecutionManager, papermill_engines

    class ForkedEngine(Engine):
        """Executes the cells of the managed notebook in this process (a forked child)."""

        @classmethod
        def execute_notebook(
            cls,
            nb: Any,
            kernel_name: str,
            output_path: str | None = None,
            progress_bar: bool = True,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            **kwargs: Any,
        ) -> Any:
            # Papermill's Engine.execute_notebook, less its save of the notebook before any cell runs: the quick
            # save before the first code cell writes the same notebook (pending cells, no outputs) at once.
            nb_man = NotebookExecutionManager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            save = nb_man.save
            nb_man.save = lambda **kw: None
            try:
                nb_man.notebook_start()
                cls.execute_managed_notebook(nb_man, kernel_name, save=save, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            return _execute_cells(nb_man, kwargs.get("skip_cells_with_tag"), kwargs.get("save"))

    papermill_engines.register(ENGINE_NAME, ForkedEngine)


def _execute_cells(nb_man: Any, skip_tag: str | None = None, save: Any = None) -> Any:
    """Run the code cells of ``nb_man``'s notebook on the warm shell; ``save`` is papermill's own save (the
    manager's save is made a no-op here when not given: ``nb_man.save`` is then papermill's).
    """
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from nbformat import NotebookNode

    shell = _SHELL[0] if _SHELL else InteractiveShell.instance()
    sink: list[Any] = []
    # The running cell's number, as Jupyter gives it to the cell and to its result (IPython has already moved its
    # counter on when the display hook runs).
    count = [0]

    # Outputs are made as nbformat.v4.new_output makes them, less its schema validation of each one (a third of
    # the display hook's time); the one check a display can fail, text formats, is :func:`_text_bundle`'s.
    class Publisher(DisplayPublisher):
        def publish(
            self, data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kwargs: Any
        ) -> None:
            sink.append(NotebookNode(output_type="display_data", metadata=metadata or {}, data=_text_bundle(data)))

    class Hook(DisplayHook):
        def write_output_prompt(self) -> None:
            pass

        def write_format_data(self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None) -> None:
            sink.append(
                NotebookNode(
                    output_type="execute_result",
                    metadata=md_dict or {},
                    data=_text_bundle(format_dict),
                    execution_count=count[0],
                )
            )

        def finish_displayhook(self) -> None:
            pass

    shell.display_pub = Publisher(shell=shell)
    shell.displayhook = Hook(shell=shell, cache_size=0)
    shell.display_trap.hook = shell.displayhook
    # Errors become error outputs instead (a deliberate patch of the shell instance's method).
    shell._showtraceback = lambda *a, **k: None  # type: ignore[method-assign]
    # papermill saves the whole notebook (figures and all) at every cell's start and end: a third of a
    # report's run. One save before each code cell keeps what matters: a process that dies in a cell
    # leaves the notebook with every earlier cell's output; the end (or the error) is saved by papermill.
    if save is None:
        save, nb_man.save = nb_man.save, lambda **kwargs: None

    save_quickly = QuickSave(nb_man.nb, nb_man.output_path)
    try:
        for index, cell in enumerate(nb_man.nb.cells):
            nb_man.cell_start(cell, index)
            try:
                if cell.cell_type != "code" or (skip_tag and skip_tag in cell.metadata.get("tags", [])):
                    continue
                save_quickly(index)
                sink.clear()
                count[0] = shell.execution_count
                out, err = io.StringIO(), io.StringIO()
                with redirect_stdout(out), redirect_stderr(err):
                    result = shell.run_cell(cell.source, store_history=True)
                outputs = []
                for name, buf in (("stdout", out), ("stderr", err)):
                    if buf.getvalue():
                        outputs.append(NotebookNode(output_type="stream", name=name, text=buf.getvalue()))
                outputs.extend(sink)
                cell.outputs = outputs
                cell.execution_count = count[0]
                exc = result.error_before_exec or result.error_in_exec
                if exc is not None:
                    cell.outputs.append(
                        NotebookNode(
                            output_type="error",
                            ename=type(exc).__name__,
                            evalue=str(exc),
                            traceback=traceback.format_exception(type(exc), exc, exc.__traceback__),
                        )
                    )
                    nb_man.cell_exception(cell, cell_index=index, exception=exc)
                    break
            finally:
                _cell_complete(nb_man, cell)
    except BaseException:
        nb_man.save = save  # the engine's closing save writes how far it got
        raise
    finally:
        save_quickly.close()
    # Not restored when every cell ran (or one failed): papermill writes the finished notebook right after the
    # engine returns, so the engine's own closing save would write the same large notebook once more.
    return nb_man.nb


_JSON_TYPE = re.compile(r"^application/(.*\+)?json$")


def _text_bundle(data: dict[str, Any]) -> dict[str, Any]:
    """``data``, refused as nbformat's schema refuses it (the one check of an output's validation that a display
    can fail): every format is text (a string or a list of strings) but JSON ones. papermill's save only logs an
    invalid notebook, and nothing after validates it again, so an output that breaks the schema fails its cell.
    """
    for key, value in data.items():
        if isinstance(value, str) or _JSON_TYPE.match(key):
            continue
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"display output {key!r} is a {type(value).__name__}: the notebook format needs text")
    return data


def _cell_complete(nb_man: Any, cell: Any) -> None:
    """Papermill's ``cell_complete`` (its save is a no-op here), with the start time read back by
    ``datetime.fromisoformat`` rather than dateutil's general parser: the same duration, at a fraction of the cost.
    """
    from datetime import datetime

    if nb_man.log_output:  # papermill's own, which also logs the cell's end
        nb_man.cell_complete(cell)
        return
    end_time = nb_man.now()
    meta = cell.metadata.papermill
    meta["end_time"] = end_time.isoformat()
    if meta.get("start_time"):
        meta["duration"] = (end_time - datetime.fromisoformat(meta["start_time"])).total_seconds()
    if meta["status"] != nb_man.FAILED:
        meta["status"] = nb_man.COMPLETED
    if nb_man.pbar:
        nb_man.pbar.update(1)


def execute_here(
    template: Path, nb_out: Path, params: dict[str, Any], cwd: Path, skip_tag: str | None = SKIPPED_IN_BATCH
) -> str | None:
    """Execute one notebook in this process on the warm shell (:func:`warm_up`); return the failure in words (a
    cell's error, or whatever else stopped it), or None. Code cells tagged ``skip_tag`` are left unexecuted.
    """
    import papermill as pm

    try:
        pm.execute_notebook(
            str(template),
            str(nb_out),
            parameters=params,
            cwd=str(cwd),
            engine_name=ENGINE_NAME,
            progress_bar=False,
            log_output=False,
            skip_cells_with_tag=skip_tag or "",
        )
    except pm.PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - the notebook's failure, recorded by the caller
        return f"{type(exc).__name__}: {exc}"
    return None


def run_forked(
    template: Path,
    nb_out: Path,
    params: dict[str, Any],
    cwd: Path,
    timeout: float | None = None,
    skip_tag: str | None = SKIPPED_IN_BATCH,
) -> str | None:
    """Execute one notebook in a forked child; return the failure in words, or None.

    A child still running after ``timeout`` seconds is killed and the notebook counts as timed out. Code cells
    tagged ``skip_tag`` (default: the exploration cells) are left unexecuted; None runs every cell.

    The child exits 0 on success, 3 after a cell error (its notebook carries the
    traceback) and writes the error to ``<nb_out>.error.json``; any other end (a
    crash, ``os._exit``, a signal) is a dead process, like a dead kernel. A child
    that cannot write its error file still exits 3: a failed notebook is never
    counted as a success. The child dies with this process.
    """
    error_file = nb_out.with_name(nb_out.name + ".error.json")
    sys.stdout.flush()
    sys.stderr.flush()
    # Frozen objects are never traversed by the child's garbage collector, so the child does not write to (and
    # copy) every page of the warmed-up data and libraries it inherits; the parent unfreezes at once, so its own
    # garbage is still collected.
    gc.freeze()
    pid = os.fork()
    if pid != 0:
        gc.unfreeze()
    if pid == 0:  # the child: run, report, and leave without running the parent's cleanup
        code = 3  # anything but a clean finish is a failure
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            die_with_parent()
            try:
                reason = execute_here(template, nb_out, params, cwd, skip_tag)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which records it
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None:
                code = 0
            else:
                error_file.write_text(json.dumps({"reason": reason[:2000]}))
        finally:
            os._exit(code)
    set_child(pid)
    expired = threading.Event()

    def _expire() -> None:
        expired.set()
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    timer = threading.Timer(timeout, _expire) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:  # interrupted: the notebook must not outlive the run
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        set_child(0)
        if timer is not None:
            timer.cancel()
            timer.join()
    if expired.is_set():
        return timed_out(float(timeout or 0))
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None if nb_out.exists() else "the notebook process finished without writing its notebook"
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3:
        try:
            reason = str(json.loads(error_file.read_text())["reason"])
            error_file.unlink()
        except (OSError, ValueError, KeyError, TypeError):
            reason = "the notebook failed, and its error could not be recorded"
        return reason
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit code {os.WEXITSTATUS(status)}"
    return f"the notebook process died ({how}); the notebook stopped part-way"
