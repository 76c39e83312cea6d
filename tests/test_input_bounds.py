"""Inputs bounded by what they decode to, not only by their size on disk (issue 20): a 200 KB parquet file can
decode to 100 million rows; a CSV's lines are counted before it is parsed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evallib.errors import DataError
from evallib.sources import files
from evallib.sources.files import read_table

from .conftest import SMALL_SITE

pytestmark = pytest.mark.integration

BOMB_ROWS = 100_000_000
MEMORY_LIMIT = 2 * 2**30


def _bomb(path: Path) -> None:
    """About 200 KB on disk, 100 million rows (all blank) when decoded."""
    table = pa.table({c: pa.nulls(BOMB_ROWS, pa.string()) for c in ("trust", "month", "admissions")})
    pq.write_table(table, path, row_group_size=BOMB_ROWS)


def test_a_parquet_decompression_bomb_is_refused_from_its_metadata_under_a_memory_limit(tmp_path: Path) -> None:
    (tmp_path / "params" / "other").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "data").mkdir()
    _bomb(tmp_path / "data" / "bomb.parquet")
    assert (tmp_path / "data" / "bomb.parquet").stat().st_size < 2**20
    site = SMALL_SITE.replace("data/small.csv", "data/bomb.parquet")
    (tmp_path / "params" / "other" / "S01.yaml").write_text(site)
    limited = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))\n"
        "from evallib.pipeline.cli import main\n"
        "sys.exit(main(['validate']))\n"
    )
    env = {**os.environ, "EVALLIB_PROJECT_ROOT": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", limited], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "data file bomb.parquet holds 100,000,000 rows, over the limit of 5,000,000" in out.stderr
    assert "Traceback" not in out.stderr and "MemoryError" not in out.stderr


def _csv(path: Path, rows: int, columns: int = 3) -> None:
    header = ",".join(["trust", "month", "admissions"] + [f"x{i}" for i in range(columns - 3)])
    body = "".join(f"RTF,2014-01,{i}" + ",0" * (columns - 3) + "\n" for i in range(rows))
    path.write_text(header + "\n" + body)


def test_a_csv_is_refused_by_its_line_count_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_ROWS", 1_000)

    def never(*args: object, **kwargs: object) -> pd.DataFrame:
        raise AssertionError("the CSV was parsed")

    _csv(tmp_path / "big.csv", 1_001)
    with monkeypatch.context() as m:
        m.setattr(pd, "read_csv", never)
        with pytest.raises(DataError, match="holds 1,001 rows, over the limit of 1,000"):
            read_table(Path("big.csv"), tmp_path)
    _csv(tmp_path / "ok.csv", 1_000)
    assert len(read_table(Path("ok.csv"), tmp_path)) == 1_000


def test_columns_and_cells_are_capped_for_csv_and_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_COLUMNS", 10)
    monkeypatch.setattr(files, "MAX_CELLS", 500)
    _csv(tmp_path / "wide.csv", 5, columns=11)
    with pytest.raises(DataError, match="holds 11 columns, over the limit of 10"):
        read_table(Path("wide.csv"), tmp_path)
    _csv(tmp_path / "cells.csv", 200, columns=3)
    with pytest.raises(DataError, match="holds 600 cells, over the limit of 500"):
        read_table(Path("cells.csv"), tmp_path)
    frame = pd.DataFrame({f"c{i}": range(3) for i in range(11)})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    (tmp_path / "wide.parquet").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="holds 11 columns, over the limit of 10"):
        read_table(Path("wide.parquet"), tmp_path)


def test_a_parquet_file_declaring_too_many_decoded_bytes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_DECODED_BYTES", 10_000)
    frame = pd.DataFrame({"trust": [f"{'R' * 50}{i}" for i in range(2_000)], "month": ["2014-01"] * 2_000})
    frame.to_parquet(tmp_path / "big.parquet", compression="zstd", use_dictionary=False)
    assert (tmp_path / "big.parquet").stat().st_size < 20_000
    with pytest.raises(DataError, match=r"decodes to 0\.1 MB, over the 0\.0 MB limit"):
        read_table(Path("big.parquet"), tmp_path)
