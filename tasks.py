#!/usr/bin/env python3
"""The project's two commands, each setting up its own virtual environment.

    python3 tasks.py run [SITE ...]   evaluate every site (or the named ones) and publish outputs/site/
    python3 tasks.py test [ARGS ...]  run the whole test suite (ARGS go to pytest)

The first call creates ``.venv`` and installs evallib with its test extras at the
versions in constraints.txt; later calls reuse it and reinstall only when
pyproject.toml or constraints.txt change. Needs Python 3.11+ and pip; no conda.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".evallib-install"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_venv() -> Path:
    """Create or refresh .venv; return its python."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under whatever python3 is on PATH
        sys.exit(f"evallib needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    python = BIN / ("python.exe" if os.name == "nt" else "python")
    if not python.exists():
        print("Creating the virtual environment .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = _fingerprint()
    if not STAMP.exists() or STAMP.read_text() != want:
        print("Installing evallib and its dependencies into .venv (about a minute the first time) ...", flush=True)
        cmd = [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-c",
            "constraints.txt",
            "-e",
            ".[test]",
        ]
        subprocess.run(cmd, cwd=ROOT, check=True)
        STAMP.write_text(want)
    return python


def main(argv: list[str]) -> int:
    """Run ``run`` or ``test`` with the rest of ``argv`` in .venv; returns the exit status."""
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__)
        return 2
    python = ensure_venv()
    # One BLAS thread per process: the batch runs one process per core, and the placebo inference's many small
    # matrix products run about 30 times slower when BLAS threads compete for shared cores.
    env = {**os.environ, "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    if argv[0] == "run":
        cmd = [str(python), "-m", "evallib", "run", *argv[1:]]
    else:
        cmd = [str(python), "-m", "pytest", *argv[1:]]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
