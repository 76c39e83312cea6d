"""The programme files and run a Dask worker returns are data of unchecked types: the client never crashes on them.

A worker's answer (:func:`evallib.pipeline.cluster.run_on_worker`) is unpickled on the client; a failed
notebook that is not bytes, or a run whose count of attempts is not a number, must become the programme's
failure record (or a plain count), never an exception out of the batch's publish step nor a summary that
cannot be written.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from evallib.pipeline import cluster
from evallib.pipeline.execute import SiteRun
from evallib.reporting.publishing import programme_verified

from .test_dask_programme import _Client, _old_report_kept, _published, _returned


@pytest.mark.parametrize("notebook", [12, ["cells"], "a str, not bytes", {"cells": []}])
def test_a_failed_notebook_returned_as_something_else_than_bytes_is_left_out(tmp_path: Path, notebook: Any) -> None:
    root, outputs, chosen = _published(tmp_path)
    failed = SiteRun("programme", "failed", "ValueError: boom"), {"failed.ipynb": notebook}
    run = cluster.runner(_Client(failed))(root, outputs, "forked", chosen, 60.0)
    assert (run.status, run.reason) == ("failed", "ValueError: boom")
    assert _old_report_kept(outputs) and not programme_verified(outputs, chosen)
    assert not (outputs / "programme" / "failed.ipynb").exists()
    assert json.loads((outputs / "programme" / "failure.json").read_text())["reason"] == "ValueError: boom"


@pytest.mark.parametrize("attempts", [object(), "2", None, 2.5, True])
def test_a_returned_run_whose_attempts_are_not_a_count_still_gives_a_count(tmp_path: Path, attempts: Any) -> None:
    root, outputs, chosen = _published(tmp_path)
    ran, files = _returned(chosen, b"<html>the programme</html>")
    ran = dataclasses.replace(ran, attempts=attempts)
    run = cluster.runner(_Client((ran, files)))(root, outputs, "forked", chosen, 60.0)
    assert run.status == "published" and type(run.attempts) is int and run.attempts == 1
    json.dumps(run.__dict__)  # the run summary can be written


class _GoneClient(_Client):
    """A client whose scheduler went away after the sites: asking it anything raises."""

    def __init__(self, fails: str) -> None:
        super().__init__(None)
        self.fails = fails

    def scheduler_info(self) -> dict[str, Any]:
        if self.fails == "scheduler_info":
            raise OSError("Timed out trying to connect to tcp://127.0.0.1:8786")
        return super().scheduler_info()

    def submit(self, call: Any, payload: bytes, key: str, pure: bool) -> Any:
        raise RuntimeError("Client is closed")  # distributed's ClosedClientError is a RuntimeError too


@pytest.mark.parametrize("fails", ["scheduler_info", "submit"])
def test_a_scheduler_gone_before_the_programme_notebook_runs_it_on_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    root, outputs, chosen = _published(tmp_path)
    here: list[str] = []
    monkeypatch.setattr(cluster, "run_programme", lambda *a: here.append("ran") or SiteRun("programme", "x"))
    assert cluster.runner(_GoneClient(fails))(root, outputs, "forked", chosen, 60.0).status == "x"
    assert here == ["ran"]


def test_a_returned_run_record_nested_past_the_parsers_depth_is_refused_not_raised(tmp_path: Path) -> None:
    root, outputs, chosen = _published(tmp_path)
    ran, files = _returned(chosen, b"<html>the programme</html>")
    files["run.json"] = b"[" * 200_000  # well under the size limit, far past json's recursion limit
    run = cluster.runner(_Client((ran, files)))(root, outputs, "forked", chosen, 60.0)
    assert run.status == "failed" and "unreadable" in run.reason
    assert _old_report_kept(outputs) and not programme_verified(outputs, chosen)
