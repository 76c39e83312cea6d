"""Preflight parses each params file once and hashes each data file once per set of sites reading it: the values
Papermill gets are the values validated, and every site's fingerprint is what hashing its own data would give.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import evallib.pipeline.preflight as preflight_module
from evallib.evaluation.record.fingerprint import combine, data_digests, result_fingerprint, source_state
from evallib.pipeline.preflight import TEMPLATE, preflight, project_env
from evallib.protocol.params import SiteProtocol, find_params, load_params, read_yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
SITES = ["V01", "V04", "V06", "V10", "I01", "I03", "I05", "I06"]


def test_each_params_file_is_parsed_once_and_each_data_file_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    files = find_params(ROOT / "params", SITES)
    parsed: list[Path] = []
    hashed: list[str] = []
    real_read, real_digests = preflight_module.read_yaml, preflight_module.data_digests

    def counting_read(path: Path) -> object:
        parsed.append(path)
        return real_read(path)

    def counting_digests(protocol: SiteProtocol, root: Path) -> list[dict[str, str]]:
        hashed.append(protocol.site_id)
        return real_digests(protocol, root)

    monkeypatch.setattr(preflight_module, "read_yaml", counting_read)
    monkeypatch.setattr(preflight_module, "data_digests", counting_digests)
    jobs = preflight(files, ROOT)
    assert sorted(parsed) == sorted(files)
    assert sorted(j.site_id for j in jobs) == sorted(SITES)
    # Sites reading the same data sources (here the vanguards' and the integrated care sites') share one hashing
    sources = {tuple(repr(s.data_source) for s in load_params(f).analyses) for f in files}
    assert len(hashed) == len(sources) < len(files)


def test_jobs_carry_the_values_as_read_and_each_sites_own_fingerprint() -> None:
    files = find_params(ROOT / "params", SITES)
    jobs = {j.site_id: j for j in preflight(files, ROOT)}
    with project_env(ROOT):
        state = source_state(ROOT)
        for path in files:
            protocol = load_params(path)
            job = jobs[protocol.site_id]
            assert job.parameters == read_yaml(path)
            expected = result_fingerprint(protocol, data_digests(protocol, ROOT), state)
            assert job.result_fingerprint == expected
            assert job.fingerprint == combine({"result": expected, "notebook": fingerprint_of_template()})


def fingerprint_of_template() -> str:
    import hashlib

    return hashlib.sha256((ROOT / TEMPLATE).read_bytes()).hexdigest()
