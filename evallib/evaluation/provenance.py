"""What a result was made from: library version, git commit, protocol and data hashes."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from evallib import __version__
from evallib.protocol.params import SiteProtocol
from evallib.protocol.paths import project_root
from evallib.sources.bundled import BUNDLED, bundled_data_dir

#: Bundled files every analysis reads besides its data: the site registry and the ODS register.
REGISTRY_FILES = ("sites.csv", "ods_trusts_etr.csv")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_files(protocol: SiteProtocol) -> list[Path]:
    """The files a protocol's analyses read (every data source, the site registry and the ODS files)."""
    files: list[Path] = []
    for spec in protocol.analyses:
        source = spec.data_source
        if isinstance(source, str):
            found = [bundled_data_dir() / f for f in BUNDLED[source].files]
        else:
            path = Path(source.path)
            found = [path if path.is_absolute() else project_root() / path]
        files.extend(f for f in found if f not in files)
    registry = [bundled_data_dir() / f for f in REGISTRY_FILES]
    return [*files, *(f for f in registry if f not in files)]


def git_commit() -> str | None:
    """The project's git commit (``$EVALLIB_GIT_COMMIT`` when the runner set it)."""
    env = os.environ.get("EVALLIB_GIT_COMMIT")
    if env is not None:
        return env or None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(protocol: SiteProtocol) -> dict[str, Any]:
    """What a result was made from: library version, git commit, protocol and data hashes.

    No timestamp: identical inputs give a byte-identical results.json (the runner records
    when it ran in run.json).
    """
    return {
        "evallib_version": __version__,
        "git_commit": git_commit(),
        "params_sha256": protocol.digest(),
        "data_source": protocol.data_source if isinstance(protocol.data_source, str) else protocol.data_source.path,
        "data_files": [{"file": f.name, "sha256": sha256_file(f)} for f in data_files(protocol) if f.is_file()],
    }
