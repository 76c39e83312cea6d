"""One writer at a time: a lock on the outputs folder for ``evallib run`` and ``evallib publish``.

Two runs at once used to break each other (each cleared the other's staging folder). The lock is
the ``filelock`` library's native lock on ``outputs/.lock``: ``flock`` on Linux and macOS,
``msvcrt.locking`` on Windows, both released by the operating system when their holder exits,
however it dies, so a killed run never leaves the project locked. A second run refuses with a
message naming the holder, or waits (``--wait``).

Nothing is ever written into the lock file, and it is never followed through a link: ``filelock``
opens it with ``O_NOFOLLOW`` and without ``O_TRUNC``, and a link, folder or other non-file at that
path (a pull request can commit ``outputs/.lock`` as a symlink) is refused before it is opened,
naming the path and the fix. Who holds the lock is recorded in a separate file,
``outputs/.lock-holder``, written to a fresh temporary name and renamed (a rename replaces a link,
it never writes through one); it is read without following links and shown only when it has the
exact form this module writes, so no byte of another file is ever echoed.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from evallib.errors import EvalLibError

LOCK_NAME = ".lock"
HOLDER_NAME = ".lock-holder"
_HOLDER = re.compile(r"pid \d{1,10} since \d\d:\d\d:\d\d")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows: there the lstat check below stands alone


class Busy(EvalLibError):
    """Another evallib run or publish holds the outputs folder."""


def check_writable(outputs: Path) -> None:
    """Raise :class:`EvalLibError` with a clear message when ``outputs`` cannot be created or written."""
    try:
        outputs.mkdir(parents=True, exist_ok=True)
        probe = outputs / f".write-test-{os.getpid()}"
        # O_EXCL | O_NOFOLLOW: a planted link at the probe's name is never written through.
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise EvalLibError(
            f"the outputs folder {outputs.name}/ cannot be written ({exc.strerror or type(exc).__name__}); "
            "check its permissions and free space, or choose another with --outputs"
        ) from None


def _refuse_non_file(outputs: Path, name: str) -> None:
    """Raise when ``outputs/name`` exists and is not a plain file (a link, a folder, a device, a pipe)."""
    try:
        st = os.lstat(outputs / name)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise EvalLibError(
            f"{outputs.name}/{name} cannot be checked ({exc.strerror or type(exc).__name__}); "
            "check the folder's permissions"
        ) from None
    if stat.S_ISREG(st.st_mode):
        return
    what = (
        "a symbolic link"
        if stat.S_ISLNK(st.st_mode)
        else "a folder"
        if stat.S_ISDIR(st.st_mode)
        else "not a regular file"
    )
    raise EvalLibError(
        f"{outputs.name}/{name} is {what}; evallib never follows or writes through it: delete it (and "
        f"`git rm --cached {outputs.name}/{name}` if it is committed), then run again"
    )


def _holder(outputs: Path) -> str:
    """Who holds the lock, as the holder wrote it, or "another process": never bytes of another file."""
    try:
        fd = os.open(outputs / HOLDER_NAME, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return "another process"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "another process"
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    except OSError:
        return "another process"
    finally:
        os.close(fd)
    return text if _HOLDER.fullmatch(text) else "another process"


def _write_holder(outputs: Path) -> None:
    """Record this process as the holder: a fresh temporary file renamed over ``.lock-holder``."""
    tmp = outputs / f".lock-holder.{os.getpid()}.tmp"
    with suppress(FileNotFoundError):
        os.unlink(tmp)  # our own leftover (pids are reused); unlink removes a link, never its target
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        try:
            os.write(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode())
        finally:
            os.close(fd)
        os.replace(tmp, outputs / HOLDER_NAME)
    except OSError:  # the holder's name is a courtesy: the lock itself holds without it
        with suppress(OSError):
            os.unlink(tmp)


def _clear_holder(outputs: Path) -> None:
    with suppress(OSError):
        os.unlink(outputs / HOLDER_NAME)


@contextmanager
def outputs_lock(outputs: Path, *, wait: bool = False, poll: float = 0.5) -> Iterator[None]:
    """Hold the outputs folder for the duration; raise :class:`Busy` (or wait) while another process holds it.

    Raises
    ------
    Busy
        Another run or publish holds it and ``wait`` is false.
    EvalLibError
        ``outputs/.lock`` is a link, a folder or another non-file (refused, never followed), or cannot be opened.
    """
    _refuse_non_file(outputs, LOCK_NAME)
    lock = FileLock(str(outputs / LOCK_NAME), timeout=-1 if wait else 0)
    try:
        lock.acquire(poll_interval=poll)
    except Timeout:
        raise Busy(
            f"another evallib run or publish is working on {outputs.name}/ ({_holder(outputs)}); wait for it to "
            "finish, or run again with --wait to queue behind it"
        ) from None
    except OSError as exc:  # a link or folder put there after the check: O_NOFOLLOW refused it
        _refuse_non_file(outputs, LOCK_NAME)
        raise EvalLibError(
            f"{outputs.name}/{LOCK_NAME} cannot be opened ({exc.strerror or type(exc).__name__}); delete it and "
            "run again"
        ) from None
    try:
        _write_holder(outputs)
        yield
    finally:
        _clear_holder(outputs)
        lock.release()
