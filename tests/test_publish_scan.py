"""The scan before publishing (issue 20): it refuses real leaked paths but not a site name holding "/tmp/", and
finds credentials in URLs (DATABASE_URL style) and secrets shown in another case."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from evallib.reporting.publishing import scan_page, secret_values

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "name",
    ["Backups in /tmp/ and more", "Leeds /tmp/nothing-here-evallib-test", "Data from /usr/ (no file)", "/tmpfiles"],
)
def test_a_site_name_with_tmp_in_it_does_not_block_publishing(name: str) -> None:
    assert scan_page("index.html", f"<td>{name}</td>") == []


def test_a_real_path_of_this_machine_is_still_refused(tmp_path: Path) -> None:
    with tempfile.NamedTemporaryFile(prefix="evallib-scan-") as fh:
        assert scan_page("x.html", f"<p>{fh.name}</p>") == ["x.html: an absolute path of this machine"]
    assert scan_page("x.html", f"<p>{Path.home()}/anything</p>") == ["x.html: an absolute path of this machine"]
    root = tmp_path / "project"
    assert scan_page("x.html", f"<p>{root}/data/x.csv</p>", root) == ["x.html: an absolute path of this machine"]


def test_credentials_in_a_url_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://evaluser:hunter2-long-pass@db.internal:5432/nhs")
    assert secret_values()["DATABASE_URL"] == "hunter2-long-pass"
    problems = scan_page("x.html", "<p>connection failed: HUNTER2-LONG-PASS</p>")
    assert problems == ["x.html: the value of the environment variable DATABASE_URL"]
    problems = scan_page("x.html", "<p>postgres://someone:whatever@host/db</p>")
    assert problems == ["x.html: a URL with a password in it (user:password@host)"]


def test_secret_values_are_matched_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("api_token", "s3cr3t-Token-Value")
    assert scan_page("x.csv", "site,S3CR3T-TOKEN-VALUE\n") == ["x.csv: the value of the environment variable api_token"]


def test_ordinary_links_are_not_credentials() -> None:
    html = "<a href='https://www.england.nhs.uk/new-care-models/'>NHS</a> <svg xmlns='http://www.w3.org/2000/svg'/>"
    assert scan_page("x.html", html) == []


def test_a_page_of_long_figures_is_scanned_without_backtracking() -> None:
    """Inline figures are long runs of base64 letters without a '/' (a report's SVG figures run to 90,000):
    a pattern that backtracks over them took minutes a page and stalled publishing."""
    blob = "PD94bWwgdmVyc2lvbj0iMS4wIiBlbmNvZGluZz0idXRmLTgi" * 2_000  # 96,000 characters
    assert scan_page("report.html", f"<img src='data:image/svg+xml;base64,{blob}'>") == []
