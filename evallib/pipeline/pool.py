"""A pool of worker processes that survives its workers, and workers that die with their parent.

``concurrent.futures.ProcessPoolExecutor`` treats one dead worker as a broken pool:
every running and pending site is lost. Here each worker runs one site at a time
over its own pipe, so the parent always knows which site a worker held: a worker
that dies (``kill -9``, out of memory) fails only that site, is replaced, and the
batch goes on.

Workers, and the notebook processes they fork, ask the kernel to kill them when
their parent dies (``PR_SET_PDEATHSIG`` on Linux; elsewhere a thread watches the
parent), so no orphan keeps publishing after the batch is gone. A worker ignores
Ctrl-C (the batch handles it) and on SIGTERM stops its notebook at once, but
finishes a folder swap in progress first (:func:`critical`), so a stopped batch
never leaves a site half-replaced.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

_PR_SET_PDEATHSIG = 1
_STATE = {"critical": 0, "stop": 0, "child": 0}


def die_with_parent(watch: bool = True) -> None:
    """Have this process killed when its parent dies (Linux: by the kernel; elsewhere by a watching thread)."""
    parent = os.getppid()
    done = False
    if sys.platform.startswith("linux"):
        try:
            done = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
        except (OSError, AttributeError):
            done = False
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    if not done and watch:

        def _watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=_watch, daemon=True, name="evallib-parent-watch").start()


def set_child(pid: int) -> None:
    """Record the notebook process this worker forked (0 when none), so SIGTERM can stop it."""
    _STATE["child"] = pid


@contextmanager
def critical() -> Iterator[None]:
    """A section a SIGTERM must not cut (renaming a site's folder into place): the stop waits until it ends."""
    _STATE["critical"] += 1
    try:
        yield
    finally:
        _STATE["critical"] -= 1
        if _STATE["stop"] and not _STATE["critical"]:
            os._exit(128 + signal.SIGTERM)


def _on_term(signum: int, frame: Any) -> None:
    if _STATE["child"]:
        try:
            os.kill(_STATE["child"], signal.SIGKILL)  # the notebook stops at once; its staging folder is dropped
        except OSError:
            pass
    if _STATE["critical"]:
        _STATE["stop"] = 1
        return
    os._exit(128 + signum)


def _worker_main(conn: Connection, initializer: Callable[[], None] | None) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    if initializer is not None:
        initializer()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, args = task
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which records it
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: Any = None
    busy: bool = field(default=False)


class WorkerPool:
    """``n`` worker processes, each running ``initializer`` once, then one task at a time."""

    def __init__(self, n: int, initializer: Callable[[], None] | None = None) -> None:
        methods = mp.get_all_start_methods()
        self._ctx = mp.get_context("fork") if "fork" in methods else mp.get_context("spawn")
        self._initializer = initializer
        self._workers = [self._spawn() for _ in range(max(1, n))]

    def _spawn(self) -> _Worker:
        parent_end, child_end = self._ctx.Pipe()
        p = self._ctx.Process(target=_worker_main, args=(child_end, self._initializer), daemon=True)
        p.start()
        child_end.close()
        return _Worker(p, parent_end)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [w.process.pid for w in self._workers]

    def run(
        self,
        fn: Callable[..., Any],
        jobs: list[tuple[Any, tuple[Any, ...]]],
        *,
        on_error: Callable[[Any, str], Any],
    ) -> Iterator[tuple[Any, Any]]:
        """Yield ``(job, fn(*args))`` as each finishes; a task that raised or whose worker died yields
        ``(job, on_error(job, why))`` instead, and the batch goes on with a fresh worker.
        """
        pending = deque(jobs)
        while pending or any(w.busy for w in self._workers):
            for i, w in enumerate(self._workers):
                if not w.busy and pending:
                    if not w.process.is_alive():  # died while idle: replace it before giving it a site
                        w.conn.close()
                        w = self._workers[i] = self._spawn()
                    job, args = pending.popleft()
                    w.job, w.busy = job, True
                    try:
                        w.conn.send((fn, args))
                    except (OSError, ValueError):
                        pass  # a dead worker: found below through its sentinel
            busy = [w for w in self._workers if w.busy]
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for i, w in enumerate(self._workers):
                if not w.busy or (w.conn not in ready and w.process.sentinel not in ready):
                    continue
                reply = None
                try:
                    if w.conn.poll():
                        reply = w.conn.recv()
                except (EOFError, OSError):
                    reply = None
                job = w.job
                w.job, w.busy = None, False
                if reply is not None:
                    kind, value = reply
                    yield job, (value if kind == "ok" else on_error(job, value))
                    continue
                w.process.join(5)
                code = w.process.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                self._workers[i] = self._spawn()
                w.conn.close()
                yield job, on_error(job, f"the worker process running it died ({how})")

    def close(self) -> None:
        """Let every worker finish and leave."""
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.process.join(10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5)

    def terminate(self, grace: float = 10.0) -> None:
        """Stop every worker now (SIGTERM: notebooks stop at once, a folder swap in progress completes)."""
        for w in self._workers:
            if w.process.is_alive():
                try:
                    os.kill(w.process.pid, signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + grace
        for w in self._workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5)
