"""The published site in headless Chromium: no console errors, working links, visible plots; a screenshot is saved.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped with a reason where it is absent.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image

from evallib.pipeline.batch import run_batch

from .test_runner import _project

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
]


def _load(page: Path, screenshot: Path, height: int = 3000) -> list[str]:
    """Open ``page``, save a screenshot, return the console messages Chromium logged."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size=1200,{height}",
                f"--screenshot={screenshot}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_site_loads_in_chromium(tmp_path: Path) -> None:
    root = _project(tmp_path, ["V04", "V45"], programme=True)
    assert run_batch(None, root=root, progress=False).exit_code == 0
    site = root / "outputs" / "site"
    shots = root / "outputs" / "screenshots"
    shots.mkdir()
    for name in ("index.html", "V04.html", "programme.html"):
        page = site / name
        console = _load(page, shots / f"{page.stem}.png")
        assert console == [], f"{name}: console messages {console}"
        shot = Image.open(shots / f"{page.stem}.png").convert("L")
        assert shot.getextrema()[0] < 100  # something dark was drawn (text, plots): not a blank page
        html = page.read_text()
        for href in re.findall(r"href=['\"]([^'\"#]+)['\"]", html):
            target = urlparse(href)
            if target.scheme in ("http", "https", "mailto"):
                continue
            assert (page.parent / unquote(target.path)).is_file(), f"{name}: broken link {href}"
        for data in re.findall(r"src=\"data:image/png;base64,([^\"]+)\"", html):
            img = Image.open(io.BytesIO(base64.b64decode(data)))
            assert img.size[0] > 200 and img.size[1] > 100
            assert img.convert("L").getextrema()[0] < 128  # the plot has ink on it
    assert "report" in (site / "index.html").read_text()
    # Keep the screenshot where CI can pick it up.
    keep = Path(tempfile.gettempdir()) / "evallib-screenshots"
    shutil.copytree(shots, keep, dirs_exist_ok=True)
