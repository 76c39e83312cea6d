"""HTML to PDF through headless Chromium: every paper of a publish in one browser session.

Chromium is found as Debian's ``chromium`` (``apt-get install chromium``) or ``chromium-browser``, or at the
path in ``EVALLIB_CHROMIUM`` (set it empty to turn papers off). Without one, :func:`unavailable` says why in one
line and no paper is made.

Chromium is driven over its DevTools pipe (``--remote-debugging-pipe``: JSON messages, each ending in a NUL byte,
on the browser's file descriptors 3 and 4), the channel Puppeteer and Playwright use themselves. Printing needs
five of its commands, so no driver is installed: Playwright's, a Node.js process between this one and the
browser, cost 0.4 s of CPU a publish (half a single paper's cost) and a 100 MB download.

Each page is loaded with ``Page.setDocumentContent`` (its address stays ``about:blank``), so no path of this
machine can reach a PDF through a resolved link; the pages have no links and embed their figures as data, and
their scripts are switched off. Every wait is bounded by :data:`TIMEOUT_S`; the browser runs in a process group
of its own, ended with the session (or when this process dies: it exits when its pipe closes).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from evallib.protocol import writing

#: Seconds one launch or one page may take before the papers are given up (publishing goes on without them).
TIMEOUT_S = 60
#: The longest temporary folder used as it is: Chromium's socket path below it (about 70 more bytes, the profile
#: folder's name included) must stay under the 108 bytes of a Unix socket address.
_LONGEST_TMP = 32
#: The most a reply may hold (a PDF's base64 is a third larger than the PDF): a stream without the NUL that ends
#: a message would otherwise be held in memory until the deadline, gigabytes a second.
LONGEST_REPLY = 1 << 30
#: A4 in inches, as Chromium's print settings take it (the pages' own ``@page`` size wins where they set one).
A4 = (8.27, 11.7)
_FLAGS = (
    "--headless",
    "--remote-debugging-pipe",
    "--no-sandbox",  # the batch may run as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
    "--password-store=basic",
    "--use-mock-keychain",
)
# Resolves once the document set last has loaded (its embedded figures decoded), as Playwright's
# ``set_content(wait_until="load")``.
_LOADED = "new Promise(r => document.readyState === 'complete' ? r(true) : addEventListener('load', () => r(true)))"


def chromium_path() -> str | None:
    """The Chromium to print with: ``EVALLIB_CHROMIUM`` when set (empty: none), else Debian's on ``PATH``."""
    if "EVALLIB_CHROMIUM" in os.environ:
        path = os.environ["EVALLIB_CHROMIUM"].strip()
        return path if path and Path(path).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable() -> str | None:
    """Why PDFs cannot be printed here (one line), or None when they can."""
    if chromium_path() is None:
        return "headless Chromium was not found (apt-get install chromium, or set EVALLIB_CHROMIUM to its path)"
    return None


