"""The canonical long panel every data source is loaded into, and its validation.

Every source, bundled or the evaluator's own, ends up as a :class:`Panel`: one row
per unit x period x outcome with columns ``unit``, ``period`` (timestamp of the
period's first day), ``outcome``, ``value`` and ``denominator`` (NaN when the
outcome has none). Estimators and plots only ever see this shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.vocabulary import agree, plural

Frequency = Literal["monthly", "quarterly", "yearly", "weekly"]
FREQUENCIES: tuple[Frequency, ...] = ("monthly", "quarterly", "yearly", "weekly")
#: Weekly periods are ISO weeks (Monday to Sunday), each labelled by its Monday.
_PANDAS_FREQ = {"monthly": "M", "quarterly": "Q", "yearly": "Y", "weekly": "W-SUN"}
_OFFSET = {"monthly": "MS", "quarterly": "QS", "yearly": "YS", "weekly": "W-MON"}
#: What a period of each frequency is written as in a data file, for messages.
PERIOD_EXAMPLES = {
    "monthly": "the first day of each month, e.g. 2016-04-01 (or 2016-04)",
    "quarterly": "the first day of each quarter, e.g. 2016-04-01 (or 2016Q2)",
    "yearly": "the first day of each year, e.g. 2016-01-01 (or 2016)",
    "weekly": "the Monday that starts each ISO week, e.g. 2019-01-07",
}

PANEL_COLUMNS = ["unit", "period", "outcome", "value", "denominator"]


_MAX_ROWS_SHOWN = 8
#: Largest plausible count or denominator (a trillion: about 100 times the world's population). Larger values
#: are a unit error or a corrupt file; 1e300 admissions would otherwise be evaluated as a "-100%" effect.
MAX_VALUE = 1e12
_QUARTER = re.compile(r"^(\d{4})\s*-?\s*Q([1-4])$", re.IGNORECASE)
_ISO_WEEK_LABEL = re.compile(r"^\d{4}-?W\d{1,2}(-?\d)?$", re.IGNORECASE)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Panel:
    """Canonical long panel of outcome counts.

    Parameters
    ----------
    data : DataFrame
        Columns ``unit, period, outcome, value, denominator``; validated, sorted.
    frequency : {"monthly", "quarterly", "yearly", "weekly"}
        Spacing of ``period`` (weekly: ISO weeks, each period the timestamp of its Monday).
    source : str
        Human-readable name of where the data came from (for reports).
    files : tuple of str
        Names of the files read (for provenance).
    """

    data: pd.DataFrame = field(repr=False)
    frequency: Frequency
    source: str
    files: tuple[str, ...] = ()

    @property
    def outcomes(self) -> list[str]:
        """The outcomes in the panel, sorted."""
        return sorted(self.data["outcome"].unique())

    @property
    def units(self) -> list[str]:
        """The units in the panel, sorted."""
        return sorted(self.data["unit"].unique())

    def periods(self, outcome: str | None = None) -> pd.DatetimeIndex:
        """The periods in the panel (of one ``outcome`` when given), sorted."""
        d = self.data if outcome is None else self.data[self.data["outcome"] == outcome]
        return pd.DatetimeIndex(sorted(d["period"].unique()))

    def has_denominator(self, outcome: str) -> bool:
        """Whether ``outcome`` has a denominator in any row."""
        d = self.data.loc[self.data["outcome"] == outcome, "denominator"]
        return bool(d.notna().any())

    def wide(self, outcome: str, column: Literal["value", "denominator"] = "value") -> pd.DataFrame:
        """Period x unit table of one outcome (NaN where a unit has no row)."""
        if outcome not in self.outcomes:
            raise DataError(
                f"outcome {outcome!r} is not in data source {self.source!r}; "
                f"available outcomes: {', '.join(self.outcomes)}"
            )
        d = self.data[self.data["outcome"] == outcome]
        return d.pivot(index="period", columns="unit", values=column).sort_index()


# --------------------------------------------------------------------------- validation


#: Values shown in messages: short numbers, dates and periods only; anything else could be any text
#: (a secret, if a file was not what it seemed), so it is described, never quoted.
_SHOWABLE = re.compile(r"^[-+]?[0-9][0-9.,:/ eEQq-]{0,15}$|^(nan|inf|-inf|true|false)$", re.IGNORECASE)


def _describe(value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
    if not text:
        return "(blank)"
    return repr(text) if _SHOWABLE.match(text) else f"(text of {len(text)} characters)"


def _rows(df: pd.DataFrame, mask: pd.Series | np.ndarray, row_offset: int) -> str:
    """The offending rows by line number in the source file, with their values when they are plainly numbers
    or dates (never other text from the file).
    """
    bad = df[np.asarray(mask)]
    shown = bad.head(_MAX_ROWS_SHOWN)
    cols = [c for c in ("period", "outcome", "value", "denominator") if c in shown.columns]
    lines = [
        f"  line {i + row_offset}: " + ", ".join(f"{c} {_describe(r[c])}" for c in cols)
        for i, r in zip(shown.index, shown.to_dict("records"), strict=True)
    ]
    more = f"\n  ... and {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
    return "\n".join(lines) + more


def parse_periods(
    values: pd.Series, frequency: str, *, source: str, column: str = "period", row_offset: int = 2
) -> pd.Series:
    """Parse period labels to the timestamp of each period's first day.

    Accepts dates (``2016-04-01``), months (``2016-04``), quarters (``2016Q2``) and
    years (``2016``); weekly data are dated by the Monday that starts each ISO week
    (``2019-01-07``), and only by that. A date that is not the first day of a period of the
    declared frequency (``2016-04-15`` in monthly data, a Tuesday in weekly data) is an
    error, not silently moved.
    """
    if frequency not in FREQUENCIES:
        raise DataError(f"{source}: frequency {frequency!r} is not one of {', '.join(FREQUENCIES)}")
    raw = values.astype("string").str.strip()
    parsed: dict[str, pd.Timestamp | None] = {}
    for label in raw.dropna().unique():
        text = str(label)
        try:
            if frequency == "weekly" and not _DAY.match(text):
                raise ValueError(text)  # one documented format: the Monday's date
            quarter = _QUARTER.match(text)
            ts = pd.Period(f"{quarter[1]}Q{quarter[2]}", freq="Q").start_time if quarter else pd.Timestamp(text)
        except (ValueError, TypeError):
            parsed[label] = None
            continue
        start = pd.Period(ts, freq=_PANDAS_FREQ[frequency]).start_time
        parsed[label] = ts if ts == start else None
    out = raw.map(parsed)
    bad = out.isna().to_numpy()
    if bad.any():
        frame = pd.DataFrame({column: values})
        raise DataError(
            f"{source}: column {column!r} has values that are not {frequency} periods "
            f"(expected {PERIOD_EXAMPLES[frequency]}){_period_hint(raw[bad], frequency, column)}:\n"
            + _rows(frame, bad, row_offset)
        )
    return pd.to_datetime(out)


def _period_hint(bad: pd.Series, frequency: str, column: str) -> str:
    """What to do about periods off the declared frequency, judged from the offending labels (never echoed)."""
    labels = [str(v) for v in bad.dropna().unique()[:50]]
    if frequency == "weekly" and any(_ISO_WEEK_LABEL.match(v) for v in labels):
        return "; write each ISO week label (2019-W02) as the date of its Monday (2019-01-07)"
    days = pd.to_datetime(pd.Series([v for v in labels if _DAY.match(v)]), errors="coerce").dropna()
    if frequency == "weekly" and len(days):
        return (
            "; these dates are not Mondays: if the data are daily, sum each ISO week's seven days into one row "
            "dated by its Monday; if each week is dated by another day, date it by its Monday instead"
        )
    if frequency != "weekly" and len(days) and (days.dt.day_of_week == 0).all() and frequency == "monthly":
        return "; if the data are weekly (dated by Mondays), set frequency: weekly in the params file's data_source"
    return ""


def check_regular(panel: Panel, *, column: str = "period") -> None:
    """Raise :class:`DataError` when a weekly file's periods do not run week after week (irregular spacing).

    Each unit may miss a week (the coverage step handles gaps), but the file as a whole must hold every ISO week
    between its first and last: a file with one row a fortnight, or with dates scattered through the year, is not
    weekly data.
    """
    if panel.frequency != "weekly":
        return
    periods = panel.periods()
    expected = pd.date_range(periods.min(), periods.max(), freq=_OFFSET["weekly"])
    absent = expected.difference(periods)
    if len(absent):
        gaps = np.diff(periods.to_numpy()).astype("timedelta64[D]").astype(int)
        raise DataError(
            f"{panel.source}: column {column!r} is not weekly: {len(absent)} of the {len(expected)} ISO weeks between "
            f"{periods.min():%Y-%m-%d} and {periods.max():%Y-%m-%d} have no row for any unit (the dates are "
            f"{', '.join(str(g) for g in sorted(set(gaps.tolist()))[:5])} days apart). Give one row per unit and ISO "
            "week, dated by its Monday (aggregate irregular or daily records into weeks first), or set frequency to "
            "the data's real spacing"
        )


def validate_panel(
    df: pd.DataFrame,
    frequency: str,
    *,
    source: str,
    files: tuple[str, ...] = (),
    row_offset: int = 2,
    columns: dict[str, str] | None = None,
) -> Panel:
    """Check a long frame and return a :class:`Panel`.

    ``columns`` names the file's columns behind the roles ``period``, ``value`` and ``denominator`` for messages.

    Raises
    ------
    DataError
        Missing columns, empty units, unparseable or off-frequency periods, weekly periods not a week apart,
        duplicate unit-period-outcome rows, non-numeric, missing or negative counts,
        non-positive denominators. The message shows the offending rows.
    """
    required = ["unit", "period", "outcome", "value"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing {agree(len(missing), 'column', 'columns')} {', '.join(missing)}; the table has {plural(len(df.columns), 'other column')}. "
            "Name the columns' roles in the params file's data_source (unit, period, outcomes)."
        )
    if df.empty:
        raise DataError(f"{source}: no rows")
    out = pd.DataFrame(index=df.index)
    out["unit"] = df["unit"].astype("string").str.strip()
    empty_unit = out["unit"].isna() | (out["unit"] == "")
    if empty_unit.any():
        raise DataError(f"{source}: empty unit codes:\n" + _rows(df, empty_unit, row_offset))
    period_column = (columns or {}).get("period", "period")
    out["period"] = parse_periods(df["period"], frequency, source=source, column=period_column, row_offset=row_offset)
    out["outcome"] = df["outcome"].astype("string")
    for col in ("value", "denominator"):
        if col not in df.columns:
            out[col] = np.nan
            continue
        if pd.api.types.is_bool_dtype(df[col]):
            raise DataError(f"{source}: {col}s are true/false, not counts; check the column named for them")
        num = pd.to_numeric(df[col], errors="coerce")
        non_numeric = num.isna() & df[col].notna() & (df[col].astype("string").str.strip() != "")
        if non_numeric.any():
            raise DataError(f"{source}: non-numeric {col}s:\n" + _rows(df, non_numeric, row_offset))
        infinite = np.isinf(num.to_numpy(dtype=float, na_value=np.nan))
        if infinite.any():
            raise DataError(f"{source}: infinite {col}s (inf is not a count):\n" + _rows(df, infinite, row_offset))
        if col == "value":
            if num.isna().any():
                raise DataError(
                    f"{source}: missing values (drop the rows, or leave the period out, rather "
                    "than leaving a blank):\n" + _rows(df, num.isna(), row_offset)
                )
            if (num < 0).any():
                raise DataError(f"{source}: negative counts:\n" + _rows(df, num < 0, row_offset))
        elif (num <= 0).any():
            raise DataError(f"{source}: denominators must be positive:\n" + _rows(df, num <= 0, row_offset))
        if (num > MAX_VALUE).any():
            name = (columns or {}).get(col, col)
            raise DataError(
                f"{source}: column {name!r} has values over {MAX_VALUE:,.0f}, not plausible as "
                f"{'counts' if col == 'value' else 'denominators'} (a unit error or a corrupt file); fix the values:\n"
                + _rows(df, num > MAX_VALUE, row_offset)
            )
        out[col] = num.astype(float)
    dup = out.duplicated(["unit", "period", "outcome"], keep=False)
    if dup.any():
        raise DataError(
            f"{source}: duplicate unit-period rows (each unit may have one row per period and outcome; "
            "sum or remove the duplicates):\n" + _rows(df, dup, row_offset)
        )
    out = out.sort_values(["outcome", "unit", "period"]).reset_index(drop=True)
    out["unit"] = out["unit"].astype(str)
    out["outcome"] = out["outcome"].astype(str)
    panel = Panel(data=out[PANEL_COLUMNS], frequency=frequency, source=source, files=files)  # type: ignore[arg-type]
    check_regular(panel, column=period_column)
    return panel


def find_gaps(
    panel: Panel, outcome: str, units: list[str], start: pd.Timestamp, end: pd.Timestamp
) -> dict[str, list[pd.Timestamp]]:
    """Periods in ``[start, end]`` that each unit lacks (empty lists omitted)."""
    expected = pd.date_range(start, end, freq=_OFFSET[panel.frequency])
    wide = panel.wide(outcome).reindex(index=expected, columns=units)
    return {u: list(wide.index[wide[u].isna()]) for u in units if wide[u].isna().any()}


def require_no_gaps(
    panel: Panel, outcome: str, units: list[str], start: pd.Timestamp, end: pd.Timestamp, *, max_missing: int = 0
) -> None:
    """Raise :class:`DataError` when a unit misses more than ``max_missing`` periods."""
    gaps = {u: g for u, g in find_gaps(panel, outcome, units, start, end).items() if len(g) > max_missing}
    if gaps:
        lines = [
            f"  {u}: {len(g)} missing, e.g. {', '.join(p.strftime('%Y-%m') for p in g[:6])}" for u, g in gaps.items()
        ]
        raise DataError(
            f"{panel.source}: outcome {outcome!r} has gaps between {start:%Y-%m} and {end:%Y-%m} "
            f"that the analysis cannot tolerate (at most {max_missing} missing periods allowed):\n" + "\n".join(lines)
        )
