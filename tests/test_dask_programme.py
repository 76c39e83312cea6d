"""The programme notebook on a warm Dask worker (pipeline/cluster.py): the client ships the verified site
results, checks the page that comes back, signs it with its own key and publishes it, or runs the notebook itself.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evallib.errors import EvalLibError
from evallib.pipeline import cluster
from evallib.pipeline.batch import run_batch
from evallib.pipeline.execute import SiteRun
from evallib.reporting.publishing import SiteEntry, inputs_fingerprint, programme_verified

from .conftest import make_project

_CLIENT = """
import json, sys
from pathlib import Path
from evallib.pipeline.batch import run_batch

result = run_batch(None, root=Path(sys.argv[1]), progress=False, scheduler=sys.argv[2])
stack = ("evallib.reporting.programme_page", "evallib.reporting.report", "papermill", "nbconvert", "IPython")
runs = {r.site_id: r.status for r in result.runs}
print(json.dumps({"runs": runs, "imported": [m for m in stack if m in sys.modules]}))
"""


@pytest.mark.e2e
def test_the_programme_page_from_a_dask_run_is_the_local_runs_made_on_a_worker(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    from .test_dask_warm import _cluster, _wall_off

    local = make_project(tmp_path / "local", ["V04", "V45"], small=True)
    on_dask = make_project(tmp_path / "dask", ["V04", "V45"], small=True)
    assert run_batch(None, root=local, progress=False).exit_code == 0
    (tmp_path / "elsewhere").mkdir()
    with _cluster() as local_cluster, distributed.Client(local_cluster) as client:
        _wall_off(client, on_dask, tmp_path / "elsewhere")  # the workers never read the client's project
        # The client in a process of its own: what it imported is what a `evallib run --scheduler` imports.
        cmd = [sys.executable, "-c", _CLIENT, str(on_dask), local_cluster.scheduler_address]
        done = subprocess.run(cmd, cwd=on_dask, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    client_run = json.loads(done.stdout.strip().splitlines()[-1])
    assert client_run["runs"] == {
        "S01": "evaluated",
        "V04": "evaluated",
        "V45": "not evaluable",
        "programme": "published",
    }
    # Published, yet the client never imported the programme page, the report or the notebook machinery (a
    # local programme run warms them all up first: executor.warm_up): it ran on a worker.
    assert client_run["imported"] == []
    mine, theirs = (p / "outputs" / "programme" for p in (local, on_dask))
    assert (theirs / "report.html").read_bytes() == (mine / "report.html").read_bytes()  # byte for byte
    record = json.loads((theirs / "run.json").read_text())
    assert record["inputs"] == json.loads((mine / "run.json").read_text())["inputs"]
    assert record["report_sha256"] == hashlib.sha256((theirs / "report.html").read_bytes()).hexdigest()
    assert (on_dask / "outputs" / "site" / "programme.html").exists()  # verified with this machine's key: linked
    assert not (on_dask / "outputs" / ".staging").exists()


class _Future:
    def __init__(self, value: Any) -> None:
        self.value, self.cancelled = value, False

    def result(self, timeout: float | None = None) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value

    def cancel(self) -> None:
        self.cancelled = True


class _Client:
    """A Dask client whose one worker returns ``value`` (or raises it) for the programme's task."""

    def __init__(self, value: Any, workers: int = 1) -> None:
        self.value, self.workers, self.futures, self.tasks = value, workers, [], []

    def scheduler_info(self) -> dict[str, Any]:
        return {"workers": {f"tcp://127.0.0.1:{i}": {} for i in range(self.workers)}}

    def submit(self, call: Any, payload: bytes, key: str, pure: bool) -> _Future:
        self.tasks.append(pickle.loads(payload))  # noqa: S301 - made by this test
        self.futures.append(_Future(self.value))
        return self.futures[-1]


def _published(tmp_path: Path) -> tuple[Path, Path, list[SiteEntry]]:
    """A project whose outputs hold one site's verified results and an old programme report."""
    root = make_project(tmp_path / "p", [])
    outputs = root / "outputs"
    results = {"site_id": "V04", "status": "evaluated", "provenance": {"fingerprint": "f" * 64}}
    (outputs / "V04").mkdir(parents=True)
    (outputs / "V04" / "results.json").write_text(json.dumps(results))
    (outputs / "programme").mkdir()
    for name in ("report.html", "report.ipynb", "run.json"):
        (outputs / "programme" / name).write_text(f"the old {name}")
    return root, outputs, [SiteEntry("V04", "evaluated", results, page=outputs / "V04" / "report.html")]


