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
        client.submit(dask_warm._calm_this_worker, pure=False).result()
        [after] = client.run(_state).values()
    assert after["profiler"] == [False, False]
    assert after["ms"] == {n: ms for n, ms in dask_warm.CALMER_MS.items() if n in after["ms"]}
    assert {"tick", "monitor"} <= set(after["ms"])


def test_calming_outside_a_worker_does_nothing() -> None:
    dask_warm._calm_this_worker()  # no worker: returns without error
