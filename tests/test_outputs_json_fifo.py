"""The readers of a site's ``results.json`` and ``run.json`` in ``outputs/`` (``publishing.read_json``: the batch's
"unchanged since the last run" check, verification, publishing; ``results_table``) never wait on a FIFO planted
there and never follow a link: such a file is unreadable (None, or the site left out), as the batch's order reader
already treats one (``tests/test_run_record_order.py``); a plain record is still read (review)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evallib.reporting.publishing import read_json
from evallib.reporting.results_table import _read

from .conftest import read_fifo_unblocked

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")


def test_a_fifo_named_run_json_is_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "run.json"
    os.mkfifo(fifo)
    assert read_fifo_unblocked(fifo, lambda: read_json(fifo)) is None


def test_a_fifo_named_results_json_leaves_the_site_out_of_the_table(tmp_path: Path) -> None:
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    assert read_fifo_unblocked(fifo, lambda: _read(fifo)) is None


def test_a_linked_record_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"site_id": "V04", "status": "published"}), encoding="utf-8")
    (tmp_path / "results.json").symlink_to(elsewhere)
    assert read_json(tmp_path / "results.json") is None and _read(tmp_path / "results.json") is None


def test_a_plain_record_is_still_read(tmp_path: Path) -> None:
    record = {"site_id": "V04", "status": "published"}
    (tmp_path / "results.json").write_text(json.dumps(record), encoding="utf-8")
    assert read_json(tmp_path / "results.json") == record == _read(tmp_path / "results.json")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    assert read_json(tmp_path / "bad.json") is None
