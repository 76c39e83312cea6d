"""The one-writer lock on ``outputs/`` (``pipeline/lock.py``, on the ``filelock`` library): a second writer
refuses naming the holder or waits, a killed holder frees it, and the lock file is never followed through a
link, truncated, or echoed: a committed ``outputs/.lock`` symlink, a folder or a FIFO there is refused with a
one-line message naming the path and the fix (exit 2), and the target is left byte-identical.

The lock runs in other processes here (``_hold``), as a second ``evallib run`` would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evallib.errors import EvalLibError
from evallib.pipeline.cli import main as cli_main
from evallib.pipeline.lock import Busy, check_writable, outputs_lock

pytestmark = pytest.mark.unit
SECRET = "s3cr3t-TOKEN-value-in-a-private-file"
posix_links = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX symlinks")


def _hold(outputs: Path, *, seconds: float = 60.0, raw_flock_on: Path | None = None) -> subprocess.Popen:
    """Another process holding the outputs lock (or a bare flock on ``raw_flock_on``) until killed or timed out."""
    if raw_flock_on is None:
        body = f"""
            from pathlib import Path
            from evallib.pipeline.lock import outputs_lock
            with outputs_lock(Path({str(outputs)!r})):
                print("held", flush=True)
                time.sleep({seconds})
                print("releasing", flush=True)
            """
    else:
        body = f"""
            import fcntl, os
            fd = os.open({str(raw_flock_on)!r}, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            time.sleep({seconds})
            """
    code = "import time\n" + textwrap.dedent(body)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    out = tmp_path / "outputs"
    out.mkdir()
    return out


def test_a_second_writer_refuses_naming_the_holder(outputs: Path) -> None:
    holder = _hold(outputs)
    try:
        with pytest.raises(Busy, match=rf"working on outputs/ \(pid {holder.pid} since \d\d:\d\d:\d\d\).*--wait"):
            with outputs_lock(outputs):
                pass
    finally:
        _stop(holder)


def test_a_waiting_writer_gets_the_lock_when_the_holder_finishes(outputs: Path) -> None:
    holder = _hold(outputs, seconds=1.0)
    try:
        with outputs_lock(outputs, wait=True, poll=0.05):
            assert holder.stdout is not None and holder.stdout.readline().strip() == "releasing"  # it finished first
            assert (outputs / ".lock-holder").read_text().startswith(f"pid {os.getpid()} ")
    finally:
        _stop(holder)
    assert not (outputs / ".lock-holder").exists()


def test_a_killed_holder_frees_the_lock(outputs: Path) -> None:
    holder = _hold(outputs)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    with outputs_lock(outputs):  # the operating system released it with its holder
        pass


def test_the_lock_file_is_never_written_or_truncated(outputs: Path, tmp_path: Path) -> None:
    """A hard link at ``.lock`` to someone's file (or a file with content) keeps every byte."""
    private = tmp_path / "private.txt"
    private.write_text(SECRET)
    os.link(private, outputs / ".lock")
    with outputs_lock(outputs):
        pass
    assert private.read_text() == SECRET


@posix_links
def test_a_committed_lock_symlink_is_refused_never_followed_or_truncated(
    outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    private = tmp_path / "private.txt"
    private.write_text(SECRET)
    (outputs / ".lock").symlink_to(private)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["publish"]) == 2
    err = capsys.readouterr().err
    assert private.read_text() == SECRET  # not truncated
    assert err.count("\n") == 1 and "outputs/.lock is a symbolic link" in err and "delete it" in err
    assert SECRET not in err and str(tmp_path) not in err
    assert (outputs / ".lock").is_symlink() and not (outputs / ".lock-holder").exists()


@posix_links
def test_a_lock_symlink_to_a_file_another_process_holds_never_echoes_its_bytes(outputs: Path, tmp_path: Path) -> None:
    """The old "another run holds it" message printed the first bytes of the link's target."""
    private = tmp_path / "private.txt"
    private.write_text(SECRET)
    (outputs / ".lock").symlink_to(private)
    holder = _hold(outputs, raw_flock_on=private)
    try:
        with pytest.raises(EvalLibError) as info:
            with outputs_lock(outputs):
                pass
    finally:
        _stop(holder)
    assert SECRET not in str(info.value) and "symbolic link" in str(info.value)
    assert private.read_text() == SECRET


@posix_links
def test_a_holder_record_that_is_a_link_or_foreign_is_never_echoed(outputs: Path, tmp_path: Path) -> None:
    private = tmp_path / "private.txt"
    private.write_text(SECRET)
    holder = _hold(outputs)
    try:
        for plant in ("link", "content"):
            os.unlink(outputs / ".lock-holder")
            if plant == "link":
                (outputs / ".lock-holder").symlink_to(private)
            else:
                (outputs / ".lock-holder").write_text(f"pid 1 since 00:00:00 {SECRET}")
            with pytest.raises(Busy) as info:
                with outputs_lock(outputs):
                    pass
            assert "(another process)" in str(info.value) and SECRET not in str(info.value)
    finally:
        _stop(holder)
    assert private.read_text() == SECRET


def test_a_folder_at_the_lock_path_is_a_message_not_a_traceback(
    outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (outputs / ".lock").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli_main(["publish"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outputs/.lock is a folder" in err and "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_at_the_lock_path_is_refused_without_blocking(outputs: Path) -> None:
    os.mkfifo(outputs / ".lock")
    with pytest.raises(EvalLibError, match=r"outputs/\.lock is not a regular file"):
        with outputs_lock(outputs):
            pass


@posix_links
def test_the_write_probe_never_writes_through_a_planted_link(outputs: Path, tmp_path: Path) -> None:
    private = tmp_path / "private.txt"
    private.write_text(SECRET)
    (outputs / f".write-test-{os.getpid()}").symlink_to(private)
    with pytest.raises(EvalLibError, match="cannot be written"):
        check_writable(outputs)
    assert private.read_text() == SECRET
