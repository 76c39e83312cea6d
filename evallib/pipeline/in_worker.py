"""Running a site's notebook in a batch worker's own process, one site after another.

A local batch's workers are forked from the batch's warm process (:func:`evallib.pipeline.executor.warm_up`). Forking
once more for every site cost each site 70-130 ms of kernel time on the machines measured (the fork, its exit, and
above all the copy-on-write faults: Python's reference counts write to thousands of inherited pages), 10-14% of a
site's CPU. So a local worker runs its sites in its own process, each on a fresh namespace, and is replaced by a fresh
fork of the warm process whenever it cannot be trusted to be clean:

* every notebook starts as in a process of its own: the shell's namespace, history and cell numbers reset, the
  figures closed, and matplotlib's settings and the warning filters as the warm process left them
  (:func:`run_in_worker`);
* a site that fails (a cell error, or anything the runner raises) has its worker replaced before the next site
  (:func:`evallib.pipeline.pool.retire_after_task`): a half-done step could have left a cache or a module changed;
* a worker that dies, or runs past the time limit, is killed and replaced by the pool as before, and the notebook
  it had saved so far is kept as the site's ``failed.ipynb`` (:func:`evallib.pipeline.execute.salvage_failure`).

A site's results and pages are byte-identical to those of the same site run alone in a fresh process
(``tests/test_in_worker.py``). Dask workers, whose tasks run in threads, still fork a process per site
(:mod:`evallib.pipeline.dask_warm`), as does the programme notebook.
"""

from __future__ import annotations

import gc
import warnings
from pathlib import Path
from typing import Any

from evallib.pipeline.executor import ENGINE_NAME, SKIPPED_IN_BATCH, reset_shell, warm_up
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
    import papermill as pm

    warm_up()  # a no-op in a warm worker; it registers the engine and builds the shell
    if not _FROZEN:
        # What the worker inherited warm is never traversed by its collector (as in a forked site's process);
        # each site's own garbage still is.
        gc.freeze()
        _FROZEN.append(True)
    reason: str | None = None
    try:
        # Each notebook sees the warning filters and matplotlib settings as the warm process left them, whatever
        # the site before it changed.
        with warnings.catch_warnings(), matplotlib.rc_context():
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
        reason = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - the site's failure, recorded by the caller
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            plt.close("all")
            reset_shell()
        except Exception:  # noqa: BLE001 - the site's files are written; the next site gets a fresh worker
            retire_after_task()
    if reason is not None:
        retire_after_task()
    return reason
