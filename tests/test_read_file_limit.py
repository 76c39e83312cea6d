"""``writing.read_file`` with ``limit`` (the run records read for the order of sites): a file over the limit is
refused having read no more than one byte past the limit (so one that grows while read is refused too), a file at
the limit is read whole, and without a limit nothing changes."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from evallib.protocol.writing import FileTooLarge, read_file

pytestmark = pytest.mark.unit

LIMIT = 2**16


def test_a_file_over_the_limit_is_refused_without_being_read_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    with open(path, "wb") as f:
        f.truncate(64 * 2**20)  # sparse: 64 MiB of zeros
    tracemalloc.start()
    try:
        with pytest.raises(FileTooLarge, match="larger than 65536 bytes") as refused:
            read_file(path, limit=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT
    assert isinstance(refused.value, ValueError)  # callers that skip a bad record catch it as one


def test_a_file_one_byte_over_the_limit_is_refused_and_one_at_it_read(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(b"x" * (LIMIT + 1))
    with pytest.raises(FileTooLarge):
        read_file(path, limit=LIMIT)
    path.write_bytes(b"x" * LIMIT)
    assert read_file(path, limit=LIMIT) == b"x" * LIMIT
    assert read_file(path) == b"x" * LIMIT  # no limit: read whole, as before
