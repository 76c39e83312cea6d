"""What a result was made from: library version, git commit, protocol and data hashes, and the fingerprint
publishing checks (:mod:`evallib.evaluation.record.fingerprint`). Paths are project-relative: nothing names the
machine that ran it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evallib import __version__
from evallib.evaluation.record.fingerprint import (
    data_digests,
    git_commit,
    result_fingerprint,
    sha256_file,
    source_state,
)
from evallib.protocol.params import SiteProtocol
from evallib.protocol.paths import project_root
from evallib.sources.bundled import BUNDLED, bundled_data_dir

__all__ = ["data_files", "git_commit", "provenance", "sha256_file"]

#: Bundled files every analysis reads besides its data: the site registry and the ODS register.
REGISTRY_FILES = ("sites.csv", "ods_trusts_etr.csv")


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


def provenance(protocol: SiteProtocol) -> dict[str, Any]:
    """What a result was made from: library version, git commit, protocol and data hashes, fingerprint.

    No timestamp: identical inputs give a byte-identical results.json (the runner records
    when it ran in run.json). ``departures`` lists fields set differently from the site's
    params file (exploration): such results never match a published run's fingerprint.
    """
    data = data_digests(protocol)
    state = source_state()
    out: dict[str, Any] = {
        "evallib_version": __version__,
        "git_commit": state["commit"],
        "git_dirty": state["dirty"],
        "params_sha256": protocol.digest(),
        "data_source": protocol.data_source if isinstance(protocol.data_source, str) else data[0]["file"],
        "data_files": data,
        "fingerprint": result_fingerprint(protocol, data, state),
    }
    if protocol.departures:
        out["departures"] = list(protocol.departures)
    return out
