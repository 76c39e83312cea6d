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
