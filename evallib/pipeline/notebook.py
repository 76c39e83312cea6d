"""Helpers the site notebook calls, so that it holds no logic of its own.

The notebook's parameters cell names a site; every other parameter is ``None``
("as in the site's params file"). :func:`protocol_from_namespace` loads that
site's params file and applies only the values set in the notebook (in the cell,
with ``papermill -p`` or ``-f``); each one that differs from the file is a
*departure* from the protocol, listed at the top of the report and in
``results.json``. Results with departures never match a published run's
fingerprint, so exploration cannot reach the published site.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from evallib.errors import EvalLibError, ParamsError
from evallib.protocol.params import PARAMETER_NAMES, SiteProtocol, find_params, read_yaml
from evallib.protocol.paths import project_root

#: Set by the batch runner for each site's notebook: the params file it validated.
PARAMS_FILE_ENV = "EVALLIB_PARAMS_FILE"


def _format_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    # The default format starts with the absolute path of the library file that warned;
    # published pages must not carry paths from the machine that ran them.
    return f"{category.__name__}: {message}\n"


def setup() -> None:
    """Prepare a notebook kernel: path-free warning messages, and evallib's own errors (a bad parameter, a
    data problem) shown as their message, not a wall of traceback. The cell still fails, so a batch run
    still records the site as failed.
    """
    warnings.formatwarning = _format_warning
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((EvalLibError,), show_domain_error)


def domain_message(exc: BaseException) -> list[str]:
    """The lines a notebook shows for one of evallib's errors: its kind and message, nothing else."""
    return [f"{type(exc).__name__}: {exc}"]


def show_domain_error(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None
) -> list[str]:
    """IPython's handler for :class:`~evallib.errors.EvalLibError`: the message alone (the fix is in it)."""
    stb = domain_message(value)
    shell._showtraceback(etype, value, stb)
    return stb


def params_file_for(site_id: str) -> Path | None:
    """The params file of ``site_id``: the batch runner's, else the project's ``params/`` (None when none)."""
    given = os.environ.get(PARAMS_FILE_ENV)
    if given and Path(given).stem.lower() == site_id.lower():
        return Path(given)
    folder = project_root() / "params"
    if not folder.is_dir():
        return None
    try:
        return find_params(folder, [site_id])[0]
    except ParamsError as exc:
        if "no params file" in str(exc):
            return None
        raise


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(project_root().resolve()).as_posix()
    except ValueError:
        return path.name


def _shown(v: Any) -> str:
    text = repr(list(v) if isinstance(v, tuple) else v)
    return text if len(text) <= 60 else text[:57] + "..."


def _differing(v: Any, other: Any) -> Any:
    """``v``, or of two mappings (each unit's start) only the entries that differ from ``other``."""
    if isinstance(v, dict) and isinstance(other, dict):
        return {k: x for k, x in v.items() if other.get(k) != x}
    return v


def protocol_from_namespace(namespace: Mapping[str, Any], source: str = "notebook parameters") -> SiteProtocol:
    """The protocol the notebook runs: the site's params file with the notebook's own values applied.

    Only names in :data:`evallib.protocol.params.PARAMETER_NAMES` are read; ``None``
    means "as in the params file". Values that differ from the file are recorded in
    ``SiteProtocol.departures``. A site without a params file is a draft: every
    required field must be set, and the draft is marked as such.
    """
    given = {k: namespace[k] for k in PARAMETER_NAMES if namespace.get(k) is not None}
    site_id = given.get("site_id")
    if not isinstance(site_id, str):
        raise ParamsError(f"{source}: field 'site_id' must be set to a site id in quotes, e.g. \"V04\"")
    file = params_file_for(site_id)
    if file is None:
        protocol = SiteProtocol.from_mapping(given, f"{source} (no params file for {site_id})")
        return replace(protocol, departures=("no params file: a draft protocol",))
    rel = _relative(file)
    base = read_yaml(file)
    if isinstance(base, dict) and str(base.get("site_id", "")).lower() == site_id.lower():
        given["site_id"] = base["site_id"]  # ids are compared ignoring case: "v04" is V04
    on_file = SiteProtocol.from_mapping(base, rel)
    if not isinstance(base, dict):  # pragma: no cover - from_mapping has refused it
        raise ParamsError(f"{rel}: not a mapping")
    protocol = SiteProtocol.from_mapping({**base, **given}, f"{rel} with the notebook's parameters")
    # Compared as the files write them, so a changed start of one unit of a staggered roll-out counts too.
    was, now = on_file.to_mapping(), protocol.to_mapping()
    departures = tuple(
        f"{k}: {_shown(_differing(was[k], now[k]))} in {rel}, {_shown(_differing(now[k], was[k]))} here"
        for k in PARAMETER_NAMES
        if was[k] != now[k]
    )
    return replace(protocol, source_file=rel, departures=departures)


def project_path(path: str) -> Path:
    """A path relative to the project root (absolute paths are returned as they are)."""
    p = Path(path)
    return p if p.is_absolute() else project_root() / p
