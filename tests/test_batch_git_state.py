"""A local batch reads the checkout's git state (commit, uncommitted changes) once, in its own process, for every
notebook's provenance: the code that runs is the code imported at the start, and no notebook runs git itself."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from evallib.evaluation.record import fingerprint
from evallib.pipeline import executor

from .conftest import make_project


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.e2e
@pytest.mark.skipif(not executor.available(), reason="the forked executor needs fork")
def test_a_batch_reads_the_git_state_once_for_every_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evallib.pipeline.batch import run_batch

    root = make_project(tmp_path / "p", ["V42", "V45", "V46"], programme=False)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "sites")
    head = _git(root, "rev-parse", "HEAD").strip()
    log = tmp_path / "git.log"
    real = fingerprint._git

    def logged(args: list[str], where: Path) -> subprocess.CompletedProcess[str] | None:
        with open(log, "a", encoding="utf-8") as f:  # appended by whichever process runs git
            f.write(f"{os.getpid()} {args[0]}\n")
        return real(args, where)

    monkeypatch.setattr(fingerprint, "_git", logged)
    for var in ("EVALLIB_GIT_COMMIT", fingerprint.DIRTY_ENV):
        monkeypatch.delenv(var, raising=False)
    (root / "params" / "vanguards" / "V45.yaml").write_text(
        (root / "params" / "vanguards" / "V45.yaml").read_text() + "\n# an uncommitted change\n"
    )
    result = run_batch(None, root=root, progress=False, jobs=2, executor="forked")
    assert result.exit_code == 0, result.runs
    for site in ("V42", "V45", "V46"):
        prov = json.loads((root / "outputs" / site / "results.json").read_text())["provenance"]
        assert prov["git_commit"] == head and prov["git_dirty"] is True
    calls = log.read_text(encoding="utf-8").split("\n")[:-1]
    assert calls and {c.split()[0] for c in calls} == {str(os.getpid())}  # in the batch's own process only
