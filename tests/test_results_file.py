"""results.json is the site's analysis and the record of the run: the analysis knows nothing of provenance, and the
file written (:func:`results_json`) adds it, last, with the fingerprint publishing checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evallib.evaluation.record.provenance import provenance
from evallib.evaluation.record.results_file import results_json, write_results
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.protocol.params import load_params

from .conftest import ROOT

pytestmark = pytest.mark.unit


def _not_evaluated() -> SiteEvaluation:
    protocol = load_params(ROOT / "params" / "ics" / "I18.yaml")
    return SiteEvaluation(protocol=protocol, status="not evaluable", reason="follow-up overlaps COVID-19")


def test_the_analysis_carries_no_provenance_and_the_file_adds_it_last(tmp_path: Path) -> None:
    ev = _not_evaluated()
    analysis = ev.to_json_dict()
    assert "provenance" not in analysis
    written = json.loads(write_results(ev, tmp_path).read_text())
    assert written == json.loads(json.dumps(results_json(ev)))
    assert list(written) == [*analysis, "provenance"]
    assert written["provenance"] == provenance(ev.protocol) and written["provenance"]["fingerprint"]
