"""Hostile and faulty input, through the command line: each case gets its exit code and a message naming the
problem (never a traceback, never file content), and leaves every site's outputs and the published site
byte-identical. Params files and data may come from collaborators; see the README's threat model.

The cases share one published project (``published_project``: V04, V45 and S01 run once); each adds files,
runs ``evallib``, and the files are removed again.
"""

from __future__ import annotations

import io
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from evallib.errors import ParamsError
from evallib.pipeline.cli import main as cli_main
from evallib.protocol.safe_yaml import parse_params_text

from .conftest import ROOT, tree_digest

pytestmark = pytest.mark.e2e
SECRET = "s3cr3t-TOKEN-value-9f8e7d"
V04 = (ROOT / "params" / "vanguards" / "V04.yaml").read_text()
# A trust-level protocol (Northumbria's A&E attendances), so that every case below can break one field of it.
BASE = (
    "\n".join(
        line
        for line in V04.replace('site_id: "V04"', 'site_id: "X99"')
        .replace('treated_units: ["00L"]', 'treated_units: ["RTF"]')
        .replace('primary_outcome: "nonelective_admissions_per_head"', 'primary_outcome: "ae_attendances"')
        .replace('secondary_outcomes: ["nonelective_admissions"]', "secondary_outcomes: []")
        .replace('data_source: "mar_commissioner_2008_2019"', 'data_source: "ae_monthly_2010_2021"')
        .replace('pre_period_start: "2013-04"', 'pre_period_start: "2011-04"')
        .splitlines()
        if not line.startswith("secondary_analyses:")
    )
    + "\n"
)
BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    + "site_id: *i\n"
)


def _x99(root: Path, text: str, folder: str = "vanguards") -> list[str]:
    (root / "params" / folder).mkdir(parents=True, exist_ok=True)
    (root / "params" / folder / "X99.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    return ["run", "V45", "X99", "--no-progress"]


def _edit(old: str, new: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        assert old in BASE, old
        return _x99(root, BASE.replace(old, new))

    return setup


def _raw(data: bytes) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        (root / "params" / "vanguards" / "X99.yaml").write_bytes(data)
        return ["run", "V45", "X99", "--no-progress"]

    return setup


def _source(path: str, **extra: str) -> str:
    keys = {"path": path, "unit": "trust", "period": "month", **extra}
    body = ", ".join(f'{k}: "{v}"' for k, v in keys.items())
    outcomes = "" if "outcomes" in extra else ', outcomes: ["ae_attendances"]'
    return "{" + body + outcomes + "}"


GOOD = "trust,month,ae_attendances\n" + "".join(
    f"{u},2014-{m:02d},{100 + m}\n" for u in ("RTF", "RBL", "RX1") for m in range(1, 13)
)


def _data(text: str | bytes | None = None, path: str = "data/mine.csv", make: Callable[[Path], None] | None = None):
    """A case: X99 on its own data file (written from ``text``, or made by ``make``)."""

    def setup(root: Path) -> list[str]:
        target = root / path
        if text is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text if isinstance(text, bytes) else text.encode())
        if make is not None:
            make(root)
        return _x99(root, BASE.replace('"ae_monthly_2010_2021"', _source(path)))

    return setup


def _link(target: str | Callable[[Path], Path], name: str = "data/link.csv") -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        dest = target(root) if callable(target) else Path(target)
        (root / name).symlink_to(dest)

    return make


def _outside_file(root: Path) -> Path:
    f = root.parent / f"{root.name}-outside.csv"
    f.write_text(f"SECRET_TOKEN,{SECRET}\n")
    return f


def _settings(text: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / "evallib.toml").write_text(text)
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / "big.csv").write_text(GOOD + "RTF,2015-01,1\n" * 90_000)

    return make


def _parquet_bool(root: Path) -> None:
    df = pd.DataFrame({"trust": ["RTF", "RBL"] * 12, "month": [f"2014-{m:02d}" for m in range(1, 13)] * 2})
    df["ae_attendances"] = [True, False] * 12
    buf = io.BytesIO()
    df.to_parquet(buf)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "flags.parquet").write_bytes(buf.getvalue())


