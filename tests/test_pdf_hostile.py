"""``reporting/pdf.py`` against a hostile or unlucky browser, machine and page.

Whatever goes wrong while printing must reach ``board_paper.make_papers`` as a one-line RuntimeError without paths
(it catches no other error: anything else would stop publishing), no process of the browser's session may be left
behind, and no page may bring a file of this machine into a PDF.

The stand-in browsers (shell or Python scripts on the DevTools pipe's fds 3 and 4) run everywhere; the rest need
Debian's ``chromium`` and are skipped without it.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evallib.reporting import pdf

from .test_pdf_chromium import _alive, _in_session, _left_in_session, _pdf_text

needs_chromium = pytest.mark.skipif(pdf.unavailable() is not None, reason=f"no Chromium here: {pdf.unavailable()}")
PAGE = "<!DOCTYPE html><html><body><h1>Board paper</h1><p>An answer in words.</p></body></html>"
# Reads the pipe until it closes, as Chromium does: a stand-in that ends with it is closed at once.
UNTIL_CLOSED = "exec cat <&3 >/dev/null"
# A stand-in that answers every command, Page.printToPDF with the result in FAKE_PRINT (JSON).
FAKE_BROWSER = """
import json, os, sys
results = {
    "Target.createTarget": {"targetId": "t"},
    "Target.attachToTarget": {"sessionId": "s"},
    "Page.getFrameTree": {"frameTree": {"frame": {"id": "f"}}},
    "Page.printToPDF": json.loads(os.environ["FAKE_PRINT"]),
}
buffer = b""
while chunk := os.read(3, 1 << 16):
    buffer += chunk
    while b"\\0" in buffer:
        raw, buffer = buffer.split(b"\\0", 1)
        message = json.loads(raw)
        if message["method"] == "Browser.close":
            sys.exit(0)
        reply = {"id": message["id"], "result": results.get(message["method"], {})}
        os.write(4, json.dumps(reply).encode() + b"\\0")
"""
A_PDF = {"data": base64.b64encode(b"%PDF-1.4 a stand-in's paper").decode()}


def _stand_in(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-chromium"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\n{body}\n")
    script.chmod(0o755)
    return script


def _fake_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: Any) -> None:
    script = tmp_path / "fake-chromium"
    script.write_text(f"#!{sys.executable}\n{FAKE_BROWSER}")
    script.chmod(0o755)
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(script))
    monkeypatch.setenv("FAKE_PRINT", __import__("json").dumps(printed))


def _one_line_without_paths(exc: BaseException, *paths: Path) -> None:
    message = str(exc)
    assert message.startswith("Chromium failed: ") and "\n" not in message
    assert not any(str(p) in message for p in paths), message


def _pages(path: Path) -> int:
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 is a test extra")
    doc = pdfium.PdfDocument(str(path))
    try:
        return len(doc)
    finally:
        doc.close()


@pytest.fixture
def noted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The browser's process id (its session's id) and its profile folder, as ``print_pdfs`` makes them."""
    seen: dict[str, Any] = {}
    start, profile = pdf._Browser.__init__, pdf._profile_folder

    def browser(self: pdf._Browser, *args: Any) -> None:
        start(self, *args)
        seen["pid"] = self.pid

    def folder() -> Any:
        made = profile()
        seen["profile"] = Path(made.name)
        return made

    monkeypatch.setattr(pdf._Browser, "__init__", browser)
    monkeypatch.setattr(pdf, "_profile_folder", folder)
    return seen


