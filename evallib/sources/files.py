"""An evaluator's own CSV or parquet file, with the roles of its columns, loaded into a validated panel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from evallib.errors import DataError
from evallib.sources.panel import Frequency, Panel, validate_panel


@dataclass(frozen=True)
class FileSource:
    """An evaluator's own CSV or parquet file and the roles of its columns.

    ``layout="long"``: one row per unit, period and outcome, with the outcome's
    name in ``outcome_column`` and its count in ``value_column``.
    ``layout="wide"``: one row per unit and period, one column per outcome
    (listed in ``outcomes``). ``unit_label`` says what a unit is, in words, for reports
    ("area" unless the evaluator names it: "practice", "local authority", ...).
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


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or parquet file, raising :class:`DataError` when it cannot be read."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; check data_source.path in the params file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except ImportError as exc:
        raise DataError(f"cannot read {path.name}: {exc}. Install pyarrow (pip install 'evallib[parquet]').") from exc
    except Exception as exc:  # noqa: BLE001 - any parser failure is a data problem for the evaluator
        raise DataError(f"cannot read data file {path.name}: {exc}") from exc
    raise DataError(f"data file {path.name}: unsupported format {path.suffix!r}; use .csv or .parquet")


def load_file(spec: FileSource, base_dir: Path | None = None) -> Panel:
    """Load an evaluator's own file into a validated :class:`Panel`."""
    path = Path(spec.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    raw = read_table(path)
    source = path.name
    roles = [spec.unit, spec.period] + (
        [spec.outcome_column, spec.value_column] if spec.layout == "long" else list(spec.outcomes)
    )
    if spec.denominator:
        roles.append(spec.denominator)
    missing = [c for c in roles if c not in raw.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)} named in data_source; "
            f"the file has {', '.join(map(str, raw.columns))}"
        )
    if spec.layout == "long":
        long = pd.DataFrame(
            {
                "unit": raw[spec.unit],
                "period": raw[spec.period],
                "outcome": raw[spec.outcome_column],
                "value": raw[spec.value_column],
            }
        )
        if spec.denominator:
            long["denominator"] = raw[spec.denominator]
        return validate_panel(long, spec.frequency, source=source, files=(path.name,))
    if not spec.outcomes:
        raise DataError(f"{source}: a wide file needs data_source.outcomes listing its outcome columns")
    frames = []
    for outcome in spec.outcomes:
        part = pd.DataFrame(
            {"unit": raw[spec.unit], "period": raw[spec.period], "outcome": outcome, "value": raw[outcome]}
        )
        if spec.denominator:
            part["denominator"] = raw[spec.denominator]
        frames.append(part)
    # Keep the file's own row numbers so errors point at the right line.
    long = pd.concat(frames)
    return validate_panel(long, spec.frequency, source=source, files=(path.name,))
