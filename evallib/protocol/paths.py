"""Where the project lives on disk, without absolute paths in any file."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "EVALLIB_PROJECT_ROOT"


def project_root() -> Path:
    """The evaluation project's root folder.

    ``$EVALLIB_PROJECT_ROOT`` when set (the batch runner sets it for its kernels);
    otherwise the nearest folder at or above the working directory holding both
    ``params/`` and ``notebooks/``; otherwise the working directory.
    """
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env)
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return here
