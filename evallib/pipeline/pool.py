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

A site has a time limit, enforced here by the parent: a worker whose site runs past it (a
cell that never ends, a stopped process) is killed with every process it started, the site
fails ("timed out") and a fresh worker takes the next one. The clock starts when the worker
has finished its warm-up (importing the libraries), so the warm-up is not charged to a site.
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
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_STATE = {"critical": 0, "stop": 0, "child": 0, "retire": 0}
#: How long a worker may take to warm up before its first site's clock starts anyway (seconds).
WARM_UP_LIMIT = 600.0
_READY = ("ready", None)


def timed_out(limit: float) -> str:
    """The failure recorded for a site (or notebook) stopped at the time limit."""
    return f"timed out: stopped after {limit:g} s (the limit per site; raise it with --site-timeout SECONDS)"


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


def retire_after_task() -> None:
    """Have this worker replaced by a fresh one once its task is answered (it may hold a failed site's state)."""
    _STATE["retire"] = 1


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
    try:
        os.setpgid(0, 0)  # its own process group: a timed-out worker is killed with everything it started
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    if initializer is not None:
        initializer()
    try:
        conn.send(_READY)
    except (OSError, ValueError):
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, args = task
        _STATE["retire"] = 0
        try:
            reply: tuple[str, Any, int] = ("ok", fn(*args), 0)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which records it
            reply = ("error", f"{type(exc).__name__}: {exc}", 1)
        try:
            conn.send(reply[:2] + (reply[2] or _STATE["retire"],))
        except (OSError, ValueError):
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: Any = None
    busy: bool = field(default=False)
    ready: bool = False
    deadline: float | None = None
    stale: bool = False
    paused: float | None = None  # when ``then()`` began with this worker's site handed over and not yet seen ready


def _descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid`` (Linux, from /proc; elsewhere none: the process group covers them)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, frontier = [], [pid]
    while frontier:
        nxt = [c for p in frontier for c in parents.get(p, []) if c not in found]
        found.extend(nxt)
        frontier = nxt
    return found


def kill_tree(pid: int) -> None:
    """Kill ``pid``, its process group and every descendant (a Jupyter kernel runs in a session of its own)."""
    targets = [pid, *_descendants(pid)]  # before the kill: orphans are re-parented and lost to the walk
    for p in targets:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


class WorkerPool:
    """``n`` worker processes, each running ``initializer`` once, then one task at a time; a task running
    longer than ``timeout`` seconds (None: no limit) has its worker killed and fails.

    With ``then``, one worker starts first and ``then()`` runs in this process once that worker has its first
    task (more warm-up that need not delay it); the other workers start after ``then()``, and the first is
    replaced by a fresh one as soon as its task is done, so every later task runs in a worker forked from this
    process as ``then()`` left it. While ``then()`` runs no time limit is checked, but the first site's clock
    runs: one past its limit when ``then()`` returns is stopped at once (a finished one is seen then).
    """

    def __init__(
        self,
        n: int,
        initializer: Callable[[], None] | None = None,
        timeout: float | None = None,
        then: Callable[[], object] | None = None,
    ) -> None:
        methods = mp.get_all_start_methods()
        self._ctx = mp.get_context("fork") if "fork" in methods else mp.get_context("spawn")
        self._initializer = initializer
        self.timeout = timeout
        self._n = max(1, n)
        # ``then``: more warm-up for this process, done while one worker runs the first task (pipeline/warm.py).
        self._then = then
        self._retired: list[Any] = []
        self._workers = [self._spawn() for _ in range(1 if then is not None else self._n)]

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
                    if w.stale:  # forked before ``then``: a fresh worker takes the next task
                        self._retire(w)
                        w = self._workers[i] = self._spawn()
                    if not w.process.is_alive():  # died while idle: replace it before giving it a site
                        w.conn.close()
                        w = self._workers[i] = self._spawn()
                    job, args = pending.popleft()
                    w.job, w.busy = job, True
                    w.deadline = self._deadline(w.ready)
                    try:
                        w.conn.send((fn, args))
                    except (OSError, ValueError):
                        pass  # a dead worker: found below through its sentinel
            if self._then is not None:
                then, self._then = self._then, None
                began = time.monotonic()
                then()
                for w in self._workers:
                    w.stale = True
                    if w.busy and not w.ready:  # its ready message waits unread: its clock ran from ``began``
                        w.paused = began
                self._workers.extend(self._spawn() for _ in range(self._n - len(self._workers)))
                continue  # the new workers take tasks at once
            busy = [w for w in self._workers if w.busy]
            deadlines = [w.deadline for w in busy if w.deadline is not None]
            left = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=left))
            for i, w in enumerate(self._workers):
                if not w.busy:
                    continue
                if w.conn not in ready and w.process.sentinel not in ready:
                    if w.deadline is not None and time.monotonic() >= w.deadline:
                        job = w.job
                        self._replace(i)
                        yield job, on_error(job, timed_out(self.timeout or 0.0))
                    continue
                reply = None
                try:
                    while w.conn.poll():
                        msg = w.conn.recv()
                        if msg == _READY:  # warmed up: the site's clock starts now (or when ``then()`` began)
                            w.ready, w.deadline = True, self._deadline(True)
                            if w.paused is not None and w.deadline is not None:
                                w.deadline -= time.monotonic() - w.paused
                            w.paused = None
                            continue
                        reply = msg
                        break
                except (EOFError, OSError):
                    reply = None
                if reply is None and w.process.sentinel not in ready and w.process.is_alive():
                    continue  # only the warm-up message: the site runs on
                job = w.job
                w.job, w.busy, w.deadline = None, False, None
                if reply is not None:
                    kind, value, retire = reply
                    w.stale = w.stale or bool(retire)  # replaced before its next task (retire_after_task)
                    yield job, (value if kind == "ok" else on_error(job, value))
                    continue
                w.process.join(5)
                code = w.process.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                self._workers[i] = self._spawn()
                w.conn.close()
                yield job, on_error(job, f"the worker process running it died ({how})")

    def _retire(self, w: _Worker) -> None:
        """Let idle worker ``w`` leave (it exits on the end message; reaped by :meth:`close`)."""
        try:
            w.conn.send(None)
        except (OSError, ValueError):
            pass
        w.conn.close()
        self._retired.append(w.process)

    def _deadline(self, ready: bool) -> float | None:
        if self.timeout is None:
            return None
        return time.monotonic() + self.timeout + (0.0 if ready else WARM_UP_LIMIT)

    def _replace(self, i: int) -> None:
        """Kill worker ``i`` with every process it started, and start a fresh one in its place."""
        w = self._workers[i]
        kill_tree(w.process.pid)
        w.process.join(5)
        w.conn.close()
        self._workers[i] = self._spawn()

    def close(self) -> None:
        """Let every worker finish and leave."""
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        for p in [*self._retired, *(w.process for w in self._workers)]:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
        self._retired = []

    def terminate(self, grace: float = 10.0) -> None:
        """Stop every worker now (SIGTERM: notebooks stop at once, a folder swap in progress completes)."""
        processes = [*self._retired, *(w.process for w in self._workers)]
        for p in processes:
            if p.is_alive():
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + grace
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)
        self._retired = []


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM takes the Ctrl-C path (finished sites published, no partial files, no orphan workers)."""

    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends (rebuilding the site: whole or not at all), then interrupt.

    Used for the clean-up after an interrupt too: a second Ctrl-C must not cut it.
    """
    caught: list[int] = []

    def _note(signum: int, frame: Any) -> None:
        caught.append(signum)

    try:
        old = {s: signal.signal(s, _note) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if caught:
        raise KeyboardInterrupt
