"""The folders of ``outputs/``: swapping a site's (or the programme's) folder into place, undoing swaps a kill
cut short, failure records, and the check that no link stands where a run or publish will write.

A folder is exchanged atomically where the kernel can (:func:`evallib.protocol.writing.swap_in_dir`), so a
complete copy always bears its name; elsewhere two renames, which :func:`recover` undoes: the ``.old`` copy goes
back whenever the current folder holds no complete report. A failure record goes beside the last good report,
never into an empty folder a cut swap left, and never through a link.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from evallib.pipeline.pool import critical
from evallib.protocol import writing
from evallib.protocol.writing import make_dir, read_file, remove_tree
from evallib.reporting.publishing import SITE_MARKER

#: The failure records kept beside a site's last good report.
FAILURE_FILES = ("failure.json", "failed.ipynb")
#: What a complete copy of each kind of folder holds (a site's: its results and run record).
_COMPLETE = {"site": ("index.html", SITE_MARKER), "programme": ("run.json", "report.html")}
_SITE_FILES = ("results.json", "run.json")
#: Every file evallib writes in a site's (or the programme's) folder.
_WRITTEN = ("results.json", "run.json", "report.html", "report.ipynb", *FAILURE_FILES)


def publish_dir(staging: Path, final: Path) -> None:
    """Replace ``final`` with ``staging`` so that a complete copy (old or new) always bears the name.

    An atomic exchange where the kernel has one; else two renames, which a SIGTERM waits for and
    which :func:`recover` undoes when a kill cuts them. A link at ``final`` is refused.
    """
    with critical():
        writing.swap_in_dir(staging, final, f".{final.name}.old-{uuid.uuid4().hex[:8]}")


def _complete(final: Path, name: str) -> bool:
    """Whether the folder ``final`` holds a complete copy (never looking through a link)."""
    if not writing.check_dir(final):
        return False
    return all(writing.check_file(final / f) for f in _COMPLETE.get(name, _SITE_FILES))


def _restore(outputs: Path, name: str) -> bool:
    """Put back the old copy of ``outputs/<name>`` when a cut swap left the name without a complete copy."""
    restored = False
    for old in sorted(outputs.glob(f".{name}.old-*")) + (sorted(outputs.glob(".site-old-*")) if name == "site" else []):
        final = outputs / name
        restored |= writing.restore_old(old, final, _complete(final, name), keep=FAILURE_FILES)
    return restored


def recover(outputs: Path) -> list[str]:
    """Undo swaps cut short by a killed run, and drop its staging folders (the caller holds the lock).

    Every leftover a swap can make is handled: ``.<site>.old-*`` (and ``.programme.old-*``) and
    ``.site-old-*`` go back whenever the current folder holds no complete copy (a failure record
    written since moves into the restored copy), else they are deleted; ``.staging/`` and
    ``.site-staging-*`` are removed. A link at any of these names is refused, never followed.
    """
    writing.check_dir(outputs)
    remove_tree(outputs / ".staging")
    for tmp in sorted(outputs.glob(".site-staging-*")):
        remove_tree(tmp)
    names = {"site"} if any(outputs.glob(".site-old-*")) else set()
    names |= {old.name[1:].rsplit(".old-", 1)[0] for old in outputs.glob(".*.old-*")}
    names = {n for n in names if n and not n.startswith(".")}  # only names a swap of evallib's can leave
    return [name for name in sorted(names) if _restore(outputs, name)]


def record_failure(
    outputs: Path, site_id: str, reason: str, params_file: str = "", notebook: Path | None = None
) -> None:
    """``failure.json`` (and ``failed.ipynb``) beside the site's last good report, each written whole.

    A swap of this site cut short (a worker killed between its renames) is undone first, so the
    record goes beside the old report rather than into an empty folder. ``outputs/<site>`` must be
    a real folder: a link there is refused, never written through.
    """
    final = outputs / site_id
    with critical():
        _restore(outputs, site_id)
        make_dir(final, outputs)
        if notebook is not None and writing.check_file(notebook):
            writing.write_atomic(final / "failed.ipynb", read_file(notebook))
        record = {"site_id": site_id, "status": "failed", "reason": reason, "params_file": params_file}
        writing.write_atomic(final / "failure.json", json.dumps(record, indent=2) + "\n")


def check_outputs(outputs: Path, site_ids: list[str]) -> None:
    """Refuse, before anything is written, a link or foreign object where a run or publish will write.

    Checks ``outputs/`` itself, ``.staging``, ``site``, ``run-summary.json``, the folders of
    ``site_ids`` and of the programme, and the files evallib writes in each (never following a link,
    never naming its target).

    Raises
    ------
    UnsafePath
        Naming the path and the fix.
    """
    writing.check_dir(outputs)
    for name in (".staging", "site"):
        writing.check_dir(outputs / name)
    writing.check_file(outputs / "run-summary.json")
    for sid in [*site_ids, "programme"]:
        if writing.check_dir(outputs / sid):
            for name in _WRITTEN:
                writing.check_file(outputs / sid / name)
