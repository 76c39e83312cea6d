"""Helpers the site notebook calls, so that it holds no logic of its own."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evallib.protocol.params import PARAMETER_NAMES, SiteProtocol
from evallib.protocol.paths import project_root


def _format_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    # The default format starts with the absolute path of the library file that warned;
    # published pages must not carry paths from the machine that ran them.
    return f"{category.__name__}: {message}\n"


def setup() -> None:
    """Prepare a notebook kernel: path-free warning messages."""
    warnings.formatwarning = _format_warning  # type: ignore[assignment]


def protocol_from_namespace(namespace: Mapping[str, Any], source: str = "notebook parameters") -> SiteProtocol:
    """Validate the notebook's parameter variables (``globals()``) as a :class:`SiteProtocol`.

    Only names in :data:`evallib.protocol.params.PARAMETER_NAMES` are read.
    """
    return SiteProtocol.from_mapping({k: namespace[k] for k in PARAMETER_NAMES if k in namespace}, source)


def project_path(path: str) -> Path:
    """A path relative to the project root (absolute paths are returned as they are)."""
    p = Path(path)
    return p if p.is_absolute() else project_root() / p
