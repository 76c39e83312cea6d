"""A worker's time limit while ``WorkerPool(then=)`` warms this process: the first worker's site, started
before ``then()``, keeps its own clock (from when it was handed the site), not one restarted when ``then()``
returns: a site already past its limit then is stopped at once. A fake clock stands for time here."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from evallib.pipeline import executor, pool

_NOW = [0.0]


def _then() -> None:
    _NOW[0] += 100.0  # the warm-up takes 100 s (of the pool's clock)


def _hang(x: int) -> int:
    time.sleep(5)
    return x


@pytest.mark.unit
def test_the_first_site_keeps_its_clock_while_then_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    if not executor.available():
        pytest.skip("no fork")
    _NOW[0] = 0.0
    monkeypatch.setattr(pool, "time", SimpleNamespace(monotonic=lambda: _NOW[0], sleep=time.sleep))
    workers = pool.WorkerPool(2, timeout=10.0, then=_then)
    try:
        [(job, outcome)] = list(workers.run(_hang, [(0, (0,))], on_error=lambda job, why: why))
    finally:
        workers.terminate(grace=1.0)
    assert job == 0 and "timed out" in str(outcome)  # 100 s past its start with a 10 s limit: not let finish
