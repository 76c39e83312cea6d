"""What a result was made from, as one comparable value: the protocol, the data as read and the code.

Every ``results.json`` carries the fingerprint of the run that made it
(``provenance.fingerprint``); the batch runner computes the fingerprint a site's
published results must have (from its params file, the data it reads and this
code) and publishing refuses results, run records or pages that disagree. The data
part hashes the bytes the analysis actually read (:func:`evallib.sources.files.read_digest`),
so a data file changed between the check before a run and the notebook's read is
caught, never called "unchanged" later. The git commit and whether tracked files under
``evallib/``, ``notebooks/`` or ``params/`` have uncommitted changes are part of it too,
so a site skipped as unchanged never keeps an older commit, and uncommitted edits are
never published under HEAD's commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from evallib.errors import DataError
from evallib.protocol.params import SiteProtocol
from evallib.protocol.paths import project_root
from evallib.sources.bundled import BUNDLED, bundled_data_dir
from evallib.sources.files import display_path, read_digest, resolve_data_path

_CODE: list[str] = []
#: Set by a runner whose notebooks run outside the checkout (warm Dask workers): "1" dirty, "0" clean, "" unknown.
DIRTY_ENV = "EVALLIB_GIT_DIRTY"
_REGISTRY_FILES = ("sites.csv", "ods_trusts_etr.csv")
#: Tracked files whose uncommitted changes mark a run as made from a dirty checkout.
SOURCE_FOLDERS = ("evallib", "notebooks", "params")


def _git(args: list[str], root: Path) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(root: Path | None = None) -> str | None:
    """The project's git commit (``$EVALLIB_GIT_COMMIT`` when the runner set it); None outside git."""
    env = os.environ.get("EVALLIB_GIT_COMMIT")
    if env is not None:
        return env or None
    out = _git(["rev-parse", "HEAD"], root or project_root())
    return (out.stdout.strip() or None) if out is not None and out.returncode == 0 else None


def git_dirty(root: Path | None = None) -> bool | None:
    """Whether tracked files under :data:`SOURCE_FOLDERS` differ from the commit (None outside git;
    ``$EVALLIB_GIT_DIRTY`` when the runner set it).
    """
    env = os.environ.get(DIRTY_ENV)
    if env is not None:
        return {"1": True, "0": False}.get(env)
    out = _git(["status", "--porcelain", "--untracked-files=no", "--", *SOURCE_FOLDERS], root or project_root())
    return bool(out.stdout.strip()) if out is not None and out.returncode == 0 else None


def source_state(root: Path | None = None) -> dict[str, Any]:
    """The commit the code and params come from, and whether they have uncommitted changes."""
    return {"commit": git_commit(root), "dirty": git_dirty(root)}


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def code_digest() -> str:
    """SHA-256 of evallib's own source and report templates: a change reruns every site, even without a version
    bump.
    """
    if not _CODE:
        h = hashlib.sha256()
        package = Path(__file__).resolve().parents[2]  # evallib/ (this file is evallib/evaluation/record/)
        templates = sorted(p for p in (package / "reporting" / "templates").glob("*") if p.is_file())
        for f in [*sorted(package.rglob("*.py")), *templates]:
            h.update(f.relative_to(package).as_posix().encode())
            h.update(f.read_bytes())
        _CODE.append(h.hexdigest())
    return _CODE[0]


def data_digests(protocol: SiteProtocol, root: Path | None = None) -> list[dict[str, str]]:
    """Each file the analysis reads, by its project-relative name, with the SHA-256 of the bytes read.

    An evaluator's own file is hashed as this process read it (when it has); bundled files
    (read-only package data) and the registry as they are.
    """
    root = root or project_root()
    out: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(name: str, digest: str) -> None:
        if name not in seen:
            seen.add(name)
            out.append({"file": name, "sha256": digest})

    for spec in protocol.analyses:  # every data source the site's analyses read
        if isinstance(spec.data_source, str):
            for name in BUNDLED[spec.data_source].files:
                f = bundled_data_dir() / name
                add(name, sha256_file(f) if f.is_file() else "missing")
        else:
            try:
                real = resolve_data_path(spec.data_source.path, root)
            except DataError:  # evaluated from a panel in memory (tests, power checks): no file was read
                add(spec.data_source.path, "missing")
                continue
            add(display_path(real, root), read_digest(real) or sha256_file(real))
    for name in _REGISTRY_FILES:
        f = bundled_data_dir() / name
        add(name, sha256_file(f) if f.is_file() else "missing")
    return out


def combine(parts: dict[str, Any]) -> str:
    """One SHA-256 (hex) of ``parts`` as canonical JSON (keys sorted), so equal parts give equal digests."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def result_fingerprint(protocol: SiteProtocol, data: list[dict[str, str]], state: dict[str, Any] | None = None) -> str:
    """The fingerprint of results made from ``protocol`` (its content), ``data`` (as read), this code and the
    checkout's :func:`source_state` (computed when not given).
    """
    state = source_state() if state is None else state
    return combine({"params": protocol.digest(), "data": data, "code": code_digest(), "source": state})