# -- a browser that answers what is no DevTools reply ------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        r"printf 'garbage\0' >&4",  # not JSON
        r"printf '\377\0' >&4",  # not UTF-8
        r"printf '[1]\0' >&4",  # JSON, not an object
        r"""printf '{"id":1,"error":"no"}\0' >&4""",  # an error that is no object
        r"""printf '{"id":1,"result":[]}\0' >&4""",  # a result that is no object
        r"""printf '{"id":1,"result":{}}\0' >&4""",  # a result without the field asked for
    ],
)
def test_a_reply_that_is_no_devtools_reply_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: str
) -> None:
    # JSONDecodeError, AttributeError and KeyError escaped print_pdfs: make_papers catches RuntimeError only.
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, f"{reply}\n{UNTIL_CLOSED}")))
    monkeypatch.setattr(pdf, "TIMEOUT_S", 5)
    with pytest.raises(RuntimeError) as failed:
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    _one_line_without_paths(failed.value, tmp_path)
    assert not (tmp_path / "V04.pdf").exists()


def test_a_browser_that_echoes_its_commands_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An EVALLIB_CHROMIUM that execs something else: each command comes back as its own "reply" (KeyError before).
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, "exec cat <&3 >&4")))
    monkeypatch.setattr(pdf, "TIMEOUT_S", 5)
    with pytest.raises(RuntimeError) as failed:
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    _one_line_without_paths(failed.value, tmp_path)


def test_an_error_message_with_line_breaks_stays_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = r"""printf '{"id":1,"error":{"message":"bad\\n\\nthings"}}\0' >&4"""
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, f"{reply}\n{UNTIL_CLOSED}")))
    with pytest.raises(RuntimeError, match=r"^Chromium failed: Target.createTarget: bad things$"):
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])


@pytest.mark.parametrize(
    "printed",
    [{}, {"data": 5}, {"data": "%%%"}, {"data": ""}, {"data": base64.b64encode(b"<html>not a PDF").decode()}],
    ids=["no data", "a number", "not base64", "empty", "not a PDF"],
)
def test_a_printed_reply_that_is_no_pdf_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: dict[str, Any]
) -> None:
    _fake_browser(tmp_path, monkeypatch, printed)
    with pytest.raises(RuntimeError) as failed:
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    _one_line_without_paths(failed.value, tmp_path)
    assert not (tmp_path / "V04.pdf").exists() and not list(tmp_path.glob(".*.tmp"))


def test_a_stand_in_that_answers_well_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in above is a fair one: given a PDF, it is written.
    _fake_browser(tmp_path, monkeypatch, A_PDF)
    pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    assert (tmp_path / "V04.pdf").read_bytes().startswith(b"%PDF-1.4")


# -- a browser that never stops talking, and processes that outlive it ------------------------------------------


def test_a_browser_that_never_stops_writing_is_still_given_up_at_the_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Events without end (never the reply) kept every wait short of the deadline, so it was never reached.
    chatter = r"""yes '{"method":"Page.event"}' | tr '\n' '\0' >&4"""
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, chatter)))
    monkeypatch.setattr(pdf, "TIMEOUT_S", 1)

    def hung(*_: Any) -> None:
        raise TimeoutError("print_pdfs did not give up at its time limit")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(15)  # the guard against this test hanging (the bug it tests)
    try:
        with pytest.raises(RuntimeError, match=r"^Chromium failed: Target.createTarget took more than 1 s$"):
            pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not _left_in_session(int((tmp_path / "pid").read_text()))


def test_processes_of_the_browsers_session_that_outlive_it_are_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A browser (or a wrapper script) that exits while a process it started goes on: its group was ended only when
    # the browser itself had not exited, so the rest was left running.
    body = f"(exec 3<&- 4>&-; exec sleep 60) &\necho $! > {tmp_path / 'child'}\nexit 3"
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, body)))
    with pytest.raises(RuntimeError, match=r"^Chromium failed: it exited \(status 3\)$"):
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    child = int((tmp_path / "child").read_text())
    try:
        assert not _left_in_session(int((tmp_path / "pid").read_text()), seconds=2)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.fixture
def sigchld_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # as a parent that ignores it leaves it to us
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, previous)


@pytest.mark.usefixtures("sigchld_ignored")
def test_a_process_that_ignores_sigchld_still_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With SIGCHLD ignored (inherited across exec) children are reaped by the kernel: waitpid raised
    # ChildProcessError out of print_pdfs.
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, "exit 3")))
    with pytest.raises(RuntimeError, match=r"^Chromium failed: it exited"):
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])


