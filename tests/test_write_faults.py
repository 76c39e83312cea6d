"""Every fault a message: a full disk, no inodes, an immutable folder, Ctrl-C or SIGTERM during the programme
and publishing step. Each ends in one line naming the folder and the fix (exit 2; 130 for an interrupt), never a
traceback or an absolute path; nothing is half-written, staging is removed, and the published site is either
wholly rebuilt or left exactly as it was.

ENOSPC is simulated deterministically (the writer of one file raises it); a real full tmpfs, a tmpfs without
free inodes and ``chattr +i`` run where the machine allows mounting and file attributes (as root in CI).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evallib.pipeline.cli import main as cli_main

from .conftest import tree_digest

pytestmark = pytest.mark.e2e


def _copy(src: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(src, root, symlinks=True)
    return root


def _state(outputs: Path) -> dict[str, str]:
    """Every file under ``outputs`` but the lock (which records its holder)."""
    return {k: v for k, v in tree_digest(outputs).items() if k != ".lock"}


def _leftovers(outputs: Path) -> list[str]:
    return sorted(
        str(p.relative_to(outputs))
        for p in outputs.rglob("*")
        if p.name.endswith(".tmp") or "staging" in p.name or ".old-" in p.name or "-old-" in p.name
    )


def _one_clean_line(err: str, root: Path) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err and str(root) not in err and sys.prefix not in err, err[-3000:]
    return lines[0]


def test_a_full_disk_while_publishing_is_one_line_and_leaves_the_site_as_it_was(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    before = _state(root / "outputs")
    real = pd.DataFrame.to_csv

    def to_csv(self: pd.DataFrame, path: object = None, *args: object, **kwargs: object) -> object:
        if str(path).endswith("results.csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 2
    line = _one_clean_line(capsys.readouterr().err, root)
    assert line.startswith("error: cannot write outputs/: the disk is full") and "df -h" in line
    assert _state(root / "outputs") == before  # nothing half-written
    assert _leftovers(root / "outputs") == []  # staging removed


def test_a_full_disk_while_a_site_runs_fails_that_site_with_the_folder_and_the_fix(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _copy(published_project, tmp_path)
    last_good = {k: v for k, v in tree_digest(root / "outputs" / "S01").items() if k != "failure.json"}
    real = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up as the run record is written
        if ".run.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("names open files through /proc")
    monkeypatch.setattr(os, "fsync", fsync)  # the workers are forked from here: they write through it
    monkeypatch.chdir(root)
    assert cli_main(["run", "S01", "--force", "--no-progress"]) == 1
    reason = json.loads((root / "outputs" / "S01" / "failure.json").read_text())["reason"]
    assert reason.startswith("cannot write outputs/: the disk is full") and "df -h" in reason, reason
    assert {k: v for k, v in tree_digest(root / "outputs" / "S01").items() if k != "failure.json"} == last_good
    assert _leftovers(root / "outputs") == []
    assert "Traceback" not in capsys.readouterr().err


def test_ctrl_c_in_the_programme_step_still_rebuilds_the_site(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from evallib.pipeline import execute

    root = _copy(published_project, tmp_path)
    shutil.rmtree(root / "outputs" / "site")  # the site must be rebuilt: it has no page at all now
    (root / "outputs" / "programme" / "run.json").unlink()  # the programme notebook must run again

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "run_forked", interrupted)
    monkeypatch.setattr(execute, "execute_notebook", interrupted)
    monkeypatch.chdir(root)
    assert cli_main(["publish"]) == 130
    assert "interrupted" in capsys.readouterr().err
    index = (root / "outputs" / "site" / "index.html").read_text()
    assert "href='V04.html'" in index and (root / "outputs" / "site" / "V04.html").exists()
    assert "href='programme.html'" not in index  # no programme page made from other results
    assert _leftovers(root / "outputs") == [] and not (root / "outputs" / ".staging").exists()


def _hang_programme(root: Path, pidfile: Path) -> None:
    path = root / "notebooks" / "programme_summary.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)"
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, path)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_sigterm_in_the_programme_step_takes_the_sites_path(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    shutil.rmtree(root / "outputs" / "site")
    (root / "outputs" / "programme" / "run.json").unlink()
    programme_before = tree_digest(root / "outputs" / "programme")
    pidfile = tmp_path / "programme.pid"
    _hang_programme(root, pidfile)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "evallib", "publish"]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.time() < deadline and proc.poll() is None, "the programme notebook never started"
        time.sleep(0.1)
    notebook = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert (root / "outputs" / "site" / "V04.html").exists()  # the site was rebuilt from verified results
    assert tree_digest(root / "outputs" / "programme") == programme_before  # the old programme kept as it was
    assert _leftovers(root / "outputs") == [] and not (root / "outputs" / ".staging").exists()
    deadline = time.time() + 10
    while Path(f"/proc/{notebook}").exists() and "Z" not in Path(f"/proc/{notebook}/stat").read_text().split()[2]:
        assert time.time() < deadline, "the programme notebook outlived the publish"
        time.sleep(0.1)


@contextmanager
def _tmpfs(mountpoint: Path, options: str) -> Iterator[None]:
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode(errors='replace').strip()[:80]})")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def _publish(root: Path, outputs: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "evallib", "publish", "--outputs", outputs]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` but ``leave`` bytes (enough for the lock, not for the site)."""
    with open(folder / "filler", "wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        fh.truncate(fh.tell() - leave)


def _size_kib(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) // 1024


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_really_full_disk_is_one_line_and_leaves_the_site_as_it_was(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    mnt = root / "full"
    with _tmpfs(mnt, f"size={_size_kib(root / 'outputs') + 4096}k"):
        shutil.copytree(root / "outputs", mnt / "outputs")
        _fill(mnt, leave=64 * 1024)
        before = _state(mnt / "outputs")
        done = _publish(root, "full/outputs")
        assert done.returncode == 2, done.stderr[-3000:]
        line = _one_clean_line(done.stderr, root)
        assert "full/outputs/" in line and "the disk is full" in line and "df -h" in line, line
        assert _state(mnt / "outputs") == before
        assert _leftovers(mnt / "outputs") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_no_free_inodes_is_one_line_and_leaves_the_site_as_it_was(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    mnt = root / "full"
    with _tmpfs(mnt, "size=256m,nr_inodes=400"):
        shutil.copytree(root / "outputs", mnt / "outputs")
        n = 0
        try:
            while True:
                (mnt / f"f{n}").touch()
                n += 1
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        before = _state(mnt / "outputs")
        done = _publish(root, "full/outputs")
        assert done.returncode == 2, done.stderr[-3000:]
        line = _one_clean_line(done.stderr, root)
        assert "outputs/" in line and ("no free inodes" in line or "free space" in line), line
        assert _state(mnt / "outputs") == before
        assert _leftovers(mnt / "outputs") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="setting the immutable flag needs root")
def test_an_immutable_site_folder_is_one_line_and_left_as_it_was(published_project: Path, tmp_path: Path) -> None:
    root = _copy(published_project, tmp_path)
    site = root / "outputs" / "site"
    before = _state(root / "outputs")
    flagged = subprocess.run(["chattr", "+i", str(site)], capture_output=True)
    if flagged.returncode != 0:
        pytest.skip("this file system has no immutable flag")
    try:
        done = _publish(root, "outputs")
    finally:
        subprocess.run(["chattr", "-i", str(site)], capture_output=True)
    assert done.returncode == 2, done.stderr[-3000:]
    line = _one_clean_line(done.stderr, root)
    assert line.startswith("error: cannot write outputs/") and "immutable" in line and "chattr -i" in line, line
    assert _state(root / "outputs") == before
    assert _leftovers(root / "outputs") == []
