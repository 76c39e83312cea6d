"""The batch's order of sites reads each site's last ``run.json`` (``preflight.last_seconds``): a planted or
hostile record can change only the order, never hang the batch or fill its memory."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

from evallib.pipeline.preflight import RECORD_LIMIT, last_seconds

from .conftest import read_fifo_unblocked


def _site(tmp_path: Path) -> Path:
    folder = tmp_path / "V04"
    folder.mkdir()
    return folder


def test_a_fifo_named_run_json_is_not_waited_on(tmp_path: Path) -> None:
    fifo = _site(tmp_path) / "run.json"
    os.mkfifo(fifo)
    assert read_fifo_unblocked(fifo, lambda: last_seconds(tmp_path, "V04")) is None


def test_a_huge_run_json_is_not_read_into_memory(tmp_path: Path) -> None:
    record = _site(tmp_path) / "run.json"
    with open(record, "wb") as f:
        f.write(b'{"seconds": 5}')
        f.truncate(64 * 2**20)  # sparse: 64 MiB of zeros after a valid start
    tracemalloc.start()
    try:
        assert last_seconds(tmp_path, "V04") is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * RECORD_LIMIT


def test_a_record_at_the_limit_is_still_read(tmp_path: Path) -> None:
    text = json.dumps({"seconds": 12.5})
    (_site(tmp_path) / "run.json").write_text(text + " " * (RECORD_LIMIT - len(text)), encoding="utf-8")
    assert last_seconds(tmp_path, "V04") == 12.5


def test_a_linked_run_json_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"seconds": 99}', encoding="utf-8")
    (_site(tmp_path) / "run.json").symlink_to(elsewhere)
    assert last_seconds(tmp_path, "V04") is None


def test_a_folder_or_garbage_named_run_json_loses_only_its_place(tmp_path: Path) -> None:
    (_site(tmp_path) / "run.json").mkdir()
    assert last_seconds(tmp_path, "V04") is None
    (tmp_path / "V04" / "run.json").rmdir()
    for garbage in (b"\xff\xfe not UTF-8", b"{not JSON", b'{"seconds": true}', b"[5]"):
        (tmp_path / "V04" / "run.json").write_bytes(garbage)
        assert last_seconds(tmp_path, "V04") is None, garbage