@pytest.mark.usefixtures("sigchld_ignored")
def test_a_process_that_ignores_sigchld_still_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_browser(tmp_path, monkeypatch, A_PDF)
    pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    assert (tmp_path / "V04.pdf").read_bytes().startswith(b"%PDF")


# -- a PDF that cannot be written -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["folder gone", "folder is a file", "path is a folder"])
def test_a_pdf_that_cannot_be_written_fails_in_one_line_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # An OSError escaped print_pdfs, and with it make_papers (it catches RuntimeError only): publishing stopped.
    _fake_browser(tmp_path, monkeypatch, A_PDF)
    site = tmp_path / "site"
    out = site / "V04.pdf"
    if where == "folder is a file":
        site.write_text("")
    elif where == "path is a folder":
        out.mkdir(parents=True)
    with pytest.raises(RuntimeError, match=r"^Chromium failed: a PDF could not be written \(") as failed:
        pdf.print_pdfs([(PAGE, out)])
    _one_line_without_paths(failed.value, tmp_path)
    assert not list(tmp_path.rglob(".*.tmp"))


# -- the real browser -------------------------------------------------------------------------------------------


@needs_chromium
def test_ctrl_c_while_printing_leaves_no_process_and_no_profile_folder(tmp_path: Path, noted: dict[str, Any]) -> None:
    jobs = [(f"<p>page {i}</p>", tmp_path / f"{i}.pdf") for i in range(10000)]

    def interrupt() -> None:
        while not list(tmp_path.glob("*.pdf")):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            pdf.print_pdfs(jobs)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not _left_in_session(noted["pid"])
    assert not noted["profile"].exists()
    assert not list(tmp_path.glob(".*.tmp"))


@needs_chromium
def test_two_publishes_print_at_once_into_their_own_folders(tmp_path: Path) -> None:
    folders = [tmp_path / "one", tmp_path / "two"]
    errors: list[BaseException] = []

    def publish(folder: Path) -> None:
        folder.mkdir()
        try:
            pdf.print_pdfs([(PAGE.replace("words", f"words {folder.name} {i}"), folder / f"{i}.pdf") for i in range(3)])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for folder in folders:
        for i in range(3):
            assert f"An answer in words {folder.name} {i}." in _pdf_text(folder / f"{i}.pdf")


@needs_chromium
def test_pages_larger_than_the_pipe_and_pdfs_of_many_pages_print_whole(tmp_path: Path) -> None:
    # A page many times the pipe's 64 KiB, sent in parts, and replies of megabytes of base64 read in many chunks.
    text = "<p>" + "word " * 100_000 + "THE-END</p>"
    many = "".join(f'<div style="break-after: page">page {i}</div>' for i in range(300))
    figure = '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">' + "".join(
        f'<circle cx="{i % 400}" cy="{i // 400}" r="1"/>' for i in range(40_000)
    )
    jobs = [(text, tmp_path / "text.pdf"), (many, tmp_path / "many.pdf"), (figure + "</svg>", tmp_path / "svg.pdf")]
    pdf.print_pdfs(jobs)
    assert _pdf_text(tmp_path / "text.pdf").endswith("THE-END")
    assert _pages(tmp_path / "many.pdf") == 300 and _pdf_text(tmp_path / "many.pdf").endswith("page 299")
    assert (tmp_path / "svg.pdf").stat().st_size > 1 << 20 and _pages(tmp_path / "svg.pdf") == 1


