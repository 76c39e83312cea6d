"""A planted JSON record nested past the parser's depth is read as garbage, not raised.

``json.loads`` raises ``RecursionError`` (not ``ValueError``) for arrays nested a few thousand deep, which fit
well within any size limit: the batch's run order (``preflight.last_seconds``) and the publisher's record reader
(``publishing.read_json``) and the results table (``reporting.results_table``) must treat such a file as the unreadable record it is.
"""

from __future__ import annotations

from pathlib import Path

from evallib.pipeline.preflight import RECORD_LIMIT, last_seconds
from evallib.reporting.publishing import read_json
from evallib.reporting.results_table import results_table

NESTED = b"[" * (RECORD_LIMIT // 2)


def test_a_run_json_nested_past_the_parsers_depth_loses_only_its_place(tmp_path: Path) -> None:
    (tmp_path / "V04").mkdir()
    (tmp_path / "V04" / "run.json").write_bytes(NESTED)
    assert last_seconds(tmp_path, "V04") is None


def test_a_record_nested_past_the_parsers_depth_reads_as_unreadable(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_bytes(NESTED)
    assert read_json(tmp_path / "results.json") is None


def test_the_results_table_leaves_out_a_results_file_nested_past_the_parsers_depth(tmp_path: Path) -> None:
    (tmp_path / "V04").mkdir()
    (tmp_path / "V04" / "results.json").write_bytes(NESTED)
    assert len(results_table(tmp_path)) == 0
