"""Own-data files outside the project travel to warm Dask workers (pipeline/dask_warm.py, site_files).

A params file may name its data by an absolute path into a data folder that ``evallib.toml`` names. The
client checks and reads such a file as a local run does (inside a named data folder, a regular file, under the
size limit, the checked path opened without following a link) and ships it; the worker lays it out under the
folder's own name, so the published file name and the results are a local run's, byte for byte, without the
worker seeing the client's project or data folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evallib.pipeline import dask_warm
from evallib.pipeline.batch import run_batch
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import find_params

from .conftest import SMALL_SITE, make_project, small_counts_csv

distributed = pytest.importorskip("dask.distributed")


def _project(root: Path, data: Path) -> Path:
    """Site S01 on ``data`` by its absolute path, in a data folder the project's evallib.toml names."""
    make_project(root, [], programme=False, small=True)
    (root / "data" / "small.csv").unlink()
    (root / "evallib.toml").write_text(f"[data]\nfolders = [{json.dumps(str(data.parent))}]\n")
    params = SMALL_SITE.replace('path: "data/small.csv"', f"path: {json.dumps(str(data))}")
    (root / "params" / "other" / "S01.yaml").write_text(params)
    return root


def _job(root: Path) -> Any:
    [job] = preflight(find_params(root / "params", None), root)
    return job


def test_an_absolute_path_in_a_named_data_folder_is_shipped_under_the_folders_name(tmp_path: Path) -> None:
    data = tmp_path / "extracts" / "small.csv"
    data.parent.mkdir()
    data.write_text(small_counts_csv())
    root = _project(tmp_path / "p", data)
    files = dask_warm.site_files(root, _job(root))
    name = f"{dask_warm.OUTSIDE}/1/extracts/small.csv"
    assert files[name] == data.read_bytes()
    manifest = json.loads(files[dask_warm.MANIFEST])
    assert manifest["paths"] == {str(data): name} and manifest["folders"] == [[1, "extracts"]]
    assert not any(str(tmp_path) in n for n in files)  # no client path is a file name on the worker


@pytest.mark.parametrize("problem", ["outside every data folder", "over the size limit", "a link out"])
def test_a_data_file_that_a_local_run_would_refuse_is_not_shipped(tmp_path: Path, problem: str) -> None:
    data = tmp_path / "extracts" / "small.csv"
    data.parent.mkdir()
    data.write_text(small_counts_csv())
    root = _project(tmp_path / "p", data)
    job = _job(root)  # checked by preflight; changed since
    if problem == "outside every data folder":
        (root / "evallib.toml").unlink()
    elif problem == "over the size limit":
        data.write_bytes(b"trust,month,admissions\n" + b"x" * (2 * 2**20))
        (root / "evallib.toml").write_text(f"[data]\nfolders = [{json.dumps(str(data.parent))}]\nmax_megabytes = 1\n")
    else:
        elsewhere = tmp_path / "elsewhere.csv"
        data.rename(elsewhere)
        os.symlink(elsewhere, data)
    files = dask_warm.site_files(root, job)
    assert dask_warm.MANIFEST not in files
    assert not any(n.startswith(dask_warm.OUTSIDE) for n in files)


@pytest.mark.e2e
def test_data_outside_the_project_gives_a_local_runs_results_on_dask_without_a_shared_path(tmp_path: Path) -> None:
    from .test_dask_warm import _wall_off

    data = tmp_path / "extracts" / "small.csv"
    data.parent.mkdir()
    data.write_text(small_counts_csv())
    local = _project(tmp_path / "local", data)
    on_dask = _project(tmp_path / "dask", data)
    assert run_batch(None, root=local, progress=False).exit_code == 0
    (tmp_path / "elsewhere").mkdir()
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        _wall_off(client, on_dask, tmp_path / "elsewhere")
        _wall_off(client, data.parent, tmp_path / "elsewhere")  # nor the data folder
        result = run_batch(None, root=on_dask, progress=False, scheduler=cluster.scheduler_address)
    assert [(r.site_id, r.status) for r in result.runs] == [("S01", "evaluated")], result.runs
    a = (local / "outputs" / "S01" / "results.json").read_bytes()
    assert a == (on_dask / "outputs" / "S01" / "results.json").read_bytes()  # byte-identical
    files = json.loads(a)["provenance"]["data_files"]
    assert files[0]["file"] == "[data folder extracts]/small.csv"
