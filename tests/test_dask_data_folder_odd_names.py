"""A data folder outside the project whose name holds any character reaches a warm Dask worker readable.

The worker's ``evallib.toml`` names the shipped data folders (pipeline/dask_warm.py, ``_lay_out``). JSON's ASCII
escapes write a character beyond the Basic Multilingual Plane (an emoji, many CJK extensions) as a surrogate pair,
which TOML refuses, so such a folder name made the worker's settings unreadable and the site fail there while it
ran locally.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evallib.pipeline import dask_warm
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import find_params
from evallib.sources import files as data_files

from .conftest import SMALL_SITE, make_project, small_counts_csv


@pytest.mark.parametrize("folder", ["extracts \U0001f600", "données", 'a\\b "q"'])
def test_a_shipped_data_folder_with_an_odd_name_is_read_on_the_worker_as_on_the_client(
    tmp_path: Path, folder: str
) -> None:
    data = tmp_path / folder / "small.csv"
    data.parent.mkdir()
    data.write_text(small_counts_csv())
    root = tmp_path / "p"
    make_project(root, [], programme=False, small=True)
    (root / "data" / "small.csv").unlink()
    (root / "evallib.toml").write_text(
        f"[data]\nfolders = [{json.dumps(str(data.parent), ensure_ascii=False)}]\n", encoding="utf-8"
    )
    params = SMALL_SITE.replace('path: "data/small.csv"', f"path: {json.dumps(str(data), ensure_ascii=False)}")
    (root / "params" / "other" / "S01.yaml").write_text(params, encoding="utf-8")
    [job] = preflight(find_params(root / "params", None), root)
    shipped = dask_warm.site_files(root, job)
    base = tmp_path / "worker"
    base.mkdir()
    try:
        project = dask_warm._lay_out(shipped, base)
        real = data_files.resolve_data_path(str(data), project)  # the worker's settings read, the copy found
        assert real.read_bytes() == data.read_bytes()
        assert data_files.display_path(real, project) == data_files.display_path(data, root)
    finally:
        data_files.SHIPPED.clear()
