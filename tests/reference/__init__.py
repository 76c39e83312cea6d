"""Reference values for the tests, read from the stored outputs in this folder.

Each ``*.out`` file is the stored output of the script beside it with the same name (an R script for the published
numbers, a Python script for a peer library's recomputation): ``name = value`` lines, with ``#`` comments that name
the software and the source. ``README.md`` lists every value, the test that uses it and where it comes from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent


def values(name: str) -> dict[str, float]:
    """The ``name = value`` lines of the stored output ``tests/reference/<name>``, as floats.

    Parameters
    ----------
    name : str
        Path of the output file relative to ``tests/reference``, e.g. ``"sicily/bernal2017_sicily.out"``.

    Returns
    -------
    dict of str to float
        Every value in the file, in file order. Blank lines and text after ``#`` are skipped.
    """
    out: dict[str, float] = {}
    for number, line in enumerate((REFERENCE / name).read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        key, sep, value = text.partition(" = ")
        if not sep or key in out:
            raise ValueError(f"tests/reference/{name} line {number}: expected one 'name = value' line per name")
        out[key] = float(value)
    return out


def digits(name: str) -> dict[str, int]:
    """The number of decimals each value of ``tests/reference/<name>`` is printed with (its precision)."""
    out: dict[str, int] = {}
    for line in (REFERENCE / name).read_text().splitlines():
        key, sep, value = line.split("#", 1)[0].strip().partition(" = ")
        if sep:
            out[key] = len(value.partition(".")[2])
    return out


def json_output(name: str) -> Any:
    """A stored output kept as JSON (``tests/reference/<name>``), parsed."""
    return json.loads((REFERENCE / name).read_text())
