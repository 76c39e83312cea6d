"""A window helper whose windows cannot be sent back (they do not pickle) says so quietly: the batch's process
harmonises them itself, and no traceback reaches the evaluator's terminal."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evallib.pipeline import executor

from .conftest import ROOT

_UNPICKLABLE = """
from evallib.evaluation.site import units
from evallib.pipeline.warm import WindowHelper

units.harmonised_windows = lambda windows: [lambda: None]  # inherited by the forked helper; a lambda never pickles
with WindowHelper([("x", None, None)]) as helper:
    delivered = helper.adopt(limit=30)
print("delivered" if delivered else "not delivered", flush=True)
"""


@pytest.mark.unit
def test_windows_that_do_not_pickle_are_left_to_the_batch_without_a_traceback() -> None:
    if not executor.available():
        pytest.skip("no fork")
    done = subprocess.run(
        [sys.executable, "-c", _UNPICKLABLE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "not delivered"
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
