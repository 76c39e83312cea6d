"""What a Dask worker returns passes the checks a local site's results pass before the client signs it
(``pipeline/dask_warm.py`` ``publish_returned``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from evallib.pipeline import dask_warm
from evallib.pipeline.execute import SiteRun
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import find_params

from .conftest import make_project


def _returned(job: Any, results: dict[str, Any], **record: Any) -> dict[str, bytes]:
    files = {"results.json": json.dumps(results).encode(), "report.html": b"<html></html>", "report.ipynb": b"{}"}
    run = {
        "site_id": job.site_id,
        "fingerprint": job.fingerprint,
        "result_fingerprint": job.result_fingerprint,
        "results_sha256": hashlib.sha256(files["results.json"]).hexdigest(),
        "report_sha256": hashlib.sha256(files["report.html"]).hexdigest(),
        **record,
    }
    return {**files, "run.json": json.dumps(run).encode()}


def test_a_returned_report_is_published_only_as_a_local_sites_would_be(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ["V04"], programme=False)
    [job] = preflight(find_params(root / "params", None), root)
    outputs = root / "outputs"
    outputs.mkdir()
    claimed = SiteRun("V04", "evaluated")
    provenance = {"fingerprint": job.result_fingerprint}

    departed = {"status": "evaluated", "provenance": {**provenance, "departures": ["alpha"]}}
    run = dask_warm.publish_returned(job, claimed, _returned(job, departed), outputs)
    assert run.status == "failed" and "depart from the params file" in run.reason

    other = {"status": "evaluated", "provenance": provenance}
    run = dask_warm.publish_returned(job, claimed, _returned(job, other, site_id="V05"), outputs)
    assert run.status == "failed" and "another site's report" in run.reason
    assert not (outputs / "V04" / "results.json").exists()

    # the status published is the one the results state, whatever the worker said
    honest = {"status": "not evaluable", "reason": "no comparators", "provenance": provenance}
    run = dask_warm.publish_returned(job, claimed, _returned(job, honest), outputs)
    assert (run.status, run.reason) == ("not evaluable", "no comparators")
    assert json.loads((outputs / "V04" / "results.json").read_text())["status"] == "not evaluable"


def test_an_oversized_or_malformed_returned_report_is_refused_and_the_old_one_kept(
    tmp_path: Path, monkeypatch: Any
) -> None:
    root = make_project(tmp_path / "p", ["V04"], programme=False)
    [job] = preflight(find_params(root / "params", None), root)
    outputs = root / "outputs"
    outputs.mkdir()
    claimed = SiteRun("V04", "evaluated")
    good = {"status": "evaluated", "provenance": {"fingerprint": job.result_fingerprint}}
    assert dask_warm.publish_returned(job, claimed, _returned(job, good), outputs).status == "evaluated"
    kept = (outputs / "V04" / "results.json").read_bytes()

    monkeypatch.setattr(dask_warm, "RETURNED_MAX_BYTES", 100)  # a page far larger than any page is not one
    big = _returned(job, good) | {"report.ipynb": b"{" + b" " * 200 + b"}"}
    run = dask_warm.publish_returned(job, claimed, big, outputs)
    assert run.status == "failed" and "oversized report" in run.reason
    monkeypatch.undo()

    for files in (
        _returned(job, good) | {"report.html": "<html></html>"},  # text, not bytes
        _returned(job, good) | {"run.json": b"[" * 100_000},  # nested past the parser's depth
    ):
        run = dask_warm.publish_returned(job, claimed, files, outputs)
        assert run.status == "failed" and "nothing was published" in run.reason
    assert (outputs / "V04" / "results.json").read_bytes() == kept
