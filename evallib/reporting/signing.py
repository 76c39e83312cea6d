"""Provenance that cannot be forged from inside the repository: run records signed with a key of this machine.

A site's ``run.json`` holds plain SHA-256s of its results and page, and the fingerprint is made from
public inputs (params, data, code), so anyone who can put files in ``outputs/`` (a pull request) could
recompute all of them. The record is therefore also signed: an HMAC-SHA256, with a key kept outside the
project, over the site, its fingerprints and the hashes of the results and page the run wrote. A site is
skipped as unchanged, or published, only when the signature verifies with this machine's key.

The key lives in ``$EVALLIB_KEY_FILE`` when set (tests, CI, a shared key for Dask workers on other
machines), else ``$XDG_CONFIG_HOME/evallib/publish.key``, else ``~/.config/evallib/publish.key``. It is
created on first use (32 random bytes, hex, mode 0600); it is read without following links, and refused
inside the project folder (where a pull request could add it).

Content that git tracks under ``outputs/`` (anything but ``outputs/README.md``) is refused too: results
come from runs, never from commits (:func:`tracked_outputs`).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
import stat
import subprocess
from pathlib import Path
from typing import Any

from evallib.errors import EvalLibError
from evallib.protocol.paths import project_root

KEY_ENV = "EVALLIB_KEY_FILE"
_KEY_BYTES = 32


class PublishKeyError(EvalLibError):
    """The publishing key cannot be read or created (message names the file and the fix)."""


def key_path() -> Path:
    """Where this machine's publishing key is (see the module docstring)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "evallib" / "publish.key"


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = "it is a link, never followed" if exc.errno == errno.ELOOP else exc.strerror or type(exc).__name__
        raise PublishKeyError(
            f"the publishing key {path} cannot be read ({why}); remove it (a new one is made) or set {KEY_ENV} to "
            "a regular file outside the project"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise PublishKeyError(f"the publishing key {path} is not a regular file; remove it or set {KEY_ENV}")
        text = fh.read(4 * _KEY_BYTES + 1).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) < _KEY_BYTES:
        raise PublishKeyError(
            f"the publishing key {path} is not {_KEY_BYTES} bytes of hex; remove it (a new one is made)"
        )
    return key


def _create_key(path: Path) -> None:
    """Write a new key to a private temporary file and link it into place (never over an existing key)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(_KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def publish_key(root: Path | None = None) -> bytes:
    """The publishing key of this machine, created on first use.

    Raises
    ------
    PublishKeyError
        When the key file is inside the project, is a link or not a regular file, is malformed, or cannot
        be created (the message names the file and the fix).
    """
    path = key_path()
    project = (root or project_root()).resolve()
    if path.resolve().is_relative_to(project):
        raise PublishKeyError(
            f"the publishing key file {KEY_ENV}={path} is inside the project, where a pull request could add it; "
            "keep it outside (the default is ~/.config/evallib/publish.key)"
        )
    key = _read_key(path)
    if key is None:
        try:
            _create_key(path)
        except OSError as exc:
            raise PublishKeyError(
                f"cannot create the publishing key {path} ({exc.strerror or type(exc).__name__}); "
                f"set {KEY_ENV} to a writable file outside the project"
            ) from None
        key = _read_key(path)
    assert key is not None
    return key


def sign(fields: dict[str, Any], key: bytes | None = None) -> str:
    """HMAC-SHA256 (hex) of ``fields`` (JSON with sorted keys) with this machine's key."""
    message = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key if key is not None else publish_key(), message, hashlib.sha256).hexdigest()


def signature_ok(fields: dict[str, Any], signature: object) -> bool:
    """Whether ``signature`` is this machine's :func:`sign` of ``fields`` (False when no key can be had)."""
    if not isinstance(signature, str):
        return False
    try:
        expected = sign(fields)
    except EvalLibError:
        return False
    return hmac.compare_digest(expected, signature)


def site_record_fields(site_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """What a site's ``run.json`` signature covers: the site, its fingerprints, the hashes of its files."""
    keys = ("fingerprint", "result_fingerprint", "results_sha256", "report_sha256")
    return {"kind": "site", "site_id": site_id, **{k: record.get(k) for k in keys}}


def programme_record_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What the programme's ``run.json`` signature covers: the results it was made from and its page."""
    return {"kind": "programme", "inputs": record.get("inputs"), "report_sha256": record.get("report_sha256")}


#: The one file git may track under ``outputs/``.
OUTPUTS_README = "README.md"


def tracked_outputs(outputs: Path) -> frozenset[str]:
    """Top-level names under ``outputs`` holding files git tracks (``README.md`` excepted); empty outside git.

    A pull request can add files under ``outputs/`` (force-added past ``.gitignore``); results come from runs
    on this machine, never from commits, so such folders are never skipped as unchanged nor published.
    """
    try:
        out = subprocess.run(
            ["git", "-C", str(outputs), "ls-files", "-z", "--", "."], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    if out.returncode != 0:
        return frozenset()
    names = set()
    for rel in out.stdout.decode("utf-8", errors="replace").split("\0"):
        if rel and rel != OUTPUTS_README:
            names.add(rel.split("/", 1)[0])
    return frozenset(names)
