"""Printing board papers over Chromium's DevTools pipe (``reporting/pdf.py``): bounded waits, one-line failures
without paths, no browser process left behind (after a hang, a crash, or the printing process killed), page
scripts off, and a PDF never written through a link.

The failure paths use stand-in browsers (shell scripts) and run everywhere; the rest need Debian's ``chromium``
(``.ci/run`` installs it) and are skipped without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from evallib.reporting import pdf

needs_chromium = pytest.mark.skipif(pdf.unavailable() is not None, reason=f"no Chromium here: {pdf.unavailable()}")
PAGE = "<!DOCTYPE html><html><body><h1>Board paper</h1><p>An answer in words.</p></body></html>"


def _stand_in(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-chromium"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\n{body}\n")
    script.chmod(0o755)
    return script


def _pdf_text(path: Path) -> str:
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 is a test extra")
    doc = pdfium.PdfDocument(str(path))
    try:
        return " ".join(" ".join(doc[i].get_textpage().get_text_range().split()) for i in range(len(doc)))
    finally:
        doc.close()


def test_a_browser_that_never_answers_is_given_up_at_the_time_limit_and_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, "exec sleep 600")))
    monkeypatch.setattr(pdf, "TIMEOUT_S", 1)
    out = tmp_path / "V04.pdf"
    with pytest.raises(RuntimeError) as failed:
        pdf.print_pdfs([(PAGE, out)])
    message = str(failed.value)
    assert message.startswith("Chromium failed:") and "took more than 1 s" in message
    assert "\n" not in message and str(tmp_path) not in message
    assert not _alive(int((tmp_path / "pid").read_text()))  # the hung browser's process group was killed
    assert not out.exists()


def test_a_browser_that_exits_at_once_fails_in_one_line_without_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(_stand_in(tmp_path, "exit 3")))
    with pytest.raises(RuntimeError, match=r"^Chromium failed: .*exited \(status 3\)$") as failed:
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    assert str(tmp_path) not in str(failed.value)


def test_a_browser_that_cannot_be_started_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_executable = tmp_path / "chromium"
    not_executable.write_text("not a program")
    monkeypatch.setenv("EVALLIB_CHROMIUM", str(not_executable))
    with pytest.raises(RuntimeError, match=r"^Chromium failed: ") as failed:
        pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    assert "\n" not in str(failed.value) and str(tmp_path) not in str(failed.value)


def test_without_a_browser_nothing_is_printed_and_unavailable_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALLIB_CHROMIUM", "")
    assert "Chromium was not found" in (pdf.unavailable() or "")
    pdf.print_pdfs([])  # no jobs: no browser needed


@needs_chromium
def test_papers_print_to_a4_with_their_text_and_their_scripts_switched_off(tmp_path: Path) -> None:
    scripted = PAGE.replace("</body>", "<script>document.body.innerHTML = 'SCRIPT RAN';</script></body>")
    jobs = [(PAGE, tmp_path / "a.pdf"), (scripted, tmp_path / "b.pdf")]
    pdf.print_pdfs(jobs)
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 is a test extra")
    for _, out in jobs:
        doc = pdfium.PdfDocument(str(out))
        try:
            width, height = doc[0].get_size()
        finally:
            doc.close()
        assert abs(width - 595) < 2 and abs(height - 842) < 2  # A4 in points
        assert "Board paper An answer in words." in _pdf_text(out)
    assert "SCRIPT RAN" not in _pdf_text(tmp_path / "b.pdf")
    assert not list(tmp_path.glob(".*.tmp"))


@needs_chromium
def test_a_pdf_is_never_written_through_a_link_at_its_temporary_name(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    site = tmp_path / "site"
    site.mkdir()
    (site / ".V04.pdf.tmp").symlink_to(outside)
    pdf.print_pdfs([(PAGE, site / "V04.pdf")])
    assert outside.read_text() == "keep me"
    assert (site / "V04.pdf").read_bytes().startswith(b"%PDF") and not (site / "V04.pdf").is_symlink()


@needs_chromium
def test_a_long_temporary_folder_does_not_stop_the_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Chromium aborted when its socket's path, under TMPDIR, passed the 108 bytes a Unix socket address holds.
    deep = tmp_path / ("a-long-temporary-folder-name-" * 3)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    pdf.print_pdfs([(PAGE, tmp_path / "V04.pdf")])
    assert "An answer in words." in _pdf_text(tmp_path / "V04.pdf")


@needs_chromium
def test_the_browser_ends_when_the_process_printing_is_killed(tmp_path: Path) -> None:
    # The printing process is killed once its browser has printed a page; no process of the browser's session
    # (the browser, its zygote, renderers and utilities) may outlive it.
    script = (
        "import os, signal, threading, time\n"
        "from pathlib import Path\n"
        "from evallib.reporting import pdf\n"
        "out = Path(os.environ['OUT'])\n"
        "start = pdf._Browser.__init__\n"
        "def noted(self, *args):\n"
        "    start(self, *args)\n"
        "    (out / 'browser-pid').write_text(str(self.pid))\n"
        "pdf._Browser.__init__ = noted\n"
        "def die():\n"
        "    while not list(out.glob('*.pdf')):\n"
        "        time.sleep(0.05)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "threading.Thread(target=die, daemon=True).start()\n"
        "pdf.print_pdfs([('<p>page</p>', out / f'{i}.pdf') for i in range(10000)])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "OUT": str(tmp_path)}, timeout=120)
    assert done.returncode == -signal.SIGKILL
    session = int((tmp_path / "browser-pid").read_text())
    assert not _left_in_session(session, seconds=20), "Chromium outlived the process that started it"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def _in_session(session: int) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[3]) == session and _alive(int(proc.name)):
                pids.append(int(proc.name))
    return pids


def _left_in_session(session: int, seconds: float = 5) -> list[int]:
    """The live processes of ``session``, once they have had ``seconds`` to end (SIGKILL is not instant)."""
    deadline = time.monotonic() + seconds
    while (left := _in_session(session)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
