"""``writing.read_file`` (every read of ``outputs/``: results, run records, pages) refuses a FIFO planted in place
of a file instead of waiting forever for a writer at the opening."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evallib.protocol.writing import UnsafePath, read_file

from .conftest import read_fifo_unblocked


@pytest.mark.unit
def test_a_fifo_in_place_of_a_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    assert isinstance(read_fifo_unblocked(fifo, lambda: read_file(fifo)), UnsafePath)


@pytest.mark.unit
def test_a_regular_file_is_still_read_whole(tmp_path: Path) -> None:
    data = os.urandom(3 * 2**20 + 5)
    (tmp_path / "f.bin").write_bytes(data)
    assert read_file(tmp_path / "f.bin") == data