def _two_files(root: Path) -> list[str]:
    (root / "params" / "extra").mkdir()
    (root / "params" / "extra" / "V45.yaml").write_text((root / "params" / "vanguards" / "V45.yaml").read_text())
    return ["run", "V45", "--no-progress"]


def _case_ids(root: Path) -> list[str]:
    (root / "params" / "extra").mkdir()
    text = (root / "params" / "vanguards" / "V45.yaml").read_text().replace('site_id: "V45"', 'site_id: "v45"')
    (root / "params" / "extra" / "v45.yaml").write_text(text)
    return ["run", "--no-progress"]


def _params_link(root: Path) -> list[str]:
    (root / "params" / "vanguards" / "X99.yaml").symlink_to(_outside_file(root))
    return ["run", "V45", "X99", "--no-progress"]


def _escape(root: Path) -> list[str]:
    return _data(path=f"../{_outside_file(root).name}")(root)


def _validate_environ(root: Path) -> list[str]:
    _data(path="data/env.csv", make=_link("/proc/self/environ", "data/env.csv"))(root)
    return ["validate", "X99"]


def _fifo(root: Path) -> None:
    (root / "data").mkdir(exist_ok=True)
    os.mkfifo(root / "data" / "pipe.csv")


def _not_a_folder(root: Path) -> list[str]:
    (root / "blocker").write_text("a file where the outputs folder should be\n")
    return ["run", "V45", "--no-progress", "--outputs", "blocker/outputs"]


def _foreign_site(root: Path) -> list[str]:
    (root / "elsewhere" / "site").mkdir(parents=True)
    (root / "elsewhere" / "site" / "precious.txt").write_text("not evallib's\n")
    return ["publish", "--outputs", "elsewhere"]


