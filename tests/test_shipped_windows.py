"""Data windows harmonised in the batch's helper process and pickled back (``units.harmonised_windows`` /
``units.adopt``, ``pipeline/warm.py``'s ``WindowHelper``) give a site exactly the results that windows
harmonised in its own process give: results must not depend on which process harmonised a window (nor,
through that, on the batch's number of workers)."""

from __future__ import annotations

import json
from pathlib import Path

from evallib import write_results
from evallib.evaluation.site import units
from evallib.evaluation.site.evaluate import data_windows, evaluate_site
from evallib.pipeline.warm import WindowHelper
from evallib.protocol.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def _clear() -> None:
    units._harmonised.cache_clear()
    units._breaks.cache_clear()


def _results(protocol: object, folder: Path) -> list[dict[str, object]]:
    written = write_results(evaluate_site(protocol), folder)  # type: ignore[arg-type]
    return json.loads(written.read_text(encoding="utf-8"))["results"]


def test_a_site_from_shipped_windows_has_the_same_results_bit_for_bit(tmp_path: Path) -> None:
    protocol = load_params(ROOT / "params" / "vanguards" / "V04.yaml")
    windows = list(data_windows([protocol]))
    _clear()
    try:
        units.prefetch(windows)
        here = _results(protocol, tmp_path / "here")
        _clear()
        with WindowHelper(windows) as helper:  # harmonised in a forked process, pickled back through a pipe
            assert helper.adopt()
        there = _results(protocol, tmp_path / "there")
    finally:
        _clear()
    assert [(r["method"], r["outcome"], r["std_error"]) for r in there] == [
        (r["method"], r["outcome"], r["std_error"]) for r in here
    ]
    assert there == here
