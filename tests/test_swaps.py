"""Swaps that cannot lose a report: a site folder, the programme and the published site are replaced so that
at every instant either the old or the new complete copy bears the name; a process killed between the two
renames of the fallback swap (simulated deterministically: the second rename ends the process) never costs
the last good report, and recovery handles every leftover a swap can make.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from evallib.pipeline import folders
from evallib.pipeline.folders import record_failure, recover
from evallib.protocol import writing
from evallib.reporting.publishing import SITE_MARKER

from .conftest import tree_digest

pytestmark = pytest.mark.unit
SITE_FILES = ("results.json", "run.json", "report.html")


def _folder(path: Path, files: tuple[str, ...], text: str) -> Path:
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text(f"{text} {name}\n")
    return path


def _killed_in(action: Callable[[], None], rename_calls_before_kill: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run ``action`` in a forked child that dies (as ``kill -9`` would: no clean-up) at a chosen rename.

    The exchange is made unavailable, so the swap takes the two-rename path."""
    monkeypatch.setattr(writing, "exchange", lambda a, b: False)
    pid = os.fork()
    if pid == 0:  # the child: count renames, die at the chosen one
        calls = [0]
        real = Path.rename

        def rename(self: Path, target: Path) -> Path:
            calls[0] += 1
            if calls[0] > rename_calls_before_kill:
                os._exit(137)
            return real(self, target)

        Path.rename = rename  # type: ignore[method-assign]
        try:
            action()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status)


def test_a_worker_killed_between_the_two_renames_never_loses_the_last_good_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = tmp_path / "outputs"
    final = _folder(outputs / "V04", SITE_FILES, "old")
    old = tree_digest(final)
    staging = _folder(outputs / ".staging" / "V04-1234abcd", SITE_FILES, "new")
    assert _killed_in(lambda: folders.publish_dir(staging, final), 1, monkeypatch) == 137
    assert not final.exists()  # killed between the renames: the old copy is under its .old name
    # The pool records the dead worker's site as failed; then the next run recovers.
    record_failure(outputs, "V04", "the worker process running it died (signal 9)")
    assert {k: v for k, v in tree_digest(final).items() if k != "failure.json"} == old
    recover(outputs)
    assert {k: v for k, v in tree_digest(final).items() if k != "failure.json"} == old
    assert (final / "failure.json").exists()  # beside the last good report, as for any failed site
    assert sorted(p.name for p in outputs.iterdir()) == ["V04"]  # no leftover


def test_recovery_restores_the_old_copy_when_the_current_folder_holds_no_report(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    old = tree_digest(_folder(outputs / ".V04.old-1234abcd", SITE_FILES, "old"))
    _folder(outputs / "V04", ("failure.json",), "a failure record written since")
    assert recover(outputs) == ["V04"]
    assert {k: v for k, v in tree_digest(outputs / "V04").items() if k != "failure.json"} == old
    assert (outputs / "V04" / "failure.json").exists()
    assert sorted(p.name for p in outputs.iterdir()) == ["V04"]


def test_recovery_keeps_a_complete_new_copy_and_drops_the_old_one(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    _folder(outputs / ".V04.old-1234abcd", SITE_FILES, "old")
    new = tree_digest(_folder(outputs / "V04", SITE_FILES, "new"))
    assert recover(outputs) == []
    assert tree_digest(outputs / "V04") == new
    assert sorted(p.name for p in outputs.iterdir()) == ["V04"]


@pytest.mark.parametrize("current", [None, ("report.html",)], ids=["no site folder", "an incomplete site folder"])
def test_recovery_restores_the_published_site(tmp_path: Path, current: tuple[str, ...] | None) -> None:
    outputs = tmp_path / "outputs"
    old = tree_digest(_folder(outputs / ".site-old-1234abcd", ("index.html", SITE_MARKER, "V04.html"), "old"))
    if current is not None:
        _folder(outputs / "site", current, "half")
    _folder(outputs / ".site-staging-99", ("index.html",), "staging")
    assert recover(outputs) == ["site"]
    assert tree_digest(outputs / "site") == old
    assert sorted(p.name for p in outputs.iterdir()) == ["site"]


def test_a_publish_killed_between_the_two_renames_leaves_the_old_site_to_recover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evallib.reporting.publishing import swap_in

    outputs = tmp_path / "outputs"
    site = _folder(outputs / "site", ("index.html", SITE_MARKER), "old")
    old = tree_digest(site)
    staging = _folder(outputs / ".site-staging-1", ("index.html",), "new")
    assert _killed_in(lambda: swap_in(staging, site), 1, monkeypatch) == 137
    assert not site.exists()
    recover(outputs)
    assert tree_digest(site) == old
    assert sorted(p.name for p in outputs.iterdir()) == ["site"]


def test_with_the_kernels_exchange_the_name_always_holds_a_complete_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = tmp_path / "probe"
    _folder(probe / "a", ("x",), "a")
    _folder(probe / "b", ("y",), "b")
    if not writing.exchange(probe / "a", probe / "b"):
        pytest.skip("this kernel or file system has no renameat2(RENAME_EXCHANGE)")
    outputs = tmp_path / "outputs"
    final = _folder(outputs / "V04", SITE_FILES, "old")
    staging = _folder(outputs / ".staging" / "V04-1234abcd", SITE_FILES, "new")
    new = tree_digest(staging)

    def no_rename(self: Path, target: Path) -> Path:
        raise AssertionError("a rename would leave the name empty for a moment")

    monkeypatch.setattr(Path, "rename", no_rename)
    # Killed right after the exchange, before the old copy is deleted: the name already holds the new copy.
    monkeypatch.setattr(writing, "remove_tree", lambda path: os._exit(137) if os.getpid() != parent else None)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            folders.publish_dir(staging, final)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 137
    assert tree_digest(final) == new
    monkeypatch.undo()
    recover(outputs)  # the old copy, left in the staging folder, goes with it
    assert tree_digest(final) == new
    assert sorted(p.name for p in outputs.iterdir()) == ["V04"]
