"""An evaluator's own CSV or parquet file, with the roles of its columns, loaded into a validated panel.

Params files (and so ``data_source.path``) may come from collaborators, so a data
file must resolve, after following every link, inside the project folder or inside
a data folder the evaluator names in the project's own settings file
(:data:`SETTINGS_FILE`, ``[data] folders = [...]``); it must be a regular file of
at most :data:`MAX_DATA_BYTES` (or ``[data] max_megabytes``). It is read once,
into memory, and the SHA-256 of exactly those bytes is recorded
(:func:`read_digest`), so provenance and fingerprints describe the data as read.
No message ever prints the file's content: errors name the file, line numbers and
the column roles given in the params file.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from evallib.errors import DataError
from evallib.sources.panel import Frequency, Panel, validate_panel
from evallib.sources.text import UNPUBLISHABLE, text_problem
from evallib.vocabulary import agree, plural

#: The project-level settings file (TOML) at the project root; only ``[data]`` is read here.
SETTINGS_FILE = "evallib.toml"
#: Largest data file read, unless the settings raise it.
MAX_DATA_BYTES = 256 * 1024 * 1024
#: Never data, wherever a setting points: the kernel's and devices' pseudo-files.
_SYSTEM = tuple(Path(p) for p in ("/proc", "/sys", "/dev"))
_READ: dict[str, str] = {}
#: On a Dask worker only (:mod:`evallib.pipeline.dask_warm`): where the copy shipped for a path a params file
#: names (as written, normalised by ``Path``) lies; the copy is then checked by the rules below like any file.
SHIPPED: dict[str, str] = {}
#: What a table may decode to (a small compressed file can hold hundreds of millions of rows): rows,
#: columns, cells (rows x columns) and, for parquet, the uncompressed bytes its metadata declares. Checked
#: before anything is decoded (parquet: from the file's metadata; CSV: line and separator counts).
MAX_ROWS = 5_000_000
MAX_COLUMNS = 1_000
MAX_CELLS = 50_000_000
MAX_DECODED_BYTES = 2 * 1024**3
#: Longest unit code and outcome name in a data file (characters); both are published.
MAX_CODE_CHARS = 64


@dataclass(frozen=True)
class FileSource:
    """An evaluator's own CSV or parquet file and the roles of its columns.

    ``layout="long"``: one row per unit, period and outcome, with the outcome's
    name in ``outcome_column`` and its count in ``value_column``.
    ``layout="wide"``: one row per unit and period, one column per outcome
    (listed in ``outcomes``). ``unit_label`` says what a unit is, in words, for reports
    ("area" unless the evaluator names it: "practice", "local authority", ...).
    With a ``denominator`` column, ``measure`` says what the outcome becomes: ``rate``
    (events per ``per`` people, e.g. per 1,000: its effects are proportional, in percent)
    or ``proportion`` (a share of the denominator, such as four-hour performance: its
    effects are in percentage points). ``attribution`` credits the data in reports.
    """

    path: str
    unit: str
    period: str
    frequency: Frequency = "monthly"
    layout: Literal["long", "wide"] = "wide"
    outcomes: tuple[str, ...] = ()
    outcome_column: str = "outcome"
    value_column: str = "value"
    denominator: str | None = None
    unit_label: str = "area"
    measure: Literal["count", "rate", "proportion"] = "count"
    per: int = 1
    attribution: str = ""

    @property
    def kind(self) -> str:
        """What the outcome is: ``count``, ``rate`` (events per ``per`` of the denominator: proportional
        effects) or ``proportion`` (a share of the denominator: effects in percentage points).
        """
        return self.measure if self.denominator else "count"


def _settings(root: Path) -> dict[str, object]:
    """The ``[data]`` table of the project's settings file ({} when there is none)."""
    f = root / SETTINGS_FILE
    if not f.is_file() or f.is_symlink():
        return {}
    try:
        with open(f, "rb") as fh:
            data = tomllib.loads(fh.read(64 * 1024).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"{SETTINGS_FILE}: cannot be read as TOML ({type(exc).__name__}); fix or remove it") from None
    table = data.get("data", {})
    return table if isinstance(table, dict) else {}


def data_folders(root: Path) -> tuple[Path, ...]:
    """Where data files may live: the project folder, then each folder named in ``[data] folders``."""
    folders = [root.resolve()]
    named = _settings(root).get("folders", [])
    if not isinstance(named, list) or not all(isinstance(x, str) for x in named):
        raise DataError(f'{SETTINGS_FILE}: [data] folders must be a list of folder names, e.g. ["/srv/extracts"]')
    for name in named:
        p = Path(name)
        folders.append((p if p.is_absolute() else root / p).resolve())
    return tuple(folders)


