"""HTML to PDF through headless Chromium: every paper of a publish in one browser session.

Chromium is found as Debian's ``chromium`` (``apt-get install chromium``) or ``chromium-browser``, or at the
path in ``EVALLIB_CHROMIUM`` (set it empty to turn papers off); pip's ``playwright`` (the ``pdf`` extra)
drives it. ``playwright install`` is never run: it downloads a browser build of its own. Without either,
:func:`unavailable` says why in one line and no paper is made.

Each page is loaded with ``set_content`` (its base address is ``about:blank``), so no path of this machine can
reach a PDF through a resolved link; the pages have no links and embed their figures as data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Seconds one launch or one page may take before the papers are given up (publishing goes on without them).
TIMEOUT_S = 60


def chromium_path() -> str | None:
    """The Chromium to print with: ``EVALLIB_CHROMIUM`` when set (empty: none), else Debian's on ``PATH``."""
    if "EVALLIB_CHROMIUM" in os.environ:
        path = os.environ["EVALLIB_CHROMIUM"].strip()
        return path if path and Path(path).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable() -> str | None:
    """Why PDFs cannot be printed here (one line), or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'pip\'s playwright is not installed (pip install -e ".[pdf]")'
    if chromium_path() is None:
        return "headless Chromium was not found (apt-get install chromium, or set EVALLIB_CHROMIUM to its path)"
    return None


def print_pdfs(jobs: list[tuple[str, Path]]) -> None:
    """Print each ``(html, pdf_path)`` to an A4 PDF, all in one browser session.

    Raises
    ------
    RuntimeError
        When Chromium cannot be started or a page cannot be printed (the message is one line, without paths).
    """
    if not jobs:
        return
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium_path(),
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                timeout=TIMEOUT_S * 1000,
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(TIMEOUT_S * 1000)
                page.emulate_media(media="print")
                for html, out in jobs:
                    page.set_content(html, wait_until="load")
                    tmp = out.with_name(f".{out.name}.tmp")
                    page.pdf(path=str(tmp), format="A4", print_background=True, prefer_css_page_size=True)
                    tmp.replace(out)
            finally:
                browser.close()
    except Error as exc:
        first = (str(exc).strip().splitlines() or ["unknown error"])[0]
        raise RuntimeError(f"Chromium failed: {first[:160]}") from None
