"""Dask workers started from one warm process, as the local batch's workers are forked from its warm parent.

``dask worker ADDRESS --nworkers 2 --nthreads 1 --preload-nanny evallib.pipeline.nanny`` starts one
process holding two nannies, and this module (run in it before either starts its worker) makes them start
their workers from multiprocessing's fork server instead of a fresh interpreter each: the fork server imports
what the sites' processes import and compiles what their pages compile (:mod:`evallib.pipeline.forkserver`,
:func:`evallib.pipeline.executor.warm_up` without data windows) once, and every worker forked from it starts
with that in memory. Each worker still loads the batch's data windows at its first task (they depend on the
batch), as before. Without this preload every worker imports and warms on its own (about 4 s of CPU each).

The fork server is started by the nanny after Dask's own environment for workers is set (one BLAS thread,
the heap setting, the hash seed: ``distributed.nanny.pre-spawn-environ``), so its children get the same
environment a spawned worker gets, and the results are the same (``benchmarks/dask_warm.py`` and
``tests/test_dask_preload.py`` compare them byte for byte).
"""

from __future__ import annotations

from typing import Any

#: The module the fork server imports, which warms it.
WARM_MODULE = "evallib.pipeline.forkserver"
METHOD_KEY = "distributed.worker.multiprocessing-method"


def dask_setup(nanny: Any) -> None:
    """Make this process's nannies start workers from a fork server that imports :data:`WARM_MODULE`, and slow
    ``nanny``'s housekeeping (:func:`evallib.pipeline.housekeeping.calm_server`).

    Runs in the ``dask worker`` process before its nannies start their workers (once per nanny: idempotent).
    The nanny calms itself here because the client's calming (:func:`~evallib.pipeline.housekeeping.calm_cluster`)
    reaches only the workers already registered when a run starts, and a worker forked warm registers later.
    """
    import dask
    from distributed.utils import get_mp_context

    from evallib.pipeline.housekeeping import calm_server

    calm_server(nanny)

    dask.config.set({METHOD_KEY: "forkserver"})
    context = get_mp_context()  # Dask's own fork-server preload list (distributed, numpy, pandas, ...), set once
    from multiprocessing import forkserver

    modules = list(getattr(forkserver._forkserver, "_preload_modules", []))  # noqa: SLF001 - no public getter
    if WARM_MODULE not in modules:
        context.set_forkserver_preload([*modules, WARM_MODULE])
