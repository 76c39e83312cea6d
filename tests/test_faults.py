"""Faults of the batch and of publishing: dead workers, SIGTERM, a killed batch, two runs at once, data
changed mid-run, unreadable or explored results, removed params files, drafts, pages that must not be
published. Each case checks the exit code, the message, and that the other sites' results and the last
good report are byte-identical afterwards.

Each case works on a copy of the shared published project (V04, V45, S01), so the copies start from
real published outputs without running every site again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline.cli import main as cli_main
from evallib.pipeline.lock import outputs_lock
from evallib.protocol.params import load_params
from evallib.reporting.signing import sign, site_record_fields
from evallib.reporting.words import short_effect

from .conftest import tree_digest

pytestmark = pytest.mark.e2e
SECRET = "s3cr3t-TOKEN-value-9f8e7d"


def _copy(src: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(src, root, symlinks=True)
    return root


def _inject(root: Path, code: str) -> None:
    """A cell run right after the parameters (a fault for one site, as a test hook)."""
    path = root / "notebooks" / "site_evaluation.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, path)


def _hang(root: Path, site: str, pidfile: Path, seconds: int = 120) -> None:
    _inject(
        root,
        f"import os, time\nif site_id == {site!r}:\n"
        f"    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n    time.sleep({seconds})",
    )


def _start(root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "evallib", *args]
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.time() < deadline, f"{path.name} never appeared"
        time.sleep(0.2)


def _children(pid: int) -> set[int]:
    """Every living descendant of ``pid`` (from /proc)."""
    found, frontier = set(), {pid}
    while frontier:
        nxt = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in frontier and fields[0] != "Z":
                nxt.add(int(stat.parent.name))
        frontier = nxt - found
        found |= nxt
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pids: set[int] | list[int], timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while any(_alive(p) for p in pids):
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def _site(root: Path, sid: str) -> dict[str, bytes]:
    return {k: v for k, v in tree_digest(root / "outputs" / sid).items() if k in ("results.json", "report.html")}


def _leftovers(root: Path) -> list[Path]:
    out = root / "outputs"
    return [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".staging" in p.parts or ".old-" in p.name]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_dead_worker_fails_only_its_own_site(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    before = {s: _site(root, s) for s in ("S01", "V04", "V45")}
    pidfile = tmp_path / "pids"
    _hang(root, "S01", pidfile)
    proc = _start(root, "run", "--jobs", "2", "--no-progress")
    _wait_for(pidfile)
    worker = int(pidfile.read_text())  # the worker runs the notebook in its own process (pipeline/in_worker.py)
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "the worker process running it died (signal 9)" in out
    failure = json.loads((root / "outputs" / "S01" / "failure.json").read_text())
    assert "died (signal 9)" in failure["reason"]
    assert _site(root, "S01") == before["S01"]  # the last good report is untouched
    for sid in ("V04", "V45"):  # the batch went on: they ran again (new notebook) to identical results
        assert _site(root, sid)["results.json"] == before[sid]["results.json"]
    index = (root / "outputs" / "site" / "index.html").read_text()
    assert "last run failed (previous report shown)" in index and "href='V04.html'" in index
    assert _gone([worker])
    assert _leftovers(root) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_sigterm_takes_the_ctrl_c_path(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    last_good = _site(root, "V45")
    pidfile = tmp_path / "pids"
    _hang(root, "V45", pidfile)  # V45 runs last (params order); S01 and V04 finish first
    proc = _start(root, "run", "--jobs", "1", "--no-progress")
    _wait_for(pidfile)
    processes = _children(proc.pid)
    assert processes
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _gone(processes)  # no orphan keeps publishing
    assert _site(root, "V45") == last_good
    index = (root / "outputs" / "site" / "index.html").read_text()
    for sid in ("S01", "V04"):  # finished before the signal: published
        record = json.loads((root / "outputs" / sid / "run.json").read_text())
        assert record["finished_at"] and (root / "outputs" / "site" / f"{sid}.html").exists()
        assert f"href='{sid}.html'" in index
    assert _leftovers(root) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_killed_batch_takes_its_workers_with_it(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    pidfile = tmp_path / "pids"
    _hang(root, "S01", pidfile)
    proc = _start(root, "run", "--jobs", "2", "--no-progress")
    _wait_for(pidfile)
    processes = _children(proc.pid)
    proc.kill()
    proc.communicate(timeout=60)
    assert _gone(processes)  # workers and notebooks die with their parent
    (root / "notebooks" / "site_evaluation.ipynb").write_bytes(
        (published_project / "notebooks" / "site_evaluation.ipynb").read_bytes()
    )
    monkeypatch.chdir(root)
    assert cli_main(["run", "--no-progress"]) == 0, capsys.readouterr().err  # the lock died with it too
    assert _leftovers(root) == []


def test_a_second_run_refuses_while_one_holds_the_outputs(
    published_project: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = published_project
    monkeypatch.chdir(root)
    before = tree_digest(root / "outputs")
    with outputs_lock(root / "outputs"):
        assert cli_main(["run", "--force", "--no-progress"]) == 2
        assert cli_main(["publish"]) == 2
    err = capsys.readouterr().err
    assert err.count("another evallib run or publish is working on outputs/ (pid") == 2 and "--wait" in err
    assert tree_digest(root / "outputs") == before


def test_two_concurrent_runs(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    pidfile = tmp_path / "pids"
    # Long enough for the second command to start and check its data on a loaded machine (6 s raced it).
    _hang(root, "V45", pidfile, seconds=20)
    first = _start(root, "run", "--no-progress")
    _wait_for(pidfile)
    second = _start(root, "run", "--no-progress")
    queued = _start(root, "publish", "--wait")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2 and "another evallib run or publish is working on outputs/" in err
    assert first.wait(timeout=300) == 0
    out, err = queued.communicate(timeout=300)
    assert queued.returncode == 0, err  # waited its turn, then published
    assert _leftovers(root) == []


def test_data_changed_mid_run_is_never_published(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    last_good = _site(root, "S01")
    _inject(root, "if site_id == 'S01':\n    open('../../../data/small.csv', 'a').write('ZZ9,2012-01,50\\n')")
    monkeypatch.chdir(root)
    assert cli_main(["run", "S01", "--no-progress"]) == 1
    assert "do not match what was checked" in capsys.readouterr().out
    assert _site(root, "S01") == last_good
    assert "the data, params or code changed" in (root / "outputs" / "S01" / "failure.json").read_text()


def test_exploration_then_a_run(published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _copy(published_project, tmp_path)
    before = tree_digest(root / "outputs")
    env = {**os.environ, "EVALLIB_PROJECT_ROOT": str(root)}
    cmd = [sys.executable, "-m", "papermill", "notebooks/site_evaluation.ipynb", str(tmp_path / "x.ipynb")]
    cmd += ["-p", "site_id", "V04", "-p", "comparison_pool", "all_eligible", "--no-progress-bar"]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert tree_digest(root / "outputs") == before  # exploration touched nothing published
    explored = json.loads((root / "scratch" / "V04" / "results.json").read_text())
    assert any(d.startswith("comparison_pool") for d in explored["provenance"]["departures"])
    # An explorer copies the explored numbers over the published ones by hand:
    shutil.copy(root / "scratch" / "V04" / "results.json", root / "outputs" / "V04" / "results.json")
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 0
    index = (root / "outputs" / "site" / "index.html").read_text()
    assert "href='V04.html'" not in index and not (root / "outputs" / "site" / "V04.html").exists()
    assert cli_main(["run", "--no-progress"]) == 0  # not "unchanged": V04 runs again from its protocol
    results = json.loads((root / "outputs" / "V04" / "results.json").read_text())
    assert "departures" not in results["provenance"]
    assert results["provenance"]["params_sha256"] == load_params(root / "params" / "vanguards" / "V04.yaml").digest()
    est, ci = short_effect(results["answer"])  # the primary estimate, as the index shows it
    page = (root / "outputs" / "site" / "V04.html").read_text()
    index = (root / "outputs" / "site" / "index.html").read_text()
    row = re.search(r'<td data-label="Site" data-sort="V04">.*?</tr>', index, re.S).group(0)
    assert est and est in page and est in row and f">{ci}</td>" in row


def test_an_unreadable_results_file_never_blocks_publishing(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    pages = {s: (root / "outputs" / "site" / f"{s}.html").read_bytes() for s in ("S01", "V04")}
    f = root / "outputs" / "V45" / "results.json"
    f.write_bytes(f.read_bytes()[:40])  # truncated
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 0
    assert "V45: results.json cannot be read" in capsys.readouterr().err
    assert {s: (root / "outputs" / "site" / f"{s}.html").read_bytes() for s in ("S01", "V04")} == pages
    assert not (root / "outputs" / "site" / "V45.html").exists()


def test_a_removed_params_file_removes_its_page_and_drafts_never_show(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(published_project, tmp_path)
    page = (root / "outputs" / "site" / "V04.html").read_bytes()
    (root / "params" / "vanguards" / "V45.yaml").unlink()
    (root / "params" / "drafts").mkdir()
    (root / "params" / "other" / "S01.yaml").rename(root / "params" / "drafts" / "S01.yaml")
    monkeypatch.chdir(root)
    assert cli_main(["run", "--no-progress"]) == 0
    index = (root / "outputs" / "site" / "index.html").read_text()
    assert "V45" not in index and "S01" not in index
    pages = sorted(p.name for p in (root / "outputs" / "site").glob("*.html"))
    assert pages == ["V04.html", "data-dictionary.html", "how-to-read.html", "index.html", "programme.html"]
    assert sorted(p.name for p in (root / "outputs" / "site" / "downloads").glob("*.json")) == ["V04.json"]
    assert (
        "1 site of the programme, on its NHS data: 1 evaluated"
        in (root / "outputs" / "site" / "programme.html").read_text()
    )
    assert (root / "outputs" / "site" / "V04.html").read_bytes() == page
    assert (root / "outputs" / "S01" / "results.json").exists()  # the draft ran; it is kept, not published


def test_publish_rebuilds_the_programme_page(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    shutil.rmtree(root / "outputs" / "programme")
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 0
    assert "programme: published" in capsys.readouterr().out
    assert "href='programme.html'" in (root / "outputs" / "site" / "index.html").read_text()
    assert json.loads((root / "outputs" / "programme" / "run.json").read_text())["inputs"]


@pytest.mark.parametrize(
    ("name", "inject", "env", "message"),
    [
        ("secret in a page", None, "Northumberland Accountable Care", "environment variable SECRET_TOKEN"),
        ("unsuppressed count", "<table><tr><td class='count'>3</td></tr></table>", None, "unsuppressed count '3'"),
        ("raw traceback", "<pre>Traceback (most recent call last):</pre>", None, "a raw traceback"),
        ("machine path", f"<p>{Path.home()}/secrets/x.csv</p>", None, "an absolute path of this machine"),
    ],
)
def test_a_page_that_breaks_a_rule_is_never_published(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, name, inject, env, message
) -> None:
    root = _copy(published_project, tmp_path)
    site = tree_digest(root / "outputs" / "site")
    if inject:  # a page as a faulty report section would have made it (its run records it as made)
        report = root / "outputs" / "V04" / "report.html"
        report.write_text(report.read_text().replace("</body>", inject + "</body>"))
        record = json.loads((root / "outputs" / "V04" / "run.json").read_text())
        record["report_sha256"] = hashlib.sha256(report.read_bytes()).hexdigest()
        record["signature"] = sign(site_record_fields("V04", record))  # as this machine's run would sign it
        (root / "outputs" / "V04" / "run.json").write_text(json.dumps(record))
    if env:
        monkeypatch.setenv("SECRET_TOKEN", env)
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 2
    err = capsys.readouterr().err
    assert "publishing refused; the previous site is unchanged" in err and message in err
    assert tree_digest(root / "outputs" / "site") == site


def test_a_site_whose_protocol_changed_is_shown_stale_until_it_reruns(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    before = {s: _site(root, s) for s in ("S01", "V04", "V45")}
    params = root / "params" / "vanguards" / "V04.yaml"
    params.write_text(
        params.read_text().replace('comparison_pool: "exclude_other_vanguards"', 'comparison_pool: "all_eligible"')
    )
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 0
    assert "V04: params, data or code changed since its last run" in capsys.readouterr().err
    index = (root / "outputs" / "site" / "index.html").read_text()
    row = re.search(r'<td data-label="Site" data-sort="V04">.*?</tr>', index, re.S).group(0)
    text = re.sub(r"<[^>]+>", " ", row)
    assert "stale" in text and "%" not in text and "href" not in row  # no old number shown as current
    assert not (root / "outputs" / "site" / "V04.html").exists()
    assert {s: _site(root, s) for s in ("S01", "V04", "V45")} == before  # nothing lost: a rerun brings it back


def test_hand_edited_results_are_never_published(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    f = root / "outputs" / "V04" / "results.json"
    results = json.loads(f.read_text())
    row = next(r for r in results["results"] if r["method"] == "did_twfe")
    row["estimate"] = -0.5  # "-39.3%": the index would disagree with the page
    f.write_text(json.dumps(results, indent=2) + "\n")
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 0
    assert "V04: results.json does not match the run record" in capsys.readouterr().err
    index = (root / "outputs" / "site" / "index.html").read_text()
    assert "-39.3%" not in index and "href='V04.html'" not in index