@needs_chromium
def test_no_page_brings_a_file_of_this_machine_into_a_pdf(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-WORD")
    (tmp_path / "leak.css").write_text("body::after { content: 'STYLE-WORD'; }")
    (tmp_path / "leak.html").write_text("<p>FRAME-WORD</p>")
    file, css, frame = secret.as_uri(), (tmp_path / "leak.css").as_uri(), (tmp_path / "leak.html").as_uri()
    pages = [
        f'<meta http-equiv="refresh" content="0;url={file}">',
        f'<iframe src="{file}"></iframe><iframe src="{frame}"></iframe>',
        f'<object data="{file}" type="text/plain"></object><embed src="{file}" type="text/plain">',
        f'<link rel="stylesheet" href="{css}"><style>@import "{css}";</style>',
        f'<img src="{file}"><div style="background: url({file})">x</div>',
        f'<base href="{tmp_path.as_uri()}/"><iframe src="leak.html"></iframe><link rel="stylesheet" href="leak.css">',
        '<meta http-equiv="refresh" content="0;url=data:text/html,<p>DATA-WORD</p>">',
    ]
    jobs = [(f"{page}<p>page {i}</p>", tmp_path / f"{i}.pdf") for i, page in enumerate(pages)]
    pdf.print_pdfs(jobs)
    for i, (_, out) in enumerate(jobs):
        text = _pdf_text(out)
        assert f"page {i}" in text
        assert not any(word in text for word in ("SECRET", "STYLE", "FRAME", "DATA")), text


@needs_chromium
def test_a_renderer_that_crashes_while_printing_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noted: dict[str, Any]
) -> None:
    # Killed (the OOM killer's choice on a big page), the renderer never answers: the next command waited its
    # whole TIMEOUT_S (60 s) before. Chromium says so at once (Inspector.targetCrashed).
    monkeypatch.setattr(pdf, "TIMEOUT_S", 20)
    write = pdf._write_whole

    def crash_after_the_first(path: Path, data: bytes) -> None:  # between two pages: no command in flight
        write(path, data)
        renderers = []
        for pid in _in_session(noted["pid"]):
            with contextlib.suppress(OSError):
                if b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
                    renderers.append(pid)
        assert renderers
        while any(_alive(pid) for pid in renderers):
            time.sleep(0.01)

    monkeypatch.setattr(pdf, "_write_whole", crash_after_the_first)
    with pytest.raises(RuntimeError, match=r"^Chromium failed: .*crashed") as failed:
        pdf.print_pdfs([(PAGE, tmp_path / "1.pdf"), (PAGE, tmp_path / "2.pdf")])
    _one_line_without_paths(failed.value, tmp_path)
    assert not _left_in_session(noted["pid"])


def test_a_reply_that_never_ends_is_given_up_before_it_fills_the_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bytes without the NUL that ends a message were all held until the deadline: 1.4 GB in 3 s here, so tens of
    # gigabytes in the 60 s of TIMEOUT_S.
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, "exec yes >&4")))
    monkeypatch.setattr(pdf, "TIMEOUT_S", 5)
    monkeypatch.setattr(pdf, "LONGEST_REPLY", 1 << 20)
    with pytest.raises(RuntimeError, match=r"^Chromium failed: Target.createTarget: a reply of more than 1 MiB$"):
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    assert not _left_in_session(int((tmp_path / "pid").read_text()))


def test_a_temporary_folder_that_is_gone_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # TMPDIR removed under a running batch (or full): the profile folder's OSError escaped print_pdfs.
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, UNTIL_CLOSED)))
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent-tmp")  # short: used as it is
    with pytest.raises(RuntimeError, match=r"^Chromium failed: no folder for its profile \(") as failed:
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    _one_line_without_paths(failed.value, tmp_path, Path("/nonexistent-tmp"))


def test_file_descriptors_running_out_fails_in_one_line_and_leaks_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second pipe refused (EMFILE): the OSError escaped print_pdfs, and the first pipe's two fds stayed open.
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, UNTIL_CLOSED)))
    pipe, made = os.pipe, []

    def second_refused() -> tuple[int, int]:
        if made:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        made.append(pipe())
        return made[0]

    before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "pipe", second_refused)
    with pytest.raises(RuntimeError, match=r"^Chromium failed: it could not be started \(Too many open files\)$"):
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    monkeypatch.undo()
    assert set(os.listdir("/proc/self/fd")) <= before
