"""Provenance that cannot be forged from inside the repository (issue 20).

A pull request can add ``outputs/V04/{results.json,run.json,report.html}`` with a fabricated effect and every
plain SHA-256 recomputed (the fingerprint is made from public inputs, so it can be recomputed too). Such a site
must be neither skipped as "unchanged since the last run" nor published: run records are signed with a key of
this machine kept outside the project, and folders git tracks under ``outputs/`` are refused. The git commit
and uncommitted changes are part of the fingerprint, so a new commit reruns a site instead of keeping the
older commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from evallib.errors import EvalLibError
from evallib.pipeline.cli import main as cli_main
from evallib.pipeline.preflight import preflight, unchanged_since_last_run
from evallib.protocol.params import find_params
from evallib.reporting.publishing import collect_sites, programme_verified, verified_fingerprint
from evallib.reporting.signing import KEY_ENV, publish_key, sign, site_record_fields

pytestmark = pytest.mark.e2e

FAKE = math.log(0.67)  # "-33.0%"


def _copy(src: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(src, root, symlinks=True)
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _forge(folder: Path) -> None:
    """What a pull request would add: a confirmed -33% effect, the page saying so, every hash recomputed and
    the record signed with the forger's own key (another machine's)."""
    results = json.loads((folder / "results.json").read_text())
    answer = results["answer"]
    answer.update(
        estimate=FAKE,
        ci_low=FAKE - 0.05,
        ci_high=FAKE + 0.05,
        p_value=0.001,
        conclusion="decrease",
        direction="hoped for",
        robustness_verdict="confirmed",
    )
    for row in results["results"]:
        if row["method"] == answer["method"] and row["term"] == answer["term"]:
            row.update(estimate=FAKE, ci_low=FAKE - 0.05, ci_high=FAKE + 0.05, p_value=0.001)
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    page = folder / "report.html"
    page.write_text(page.read_text().replace("</body>", "<p>Confirmed: a 33.0% fall in admissions.</p></body>"))
    record = json.loads((folder / "run.json").read_text())
    record["results_sha256"], record["report_sha256"] = _sha(folder / "results.json"), _sha(page)
    record["signature"] = sign(site_record_fields(folder.name, record), key=b"another machine's key".ljust(32))
    (folder / "run.json").write_text(json.dumps(record, indent=2))


def _v04_job(root: Path):  # noqa: ANN202 - a SiteJob
    return preflight(find_params(root / "params", ["V04"]), root)[0]


def test_a_forged_site_from_a_pull_request_is_neither_skipped_nor_published(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    outputs = root / "outputs"
    job = _v04_job(root)
    assert unchanged_since_last_run(job, outputs) is not None  # the genuine run is skipped as unchanged
    _forge(outputs / "V04")
    assert verified_fingerprint(outputs / "V04") is None
    assert unchanged_since_last_run(job, outputs) is None  # runs again instead of keeping the forgery
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 0
    err = capsys.readouterr().err
    assert "V04: results.json does not match the run record" in err
    site = outputs / "site"
    index = (site / "index.html").read_text()
    assert "-33.0%" not in index and "href='V04.html'" not in index
    assert not (site / "V04.html").exists() and not (site / "downloads" / "V04.json").exists()
    for name in ("results.csv", "sites.csv"):
        assert "V04" not in (site / "downloads" / name).read_text()


def test_a_forged_record_without_a_signature_or_with_a_copied_one_never_verifies(
    published_project: Path, tmp_path: Path
) -> None:
    root = _copy(published_project, tmp_path)
    v04 = root / "outputs" / "V04"
    genuine = json.loads((v04 / "run.json").read_text())["signature"]
    _forge(v04)
    record = json.loads((v04 / "run.json").read_text())
    for signature in (None, genuine):  # dropped, or copied from the genuine record beside it
        record["signature"] = signature
        (v04 / "run.json").write_text(json.dumps(record))
        assert verified_fingerprint(v04) is None


def test_a_forged_programme_page_is_not_linked(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    outputs = root / "outputs"
    entries, _ = collect_sites(outputs)
    chosen = [e for e in entries if e.page is not None]
    assert programme_verified(outputs, chosen)
    page = outputs / "programme" / "report.html"
    page.write_text(page.read_text().replace("</body>", "<p>Every vanguard cut admissions by a third.</p></body>"))
    record = json.loads((outputs / "programme" / "run.json").read_text())
    record["report_sha256"] = _sha(page)
    (outputs / "programme" / "run.json").write_text(json.dumps(record))
    assert not programme_verified(outputs, chosen)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_outputs_that_git_tracks_are_refused_even_when_genuine(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    outputs = root / "outputs"
    (outputs / "README.md").write_text("What this folder holds.\n")
    _git(root, "init", "-q")
    _git(root, "add", "-f", "outputs/README.md", "outputs/V04")  # as a pull request would force-add them
    _git(root, "commit", "-qm", "add outputs")
    assert verified_fingerprint(outputs / "V04") is None
    assert verified_fingerprint(outputs / "V45") is not None  # untracked, signed here: still verified
    entries, problems = collect_sites(outputs)
    assert next(e for e in entries if e.site_id == "V04").page is None
    assert any(p.startswith("V04: outputs/V04/ holds files that git tracks") for p in problems)
    assert not any(p.startswith("V45") for p in problems)  # tracking outputs/README.md is fine


def test_a_new_commit_or_uncommitted_edit_reruns_a_site(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    outputs = root / "outputs"
    before = _v04_job(root)
    assert unchanged_since_last_run(before, outputs) is not None
    _git(root, "init", "-q")
    _git(root, "add", "params", "notebooks")
    _git(root, "commit", "-qm", "first")
    first = _v04_job(root)
    assert first.result_fingerprint != before.result_fingerprint
    assert unchanged_since_last_run(first, outputs) is None  # never keeps results made from another commit
    (root / "notebooks" / "NOTE.md").write_text("x\n")
    _git(root, "add", "notebooks/NOTE.md")
    _git(root, "commit", "-qm", "second")
    second = _v04_job(root)
    assert second.result_fingerprint != first.result_fingerprint
    (root / "notebooks" / "NOTE.md").write_text("an uncommitted edit\n")
    dirty = _v04_job(root)
    assert dirty.result_fingerprint != second.result_fingerprint  # not published under HEAD's commit


def test_the_key_lives_outside_the_project_private_and_is_never_followed_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "params").mkdir(parents=True)
    (project / "notebooks").mkdir()
    monkeypatch.chdir(project)
    key_file = tmp_path / "config" / "evallib" / "publish.key"
    monkeypatch.setenv(KEY_ENV, str(key_file))
    key = publish_key(project)
    assert len(key) == 32 and key_file.stat().st_mode & 0o777 == 0o600
    assert publish_key(project) == key  # created once, then reused
    monkeypatch.setenv(KEY_ENV, str(project / "publish.key"))
    with pytest.raises(EvalLibError, match="inside the project"):
        publish_key(project)
    link = tmp_path / "link.key"
    link.symlink_to(key_file)
    monkeypatch.setenv(KEY_ENV, str(link))
    with pytest.raises(EvalLibError, match="it is a link, never followed"):
        publish_key(project)
    assert os.environ[KEY_ENV] == str(link)


def test_publish_without_a_usable_key_says_why_and_changes_nothing(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    site = sorted((root / "outputs" / "site").rglob("*"))
    (tmp_path / "not-a-folder").write_text("x")
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "not-a-folder" / "publish.key"))
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 2
    err = capsys.readouterr().err
    assert "the publishing key" in err and "cannot be read (Not a directory)" in err and KEY_ENV in err
    assert "Traceback" not in err
    assert sorted((root / "outputs" / "site").rglob("*")) == site