class _Browser:
    """One headless Chromium and its DevTools pipe; every call waits at most :data:`TIMEOUT_S`."""

    def __init__(self, executable: str, profile: str) -> None:
        import fcntl  # POSIX only, as posix_spawn: imported here so that the module imports everywhere

        opened: list[int] = []  # closed again, all, if the browser cannot be started (fds may run out)
        try:
            opened += os.pipe()  # the browser reads its commands on fd 3 (from opened[0])
            opened += os.pipe()  # and writes its replies on fd 4 (to opened[3])
            # Copies numbered from 10 (close-on-exec, like every fd here), so that putting them on 3 and 4 in the
            # child cannot overwrite one with the other; posix_spawn runs no Python between fork and exec.
            for fd in (opened[0], opened[3]):
                opened.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, 1, 2),
                (os.POSIX_SPAWN_DUP2, opened[4], 3),
                (os.POSIX_SPAWN_DUP2, opened[5], 4),
            ]
            argv = [executable, *_FLAGS, f"--user-data-dir={profile}", "about:blank"]
            # In a session of its own: its group (zygote, renderers, utilities) is ended as one.
            # Its temporary files (a Unix socket among them) in its own folder: a socket's path must be under
            # 108 bytes, and a long TMPDIR made Chromium abort.
            env = {**os.environ, "TMPDIR": profile}
            self.pid = os.posix_spawn(executable, argv, env, file_actions=actions, setsid=True)
        except OSError as exc:
            for fd in opened:
                os.close(fd)
            raise _failed(f"it could not be started ({exc.strerror})") from None
        self._in, self._out = opened[1], opened[2]
        for fd in (opened[0], opened[3], *opened[4:]):  # the browser's ends: its own copies are on 3 and 4
            os.close(fd)
        os.set_blocking(self._in, False)  # see call()
        self.status: int | None = None
        self.exited = False
        # What has come and not been taken, and how much of it is known to hold no NUL: a reply of megabytes
        # arrives in 64 KiB parts, and copying or searching it whole for each part cost time quadratic in it
        # (20 s of CPU for a 50 MB PDF).
        self._buffer = bytearray()
        self._scanned = 0
        self._next_id = 0

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and return its result (events and other replies are passed over)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        deadline = time.monotonic() + TIMEOUT_S
        unsent = json.dumps(message).encode() + b"\0"
        while True:
            while (end := self._buffer.find(b"\0", self._scanned)) >= 0:
                raw = self._buffer[:end]
                del self._buffer[: end + 1]
                self._scanned = 0
                try:
                    reply = json.loads(raw)
                except ValueError:  # not UTF-8 or not JSON: whatever sent it is no DevTools pipe
                    raise _failed(f"{method}: a reply that is not JSON") from None
                if not isinstance(reply, dict):
                    raise _failed(f"{method}: a reply that is not a JSON object")
                if reply.get("method") == "Inspector.targetCrashed":  # its renderer would never answer
                    raise _failed(f"{method}: the page's renderer crashed")
                if reply.get("id") != self._next_id:
                    continue
                if "error" in reply:
                    error = reply["error"]
                    raise _failed(f"{method}: {isinstance(error, dict) and error.get('message') or 'an error'}")
                result = reply.get("result", {})
                if not isinstance(result, dict):
                    raise _failed(f"{method}: a result that is not a JSON object")
                return result
            self._scanned = len(self._buffer)
            # Write what is left while reading what comes (a page larger than the pipe holds is sent in parts,
            # and a browser that stops reading or answering is given up at the deadline, not waited for).
            # The deadline is checked on every pass: a browser that never stops writing must not extend it.
            left = deadline - time.monotonic()
            readable, writable, _ = select.select([self._out], [self._in] if unsent else [], [], max(left, 0))
            if left <= 0 or not (readable or writable):
                raise _failed(f"{method} took more than {TIMEOUT_S} s")
            if writable:
                try:
                    unsent = unsent[os.write(self._in, unsent) :]
                except OSError:
                    raise _failed(self._exited()) from None
            if readable:
                chunk = os.read(self._out, 1 << 20)
                if not chunk:
                    raise _failed(self._exited())
                self._buffer += chunk
                if len(self._buffer) > LONGEST_REPLY:
                    raise _failed(f"{method}: a reply of more than {LONGEST_REPLY >> 20} MiB")

    def _exited(self) -> str:
        if not self.wait(5):
            return "it stopped answering"
        return "it exited" if self.status is None else f"it exited (status {self.status})"

    def wait(self, seconds: float) -> bool:
        """Whether the browser has exited, waiting at most ``seconds``; its status goes to :attr:`status`.

        It is not reaped here (``WNOWAIT``): until :meth:`close` reaps it, its process id, which names its
        process group, cannot be given to another process.
        """
        deadline = time.monotonic() + seconds
        while not self.exited:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped already (SIGCHLD ignored, inherited from our parent): status lost
                self.exited = True
                break
            if info is not None and info.si_pid:
                self.exited = True
                exited_normally = info.si_code == os.CLD_EXITED
                self.status = info.si_status if exited_normally else -info.si_status
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(0.02)
        return self.exited

    def close(self) -> None:
        """Ask the browser to close, then end its process group whatever it did."""
        try:
            os.write(self._in, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass  # it has gone already
        for fd in (self._in, self._out):
            os.close(fd)
        try:
            self.wait(10)
        finally:
            # Its whole group is ended whether or not it closed: processes of its group (zygote, renderers, or
            # what a wrapper script started) can outlive the browser itself. It is reaped only after.
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)