def max_data_bytes(root: Path) -> int:
    """The largest data file read, in bytes: ``[data] max_megabytes`` in the project's settings, else the default."""
    mb = _settings(root).get("max_megabytes")
    if mb is None:
        return MAX_DATA_BYTES
    if isinstance(mb, bool) or not isinstance(mb, int) or not 1 <= mb <= 100_000:
        raise DataError(f"{SETTINGS_FILE}: [data] max_megabytes must be a whole number from 1 to 100000")
    return mb * 1024 * 1024


def display_path(path: Path, root: Path) -> str:
    """A data file's path as published: relative to the project, or to the named data folder holding it."""
    real = path.resolve()
    for i, folder in enumerate(data_folders(root)):
        if real.is_relative_to(folder):
            rel = real.relative_to(folder).as_posix()
            return rel if i == 0 else f"[data folder {folder.name}]/{rel}"
    return path.name


def resolve_data_path(written: str, root: Path) -> Path:
    """The real path of the data file ``written`` in a params file, checked against the rules above.

    Raises
    ------
    DataError
        When the file is missing, resolves (through ``..`` or links) outside the project
        and the named data folders, is not a regular file, or is larger than the cap.
    """
    shown = written if len(written) <= 120 else written[:117] + "..."
    if not written or "\x00" in written:
        raise DataError("data_source.path is empty or holds a NUL character; name a file inside the project")
    p = Path(SHIPPED.get(str(Path(written)), written))
    candidate = p if p.is_absolute() else root / p
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"data file {shown} does not exist; check data_source.path in the params file") from None
    except (OSError, RuntimeError) as exc:
        raise DataError(f"data file {shown} cannot be opened ({type(exc).__name__})") from None
    folders = data_folders(root)
    if not any(real.is_relative_to(f) for f in folders) or any(real.is_relative_to(s) for s in _SYSTEM):
        raise DataError(
            f"data file {shown} resolves outside the project folder (through an absolute path, '..' or a link); "
            f"put the file inside the project, or name its folder in {SETTINGS_FILE} under [data] folders"
        )
    st = real.stat()
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"data file {shown} is not a regular file; name a CSV or parquet file")
    cap = max_data_bytes(root)
    if st.st_size > cap:
        raise DataError(
            f"data file {shown} is {st.st_size / 2**20:,.1f} MB, over the {cap / 2**20:,.0f} MB limit; "
            f"raise [data] max_megabytes in {SETTINGS_FILE} if it really is that large"
        )
    return real


