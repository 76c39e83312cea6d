"""The warm-up site in a Dask worker's task thread: never stopped asynchronously, so bounded by its choice
(``pipeline/warm.py`` ``warm_with_site``, ``pipeline/dask_warm.py`` ``_warm_with``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from evallib.pipeline import dask_warm
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import find_params, load_params

from .conftest import ROOT, make_project


@pytest.mark.unit
def test_a_warm_up_site_in_a_task_thread_runs_to_its_end_and_restores_what_it_redirected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No exception is raised into the thread from outside (it could land in the ``finally`` restoring
    ``sys.stdout`` or the environment, or leave a lock held for every site forked later)."""
    from evallib.evaluation.site import evaluate
    from evallib.pipeline import warm

    protocol = load_params(ROOT / "params" / "vanguards" / "V04.yaml")
    finished: list[bool] = []

    def slow(p: object) -> None:
        print("discarded")
        time.sleep(0.5)
        finished.append(True)
        raise ValueError("then fails, as a site may")

    monkeypatch.setattr(evaluate, "evaluate_site", slow)
    stdout, environ = sys.stdout, dict(os.environ)
    found: list[bool] = []
    thread = threading.Thread(target=lambda: found.append(warm.warm_with_site(protocol, tmp_path)))
    thread.start()
    thread.join(20)
    assert finished == [True] and found == [False]  # ran to its end; its failure reported, not raised
    assert sys.stdout is stdout and dict(os.environ) == environ
    monkeypatch.setattr(evaluate, "evaluate_site", lambda p: None)
    monkeypatch.setattr("evallib.reporting.report.full_report", lambda r: None)
    thread = threading.Thread(target=lambda: found.append(warm.warm_with_site(protocol, tmp_path)))
    thread.start()
    thread.join(20)
    assert found == [False, True]


@pytest.mark.unit
def test_a_worker_warms_only_with_a_site_on_bundled_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path / "p", ["V04"], programme=False, small=True)
    jobs = {j.site_id: j for j in preflight(find_params(root / "params", None), root)}
    calls: list[Any] = []
    monkeypatch.setattr(dask_warm, "warm_with_site", lambda protocol, project: calls.append(protocol.site_id))
    monkeypatch.setattr(dask_warm, "_WARMED", set())
    dask_warm._warm_with(jobs["S01"], root)  # its own data: any size the limit allows, so not a warm-up
    assert calls == [] and "site" not in dask_warm._WARMED
    dask_warm._warm_with(jobs["V04"], root)
    dask_warm._warm_with(jobs["V04"], root)
    assert calls == ["V04"]  # once per worker