def _failed(why: str) -> RuntimeError:
    # One line whatever the browser said (an error message of its own may hold line breaks).
    return RuntimeError(" ".join(f"Chromium failed: {why}".split())[:200])


def print_pdfs(jobs: list[tuple[str, Path]]) -> None:
    """Print each ``(html, pdf_path)`` to an A4 PDF, all in one browser session.

    Each PDF is written beside its path under a temporary name and renamed into place, so a path holds a whole
    paper or none.

    Raises
    ------
    RuntimeError
        When Chromium cannot be started, answers with what is not a PDF, or a page cannot be loaded or printed
        within :data:`TIMEOUT_S`, or a PDF cannot be written (the message is one line, without paths).
    """
    if not jobs:
        return
    executable = chromium_path()
    if executable is None:
        raise _failed("it was not found")
    try:
        folder = _profile_folder()
    except OSError as exc:  # the temporary folder gone (or full): the caller catches RuntimeError only
        raise _failed(f"no folder for its profile ({exc.strerror})") from None
    with folder as profile:
        browser = _Browser(executable, profile)
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            browser.call("Inspector.enable", session=session)  # for its targetCrashed event (see call())
            browser.call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
            browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session)
            frame = browser.call("Page.getFrameTree", session=session)["frameTree"]["frame"]["id"]
            for html, out in jobs:
                browser.call("Page.setDocumentContent", {"frameId": frame, "html": html}, session)
                browser.call("Runtime.evaluate", {"expression": _LOADED, "awaitPromise": True}, session)
                printed = base64.b64decode(browser.call("Page.printToPDF", _print_settings(), session)["data"])
                if not printed.startswith(b"%PDF-"):
                    raise ValueError("not a PDF")
                _write_whole(out, printed)
        except (KeyError, TypeError, ValueError):  # a reply without the field it must have, or not a PDF
            raise _failed("a reply of an unexpected form") from None
        finally:
            browser.close()


def _profile_folder() -> tempfile.TemporaryDirectory[str]:
    """A fresh folder for the browser's profile and temporary files: in the usual temporary folder, or in
    ``/tmp`` where that one's path is too long for the Unix socket Chromium makes in it.
    """
    usual = tempfile.gettempdir()
    too_long = len(usual) > _LONGEST_TMP and os.path.isdir("/tmp") and os.access("/tmp", os.W_OK | os.X_OK)
    return tempfile.TemporaryDirectory(
        prefix="evallib-chromium-", dir="/tmp" if too_long else None, ignore_cleanup_errors=True
    )


def _print_settings() -> dict[str, Any]:
    width, height = A4
    margins = dict.fromkeys(("marginTop", "marginBottom", "marginLeft", "marginRight"), 0)
    return {
        "paperWidth": width,
        "paperHeight": height,
        **margins,
        "printBackground": True,
        "preferCSSPageSize": True,
    }


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, never through a link (:func:`writing.write_atomic`, as every
    published file); a refusal or fault is a one-line RuntimeError without paths, as the caller catches no other.
    """
    try:
        writing.write_atomic(path, data)
    except writing.UnsafePath:
        raise _failed("a PDF could not be written (its folder is gone, or a link or folder stands there)") from None
    except (OSError, writing.WriteFault) as exc:
        why = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise _failed(f"a PDF could not be written ({why})") from None
