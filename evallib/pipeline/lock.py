"""One writer at a time: a lock on the outputs folder for ``evallib run`` and ``evallib publish``.

Two runs at once used to break each other (each cleared the other's staging folder).
The lock is an advisory ``flock`` on ``outputs/.lock``: the kernel releases it when
its holder exits, however it dies, so a killed run never leaves the project locked.
A second run refuses with a message naming the holder, or waits (``--wait``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evallib.errors import EvalLibError

LOCK_NAME = ".lock"


class Busy(EvalLibError):
    """Another evallib run or publish holds the outputs folder."""


def check_writable(outputs: Path) -> None:
    """Raise :class:`EvalLibError` with a clear message when ``outputs`` cannot be created or written."""
    try:
        outputs.mkdir(parents=True, exist_ok=True)
        probe = outputs / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise EvalLibError(
            f"the outputs folder {outputs.name}/ cannot be written ({exc.strerror or type(exc).__name__}); "
            "check its permissions and free space, or choose another with --outputs"
        ) from None


@contextmanager
def outputs_lock(outputs: Path, *, wait: bool = False, poll: float = 0.5) -> Iterator[None]:
    """Hold the outputs folder for the duration; raise :class:`Busy` (or wait) while another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock (documented)
        yield
        return
    path = outputs / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    holder = os.pread(fd, 200, 0).decode("ascii", "replace").strip() or "another process"
                    raise Busy(
                        f"another evallib run or publish is working on {outputs.name}/ ({holder}); wait for it to "
                        "finish, or run again with --wait to queue behind it"
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