def _read_bytes(real: Path, cap: int, shown: str) -> bytes:
    """The file's bytes, opened without following a link swapped in since it was checked."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise DataError(f"data file {shown} cannot be opened ({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise DataError(f"data file {shown} is not a regular file; name a CSV or parquet file")
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise DataError(f"data file {shown} grew over the {cap / 2**20:,.0f} MB limit while it was read")
    return data


def read_checked(written: str, root: Path) -> tuple[Path, bytes]:
    """The real path and bytes of the data file ``written`` in a params file, checked and read as
    :func:`read_table` reads it (the rules above; the checked path opened without following a link).
    """
    real = resolve_data_path(written, root)
    return real, _read_bytes(real, max_data_bytes(root), Path(written).name)


def read_digest(path: Path) -> str | None:
    """SHA-256 of the bytes this process last read from ``path`` (None when it has not read it)."""
    return _READ.get(str(path.resolve()))


def read_table(path: Path, root: Path | None = None) -> pd.DataFrame:
    """Read a CSV or parquet file (inside ``root``, default the working directory) as text columns.

    Raises :class:`DataError` when it cannot be read; never shows its content.
    """
    root = root or Path.cwd()
    real = resolve_data_path(str(path), root)
    shown = path.name
    data = _read_bytes(real, max_data_bytes(root), shown)
    _READ[str(real)] = hashlib.sha256(data).hexdigest()
    suffix = real.suffix.lower() if real.suffix else Path(str(path)).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            _check_parquet_size(data, shown)
            return pd.read_parquet(io.BytesIO(data))
        if suffix in (".csv", ".txt"):
            _check_csv_size(data, shown)
            return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""])
    except DataError:
        raise
    except ImportError:
        raise DataError(f"cannot read {shown}: install pyarrow (pip install 'evallib[parquet]')") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a data problem for the evaluator
        # The parser's message can quote the file: name only the kind of failure.
        raise DataError(f"cannot read data file {shown}: not a well-formed table ({type(exc).__name__})") from None
    raise DataError(f"data file {shown}: unsupported format {suffix!r}; use .csv or .parquet")


def _check_shape(rows: int, columns: int, shown: str) -> None:
    for what, n, cap in (
        ("rows", rows, MAX_ROWS),
        ("columns", columns, MAX_COLUMNS),
        ("cells", rows * columns, MAX_CELLS),
    ):
        if n > cap:
            raise DataError(
                f"data file {shown} holds {n:,} {what}, over the limit of {cap:,}; split the file or keep only "
                "the units, periods and outcomes the analysis needs"
            )


def _check_parquet_size(data: bytes, shown: str) -> None:
    """Refuse a parquet file whose metadata declares more rows, columns or decoded bytes than the limits,
    before any column is decoded.
    """
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    _check_shape(meta.num_rows, meta.num_columns, shown)
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if decoded > MAX_DECODED_BYTES:
        raise DataError(
            f"data file {shown} decodes to {decoded / 2**20:,.1f} MB, over the {MAX_DECODED_BYTES / 2**20:,.1f} MB "
            "limit; keep only the units, periods and outcomes the analysis needs"
        )


def _check_csv_size(data: bytes, shown: str) -> None:
    """Refuse a CSV file with more lines, columns or cells than the limits, before it is parsed (line breaks
    inside quoted cells count as lines: the count errs on the safe side).
    """
    breaks = max(data.count(b"\n"), data.count(b"\r"))  # lines may end in LF, CRLF or (old Macs) CR alone
    rows = breaks + (0 if data.endswith((b"\n", b"\r")) else 1) - 1  # less the header
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    header = data[: min(ends)] if ends else data
    _check_shape(max(rows, 0), header.count(b",") + 1, shown)


def check_codes(values: pd.Series, source: str, column: str, what: str) -> None:
    """Refuse unit codes or outcome names (``what``) in ``column`` that are too long or hold characters
    that cannot be published (:func:`~evallib.sources.text.text_problem`), naming the column and line.
    """
    texts = values.dropna().astype(str)
    bad = (texts.str.len() > MAX_CODE_CHARS) | texts.str.contains(UNPUBLISHABLE, regex=True)
    if not bad.any():
        return
    first = texts[bad]
    value, line = str(first.iloc[0]), int(first.index[0]) + 2
    problem = f"is {len(value):,} characters long (at most {MAX_CODE_CHARS})" if len(value) > MAX_CODE_CHARS else None
    raise DataError(
        f"{source}: column {column!r} ({what}) on line {line:,} {problem or text_problem(value)}; use short codes "
        "and names of plain text"
    )


def load_file(spec: FileSource, base_dir: Path | None = None) -> Panel:
    """Load an evaluator's own file (``spec.path`` relative to ``base_dir``, the project) into a :class:`Panel`."""
    root = base_dir or Path.cwd()
    path = Path(spec.path)
    raw = read_table(path, root)
    source = path.name
    roles = [spec.unit, spec.period] + (
        [spec.outcome_column, spec.value_column] if spec.layout == "long" else list(spec.outcomes)
    )
    if spec.denominator:
        roles.append(spec.denominator)
    missing = [c for c in roles if c not in raw.columns]
    if missing:
        # Column names are the file's first line: name only the roles the params file gave.
        near = [c for c in missing if any(str(h).strip().lower() == c.lower() for h in raw.columns)]
        hint = f" ({', '.join(near)} {agree(len(near), 'differs', 'differ')} only in case or spaces)" if near else ""
        raise DataError(
            f"{source}: missing {agree(len(missing), 'column', 'columns')} {', '.join(missing)} named in data_source{hint}; the file has "
            f"{plural(len(raw.columns), 'column')}. Check its header row against data_source in the params file"
        )
    check_codes(raw[spec.unit], source, spec.unit, "unit codes")
    if spec.layout == "long":
        check_codes(raw[spec.outcome_column], source, spec.outcome_column, "outcome names")
    units = raw[spec.unit].astype("string").str.upper()  # ODS codes are case-insensitive, as in params files
    if spec.layout == "long":
        long = pd.DataFrame(
            {
                "unit": units,
                "period": raw[spec.period],
                "outcome": raw[spec.outcome_column],
                "value": raw[spec.value_column],
            }
        )
        if spec.denominator:
            long["denominator"] = raw[spec.denominator]
        return validate_panel(long, spec.frequency, source=source, files=(path.name,), columns=_roles(spec))
    if not spec.outcomes:
        raise DataError(f"{source}: a wide file needs data_source.outcomes listing its outcome columns")
    frames = []
    for outcome in spec.outcomes:
        part = pd.DataFrame({"unit": units, "period": raw[spec.period], "outcome": outcome, "value": raw[outcome]})
        if spec.denominator:
            part["denominator"] = raw[spec.denominator]
        frames.append(part)
    # Keep the file's own row numbers so errors point at the right line.
    long = pd.concat(frames)
    return validate_panel(long, spec.frequency, source=source, files=(path.name,), columns=_roles(spec))


def _roles(spec: FileSource) -> dict[str, str]:
    """The file's column names behind the panel's value and denominator, for messages."""
    value = spec.value_column if spec.layout == "long" else " / ".join(spec.outcomes)
    return {"period": spec.period, "value": value, **({"denominator": spec.denominator} if spec.denominator else {})}
