"""A warm Dask worker stops its stack profiler and slows its housekeeping, however it was started.

Dask's worker samples every thread's stack every 10 ms for its dashboard; over a batch that was most of what a
worker started by plain ``dask worker`` cost beyond a local run. The first site's task stops it at runtime
(:func:`evallib.pipeline.dask_warm.calm_worker`), so no launch flag or configuration is needed.
"""

from __future__ import annotations

from typing import Any

import pytest

from evallib.pipeline import dask_warm

distributed = pytest.importorskip("dask.distributed")


def _state(dask_worker: Any) -> dict[str, Any]:
    callbacks = dask_worker.periodic_callbacks
    return {
        "profiler": [callbacks[n].is_running() for n in dask_warm.PROFILER_CALLBACKS],
        "ms": {n: callbacks[n].callback_time for n in dask_warm.CALMER_MS if n in callbacks},
    }


def test_the_first_task_on_a_worker_stops_its_profiler_and_slows_its_housekeeping() -> None:
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        [before] = client.run(_state).values()
        assert before["profiler"] == [True, True]  # Dask's default: on
        assert before["ms"]["tick"] < dask_warm.CALMER_MS["tick"]
        client.submit(dask_warm.calm_this_worker, pure=False).result()
        [after] = client.run(_state).values()
    assert after["profiler"] == [False, False]
    assert after["ms"] == {n: ms for n, ms in dask_warm.CALMER_MS.items() if n in after["ms"]}
    assert {"tick", "monitor"} <= set(after["ms"])


def test_calming_outside_a_worker_does_nothing() -> None:
    dask_warm.calm_this_worker()  # no worker: returns without error


def test_the_client_slows_the_schedulers_and_nannies_housekeeping() -> None:
    def every(dask_worker: Any = None, dask_scheduler: Any = None) -> dict[str, float]:
        server = dask_worker if dask_worker is not None else dask_scheduler
        return {n: server.periodic_callbacks[n].callback_time for n in ("tick", "monitor")}

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert client.run_on_scheduler(every)["tick"] < dask_warm.CALMER_MS["tick"]  # Dask's default
        dask_warm.calm_cluster(client)
        [nanny] = client.run(every, nanny=True).values()
        scheduler = client.run_on_scheduler(every)
    for server in (nanny, scheduler):
        assert server == {n: dask_warm.CALMER_MS[n] for n in ("tick", "monitor")}
