"""The batch on a real Dask cluster (separate worker processes) gives the same outputs as a local run."""

from __future__ import annotations

from pathlib import Path

import pytest

from evallib.pipeline.batch import run_batch

from .test_runner import _project

pytestmark = pytest.mark.e2e
distributed = pytest.importorskip("dask.distributed")


def test_local_cluster_run_matches_local_run(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "dask").mkdir()
    local = _project(tmp_path / "local", ["V04", "V45"])
    on_dask = _project(tmp_path / "dask", ["V04", "V45"])
    assert run_batch(None, root=local, progress=False).exit_code == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = run_batch(None, root=on_dask, progress=False, scheduler=cluster.scheduler_address)
    assert result.exit_code == 0
    assert {r.site_id: r.status for r in result.runs} == {"V04": "evaluated", "V45": "not evaluable"}
    for site in ("V04", "V45"):
        a = (local / "outputs" / site / "results.json").read_bytes()
        b = (on_dask / "outputs" / site / "results.json").read_bytes()
        assert a == b  # byte-identical: the same executions, only elsewhere
        assert (on_dask / "outputs" / "site" / f"{site}.html").exists()
