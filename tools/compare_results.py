#!/usr/bin/env python3
"""Compare the ``results.json`` files of two output folders, site by site.

    python tools/compare_results.py OLD_OUTPUTS NEW_OUTPUTS [--ignore provenance.git_commit ...]

For checking that a change which should not alter any result (a refactor, a speed-up)
did not: every site's results must be equal, value for value, apart from the keys
named with ``--ignore`` (default: ``provenance.git_commit``, which records the commit
that made the file, and ``provenance.fingerprint``, which covers the code too). Prints one line per difference (site, JSON path, old, new) and a
summary; exits 0 when the folders agree and 1 when they do not. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_IGNORE = ("provenance.git_commit", "provenance.fingerprint")


def _load(folder: Path) -> dict[str, Any]:
    return {
        f.parent.name: json.loads(f.read_text(encoding="utf-8"))
        for f in sorted(folder.glob("*/results.json"))
        if not f.parent.name.startswith(".")
    }


def differences(old: Any, new: Any, path: str = "", ignore: tuple[str, ...] = DEFAULT_IGNORE) -> list[str]:
    """Every JSON path at which ``old`` and ``new`` differ, as ``path: old -> new`` lines."""
    if path in ignore:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                if sub not in ignore:
                    out.append(
                        f"{sub}: {'missing' if key not in old else 'present'} -> "
                        f"{'missing' if key not in new else 'present'}"
                    )
                continue
            out.extend(differences(old[key], new[key], sub, ignore))
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{path}: {len(old)} items -> {len(new)} items"]
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(differences(a, b, f"{path}[{i}]", ignore))
        return out
    # Exact equality (bool is not int here: True == 1 would hide a changed type).
    if type(old) is not type(new) or old != new:
        return [f"{path}: {old!r} -> {new!r}"]
    return []


def compare(old_folder: Path, new_folder: Path, ignore: tuple[str, ...] = DEFAULT_IGNORE) -> list[str]:
    """Lines describing every difference between two output folders (empty when they agree)."""
    old, new = _load(old_folder), _load(new_folder)
    lines = [f"{site}: only in {old_folder}" for site in sorted(set(old) - set(new))]
    lines += [f"{site}: only in {new_folder}" for site in sorted(set(new) - set(old))]
    for site in sorted(set(old) & set(new)):
        lines.extend(f"{site}: {d}" for d in differences(old[site], new[site], ignore=ignore))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--ignore", nargs="*", default=list(DEFAULT_IGNORE), help="JSON paths to leave out")
    args = parser.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return 2
    n_sites = len(set(_load(args.old)) | set(_load(args.new)))
    lines = compare(args.old, args.new, tuple(args.ignore))
    print("\n".join(lines) if lines else "")
    ignored = ", ".join(args.ignore) or "nothing"
    verdict = (
        "identical" if not lines else (f"{len(lines)} difference" if len(lines) == 1 else f"{len(lines)} differences")
    )
    print((f"{n_sites} site" if n_sites == 1 else f"{n_sites} sites") + f" compared, ignoring {ignored}: {verdict}")
    return 0 if not lines else 1


if __name__ == "__main__":
    sys.exit(main())
