"""``writing.read_file`` (every read of ``outputs/``: results, run records, pages) refuses a FIFO planted in place
of a file instead of waiting forever for a writer at the opening."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from evallib.protocol.writing import UnsafePath, read_file


@pytest.mark.unit
def test_a_fifo_in_place_of_a_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    got: list[BaseException | bytes] = []

    def read() -> None:
        try:
            got.append(read_file(fifo))
        except BaseException as exc:  # noqa: BLE001 - examined below
            got.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # blocked opening the pipe: a writer lets it go, so the test run does not hang
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
        pytest.fail("read_file waited for a writer on a FIFO")
    assert len(got) == 1 and isinstance(got[0], UnsafePath)


@pytest.mark.unit
def test_a_regular_file_is_still_read_whole(tmp_path: Path) -> None:
    data = os.urandom(3 * 2**20 + 5)
    (tmp_path / "f.bin").write_bytes(data)
    assert read_file(tmp_path / "f.bin") == data
