"""The batch's window helper (``pipeline/warm.py``'s ``WindowHelper``) under interruption: an interrupt while it
works leaves no process behind, and a SIGTERM sent to it (to the batch's whole process group, as a service
manager does) ends it quietly, whatever handler the batch's process had installed, and the batch harmonises its
windows itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from evallib.pipeline import executor

from .conftest import ROOT

_SLOW_HELPER = """
import os, signal, sys, time
from evallib.evaluation.site import units
from evallib.pipeline.pool import sigterm_as_interrupt
from evallib.pipeline.warm import WindowHelper

units.harmonised_windows = lambda windows: time.sleep(60)  # inherited by the forked helper
with sigterm_as_interrupt():  # as run_batch holds it while the helper works
    with WindowHelper([("x", None, None)]) as helper:
        pid = helper._process.pid
        time.sleep(0.5)
        os.kill(pid, signal.SIGTERM)
        delivered = helper.adopt(limit=30)
print("delivered" if delivered else "not delivered", flush=True)
"""


@pytest.mark.unit
def test_an_interrupt_while_the_helper_works_leaves_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    if not executor.available():
        pytest.skip("no fork")
    from evallib.evaluation.site import units
    from evallib.pipeline.warm import WindowHelper

    monkeypatch.setattr(units, "harmonised_windows", lambda windows: time.sleep(60))
    with pytest.raises(KeyboardInterrupt), WindowHelper([("x", None, None)]) as helper:  # type: ignore[list-item]
        process = helper._process
        raise KeyboardInterrupt
    assert process is not None and not process.is_alive() and process.exitcode is not None


@pytest.mark.unit
def test_a_sigterm_to_the_helper_ends_it_quietly_and_the_batch_goes_on() -> None:
    if not executor.available():
        pytest.skip("no fork")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _SLOW_HELPER], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "not delivered"
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
