"""Dask's own housekeeping kept from costing CPU for as long as a run lasts (``pipeline/dask_warm.py``).

A Dask worker samples every thread's stack every 10 ms for its dashboard, and every server polls its event
loop, system and memory monitors several times a second; over a batch that was most of what a worker started
by plain ``dask worker`` cost beyond a local run. Workers stop the profiler and slow the rest at their first
site (:func:`calm_this_worker`); the client slows the scheduler's and the nannies' (:func:`calm_cluster`).
"""

from __future__ import annotations

from typing import Any

#: The worker's stack profiler (Dask samples every thread's stack every 10 ms for its dashboard): stopped once
#: the worker is warm, since its cost grows with the run and was most of a default worker's overhead.
PROFILER_CALLBACKS = ("profile", "profile-cycle")
#: Housekeeping slowed to at most this often (ms; Dask's defaults: event-loop tick 20, system monitor 500,
#: memory monitor 100): each polls for as long as the run lasts; none of them is needed faster by a site.
CALMER_MS = {"tick": 1000, "monitor": 5000, "memory_monitor": 1000}


def calm_worker(worker: Any) -> None:
    """Stop ``worker``'s stack profiler and slow its housekeeping (:data:`CALMER_MS`); on its event loop.

    Done at runtime by the first site's task, so a worker started by plain ``dask worker`` (nanny, defaults)
    is as lean as one started with the profiler disabled in its configuration.
    """
    callbacks = worker.periodic_callbacks
    for name in PROFILER_CALLBACKS:
        if name in callbacks:
            callbacks[name].stop()
    _slower(CALMER_MS)(worker)


def _slower(every_ms: dict[str, int]) -> Any:
    """A function slowing a Dask server's housekeeping callbacks to ``every_ms``; nested, so Dask sends it by
    value and a scheduler without evallib installed can run it.
    """

    def slow(dask_worker: Any = None, dask_scheduler: Any = None) -> None:
        server = dask_worker if dask_worker is not None else dask_scheduler
        for name, ms in every_ms.items():
            callback = server.periodic_callbacks.get(name)
            if callback is not None and callback.callback_time < ms:
                callback.callback_time = ms  # takes effect from the callback's next run

    return slow


def calm_cluster(client: Any) -> None:
    """Slow the housekeeping (:data:`CALMER_MS`) of the scheduler and the workers' nannies ``client`` reaches.

    Each polls for as long as the run lasts (about 1 s of CPU a minute each at Dask's defaults, so a loaded
    machine that stretches the run stretches it too). Only diagnostics slow: the dashboard's system graphs and
    the event-loop health check. Best effort: a nanny or scheduler that cannot run it is left as it was.
    """
    slow = _slower(CALMER_MS)
    try:
        client.run(slow, nanny=True, on_error="ignore")
        client.run_on_scheduler(slow)
    except Exception:  # noqa: BLE001 - a cluster that refuses runs as it is; only its housekeeping costs more
        pass


def calm_this_worker() -> None:
    """:func:`calm_worker` for the Dask worker running this task (nothing outside a worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    worker.loop.add_callback(calm_worker, worker)  # thread-safe: the callbacks belong to the event loop


def calm_server(server: Any) -> None:
    """Slow the housekeeping (:data:`CALMER_MS`) of a Dask worker, nanny or scheduler in this process."""
    _slower(CALMER_MS)(dask_worker=server)