# (id, setup(root) -> CLI args, exit code, fragments of the message)
CASES: list[tuple[str, Callable[[Path], list[str]], int, tuple[str, ...]]] = [
    # --- the YAML itself
    ("yaml alias bomb", _raw(BOMB.encode()), 2, ("anchor or alias",)),
    ("yaml anchor without alias", _edit("seed: 2015", "seed: &s 2015"), 2, ("anchor or alias",)),
    ("duplicate key", _edit("seed: 2015", "seed: 2015\nseed: 7"), 2, ("sets field 'seed' twice",)),
    ("deeply nested yaml", _raw(b"site_id: " + b"[" * 200 + b"]" * 200 + b"\n"), 2, ("nests deeper",)),
    (
        "non-UTF-8 params file",
        _raw(BASE.replace("Northumberland", "Northumb\xe9rland").encode("latin-1")),
        2,
        ("not UTF-8",),
    ),
    ("lone surrogate escape", _edit('notes: "', 'notes: "\\ud800 '), 2, ("lone surrogate",)),
    ("oversize params file", _edit('notes: "', 'notes: "' + "x" * 70_000), 2, ("more than the 65,536 allowed",)),
    ("non-text key", _edit("seed: 2015", "seed: 2015\n12: 3"), 2, ("not text",)),
    (
        "python object tag",
        _edit("seed: 2015", 'seed: !!python/object/apply:os.system ["touch PWNED"]'),
        2,
        ("not valid YAML",),
    ),
    ("empty params file", _raw(b""), 2, ("must be a YAML mapping",)),
    ("top-level list", _raw(b"- a\n- list\n"), 2, ("must be a YAML mapping",)),
    ("params file linked from outside the project", _params_link, 2, ("resolves outside the project",)),
    # --- site ids
    ("reserved id site", _edit('site_id: "X99"', 'site_id: "site"'), 2, ("keeps for itself",)),
    ("reserved id Programme (any case)", _edit('site_id: "X99"', 'site_id: "Programme"'), 2, ("keeps for itself",)),
    ("reserved id INDEX", _edit('site_id: "X99"', 'site_id: "INDEX"'), 2, ("keeps for itself",)),
    ("site id too long", _edit('site_id: "X99"', 'site_id: "' + "X" * 41 + '"'), 2, ("site_id",)),
    ("same id in two folders", _two_files, 2, ("two params files",)),
    ("ids differing only in case", _case_ids, 2, ("ignoring case",)),
    ("file name and site id differ", _edit('site_id: "X99"', 'site_id: "X98"'), 2, ("rename it",)),
    ("unknown site on the command line", lambda root: ["run", "V45", "V99", "--no-progress"], 2, ("V99",)),
    # --- values and lengths
    ("notes too long", _edit('notes: "', 'notes: "' + "n" * 2_100), 2, ("2,000 characters",)),
    ("site name too long", _edit('site_name: "', 'site_name: "' + "n" * 201), 2, ("1-200 characters",)),
    ("dollar in the site name", _edit('site_name: "', 'site_name: "$\\\\frac{1}{0}$ '), 2, ("mathematics",)),
    ("tab in the site name", _edit('site_name: "', 'site_name: "a\\tb '), 2, ("control character",)),
    ("duplicate trust codes", _edit('["RTF"]', '["RTF", "rtf"]'), 2, ("more than once",)),
    (
        "treated trust also an included comparator",
        _edit("comparison_include: []", 'comparison_include: ["RTF"]'),
        2,
        ("repeats RTF",),
    ),
    (
        "code both included and excluded",
        _edit(
            "comparison_include: []\ncomparison_exclude: []", 'comparison_include: ["RBL"]\ncomparison_exclude: ["rbl"]'
        ),
        2,
        ("repeats RBL",),
    ),
    (
        "too many codes",
        _edit("comparison_exclude: []", "comparison_exclude: [" + ", ".join(f'"Z{i:04d}"' for i in range(1001)) + "]"),
        2,
        ("at most 1,000",),
    ),
    (
        "too many secondary outcomes",
        _edit("secondary_outcomes: []", "secondary_outcomes: [" + ", ".join(f'"o{i}"' for i in range(21)) + "]"),
        2,
        ("at most 20",),
    ),
    ("placebo draws 100000", _edit("n_placebo_draws: 999", "n_placebo_draws: 100000"), 2, ("19 to 4999",)),
    ("placebo draws infinite", _edit("n_placebo_draws: 999", "n_placebo_draws: .inf"), 2, ("n_placebo_draws",)),
    ("boolean seed", _edit("seed: 2015", "seed: true"), 2, ("'seed' is True",)),
    ("year 0000", _edit('intervention_start: "2015-04"', 'intervention_start: "0000-04"'), 2, ("year from 1948",)),
    ("year 2999", _edit('post_period_end: "2018-03"', 'post_period_end: "2999-03"'), 2, ("year from 1948",)),
    ("unknown trust code", _edit('["RTF"]', '["ZZ999"]'), 2, ("ZZ999",)),
    ("misspelt field", _edit("seed:", "sede:"), 2, ("'sede' is not a known field",)),
    # --- data files
    ("data path absolute outside the project", _data(path="/etc/hostname"), 2, ("resolves outside the project",)),
    ("data path escaping with ..", _escape, 2, ("resolves outside the project",)),
    (
        "data symlink to the process environment",
        _data(path="data/link.csv", make=_link("/proc/self/environ")),
        2,
        ("resolves outside the project",),
    ),
    ("validate with a data symlink to the environment", _validate_environ, 2, ("resolves outside the project",)),
    (
        "data symlink to a file outside",
        _data(path="data/link.csv", make=_link(_outside_file)),
        2,
        ("resolves outside the project",),
    ),
    (
        "data path is a folder",
        _data(path="data", make=lambda r: (r / "data").mkdir(exist_ok=True)),
        2,
        ("not a regular file",),
    ),
    ("data path is a FIFO", _data(path="data/pipe.csv", make=_fifo), 2, ("not a regular file",)),
    ("data path with a NUL", _data(path="data/mi\\0ne.csv"), 2, ("NUL",)),
    (
        "data file over the size cap",
        _data(path="data/big.csv", make=_settings("[data]\nmax_megabytes = 1\n")),
        2,
        ("over the 1 MB limit",),
    ),
    (
        "malformed project settings",
        _data(GOOD, make=lambda r: (r / "evallib.toml").write_text("[data\n")),
        2,
        ("cannot be read as TOML",),
    ),
    ("infinite counts", _data(GOOD.replace("RBL,2014-03,103", "RBL,2014-03,inf")), 2, ("infinite",)),
    ("true/false counts (parquet)", _data(path="data/flags.parquet", make=_parquet_bool), 2, ("true/false",)),
    (
        "missing column, secret header",
        _data(GOOD.replace("trust,", f"{SECRET},")),
        2,
        ("missing column",),
    ),
    (
        "secret in a count cell",
        _data(GOOD.replace("RBL,2014-03,103", f"RBL,2014-03,{SECRET}")),
        2,
        ("text of 25 characters",),
    ),
    ("negative counts", _data(GOOD.replace("RBL,2014-03,103", "RBL,2014-03,-4")), 2, ("negative counts",)),
    ("duplicate rows", _data(GOOD + "RTF,2014-01,5\n"), 2, ("duplicate unit-period rows",)),
    ("not UTF-8 data", _data(b"trust,month,ae_attendances\nR\xff\xfe,2014-01,1\n"), 2, ("not a well-formed table",)),
    ("missing data file", _data(path="data/absent.csv"), 2, ("does not exist",)),
    # --- where results go
    ("outputs folder cannot be written", _not_a_folder, 2, ("cannot be written",)),
    ("publish into a folder with someone else's site/", _foreign_site, 2, ("not made by evallib",)),
    ("publish without an outputs folder", lambda root: ["publish", "--outputs", "nowhere"], 2, ("no outputs folder",)),
]