def _returned(chosen: list[SiteEntry], page: bytes, ran: bytes | None = None, inputs: str | None = None) -> Any:
    record = {"inputs": inputs or inputs_fingerprint(chosen), "report_sha256": hashlib.sha256(ran or page).hexdigest()}
    files = {"report.html": page, "report.ipynb": b"{}", "run.json": json.dumps(record).encode()}
    return SiteRun("programme", "published"), files


def _old_report_kept(outputs: Path) -> bool:
    return all((outputs / "programme" / n).read_text() == f"the old {n}" for n in ("report.html", "run.json"))


def test_a_programme_report_the_worker_tampered_with_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    root, outputs, chosen = _published(tmp_path)
    tampered = _returned(chosen, b"<html>another page</html>", ran=b"<html>the page the notebook made</html>")
    run = cluster.runner(_Client(tampered))(root, outputs, "forked", chosen, 60.0)
    assert run.status == "failed" and "does not match its run record" in run.reason
    assert _old_report_kept(outputs) and not programme_verified(outputs, chosen)
    assert json.loads((outputs / "programme" / "failure.json").read_text())["reason"] == run.reason

    other = _returned(chosen, b"<html>page</html>", inputs="0" * 64)  # made from other results than those chosen
    run = cluster.runner(_Client(other))(root, outputs, "forked", chosen, 60.0)
    assert run.status == "failed" and _old_report_kept(outputs)


def test_a_programme_notebook_that_failed_on_the_worker_keeps_the_old_report_beside_its_failure(
    tmp_path: Path,
) -> None:
    root, outputs, chosen = _published(tmp_path)
    failed = SiteRun("programme", "failed", "ValueError: boom"), {"failed.ipynb": b'{"cells": []}'}
    run = cluster.runner(_Client(failed))(root, outputs, "forked", chosen, 60.0)
    assert (run.status, run.reason) == ("failed", "ValueError: boom")
    assert _old_report_kept(outputs) and not programme_verified(outputs, chosen)
    assert json.loads((outputs / "programme" / "failure.json").read_text())["reason"] == "ValueError: boom"
    assert (outputs / "programme" / "failed.ipynb").read_bytes() == b'{"cells": []}'
    assert not any((outputs / ".staging").glob("*"))


def test_a_returned_programme_file_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outputs, chosen = _published(tmp_path)
    monkeypatch.setattr(cluster, "RETURNED_MAX_BYTES", 100)
    run = cluster.runner(_Client(_returned(chosen, b"<html>" + b"x" * 200 + b"</html>")))(
        root, outputs, "forked", chosen, 60.0
    )
    assert run.status == "failed" and "over" in run.reason and _old_report_kept(outputs)


def test_a_returned_programme_report_is_published_with_the_clients_own_signature(tmp_path: Path) -> None:
    root, outputs, chosen = _published(tmp_path)
    client = _Client(_returned(chosen, b"<html>the programme</html>"))
    run = cluster.runner(client)(root, outputs, "forked", chosen, 60.0)
    assert run.status == "published"
    assert (outputs / "programme" / "report.html").read_bytes() == b"<html>the programme</html>"
    assert programme_verified(outputs, chosen)  # the worker's record carried no signature: this one is the client's
    assert not (outputs / "programme" / "failure.json").exists()
    # what travelled: the notebook template and a copy of each chosen site's verified results, as bytes
    [(function, (files, results, timeout))] = client.tasks
    assert function is cluster.run_on_worker and timeout == 60.0
    assert results == {"V04": (outputs / "V04" / "results.json").read_bytes()}
    assert list(files) == ["notebooks/programme_summary.ipynb"]


def test_a_worker_failure_or_no_worker_runs_the_programme_on_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outputs, chosen = _published(tmp_path)
    here: list[str] = []
    monkeypatch.setattr(cluster, "run_programme", lambda *a: here.append("ran") or SiteRun("programme", "x"))
    assert cluster.runner(_Client(None, workers=0))(root, outputs, "forked", chosen, 60.0).status == "x"
    lost = _Client(RuntimeError("KilledWorker"))
    assert cluster.runner(lost)(root, outputs, "forked", chosen, 60.0).status == "x"
    assert lost.futures[0].cancelled and here == ["ran", "ran"]
    with pytest.raises(KeyboardInterrupt):  # an interrupt is not a failure: it stops the run, as locally
        cluster.runner(_Client(KeyboardInterrupt()))(root, outputs, "forked", chosen, 60.0)
    assert here == ["ran", "ran"]


def test_a_worker_that_cannot_run_it_as_a_local_run_would_refuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    with pytest.raises(EvalLibError, match="OPENBLAS_NUM_THREADS"):
        cluster.run_on_worker({}, {}, 60.0)
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, "1")
    with pytest.raises(EvalLibError, match="not a folder name"):
        cluster.run_on_worker({}, {"V04/x": b"{}"}, 60.0)