def _paths(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if "outputs" not in p.relative_to(root).parts[:1]} | {
        p for p in root.parent.glob(f"{root.name}-*")
    }


@pytest.mark.parametrize(("name", "setup", "code", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_matrix(
    published_project: Path, monkeypatch: pytest.MonkeyPatch, capsys, name, setup, code, fragments
) -> None:
    root = published_project
    monkeypatch.setenv("SECRET_TOKEN", SECRET)
    monkeypatch.chdir(root)
    before, files = tree_digest(root / "outputs"), _paths(root)
    t0 = time.perf_counter()
    try:
        got = cli_main(setup(root))
    finally:
        for p in sorted(_paths(root) - files, key=lambda p: len(p.parts), reverse=True):
            if p.is_dir() and not p.is_symlink():
                p.rmdir() if not any(p.iterdir()) else __import__("shutil").rmtree(p)
            else:
                p.unlink()
    out, err = capsys.readouterr()
    assert got == code, err
    assert any(f in err for f in fragments), err
    assert "Traceback" not in err and SECRET not in out + err
    assert time.perf_counter() - t0 < 30  # refused in preflight, not after minutes of work
    assert tree_digest(root / "outputs") == before  # nothing published, nothing lost
    assert not (root / "PWNED").exists()


def test_alias_bomb_is_refused_in_milliseconds_and_bounded_memory() -> None:
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ParamsError, match="anchor or alias"):
        parse_params_text(BOMB.encode(), "bomb.yaml")
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2 and peak < 5 * 2**20  # expanded, it would be 9^9 strings (gigabytes)


def test_lowercase_codes_are_the_same_trust(published_project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(published_project)
    target = published_project / "params" / "vanguards" / "X99.yaml"
    target.write_text(BASE.replace('["RTF"]', '["rtf"]'))
    try:
        assert cli_main(["validate", "X99"]) == 0, capsys.readouterr().err
    finally:
        target.unlink()
