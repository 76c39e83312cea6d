"""The bundled NHS England datasets, loaded read-only into validated panels.

The files live in ``evallib/data/nhs`` (Open Government Licence v3.0, see its
README); they are opened read-only and never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.sources.panel import Frequency, Panel, validate_panel

ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: NHS England, A&E Attendances and Emergency Admissions statistics; "
    "NHS Organisation Data Service."
)


def bundled_data_dir() -> Path:
    """Directory of the bundled NHS England files (read-only)."""
    return Path(str(resources.files("evallib") / "data" / "nhs"))


def _read_bundled_csv(name: str) -> pd.DataFrame:
    path = bundled_data_dir() / name
    with open(path, encoding="utf-8") as fh:  # read-only by construction
        return pd.read_csv(fh, dtype={"org_code": "string"}, keep_default_na=True)


def _load_ae_monthly() -> pd.DataFrame:
    raw = _read_bundled_csv("ae_monthly_2010_2021.csv")
    # Rows without an org_code are non-trust sites or the England total.
    raw = raw[raw["org_code"].notna()]
    return pd.DataFrame(
        {
            "unit": raw["org_code"],
            "period": raw["period"],
            "outcome": "ae_attendances",
            "value": raw["attendances_all_types"],
        }
    )


def _load_ae_attendances() -> pd.DataFrame:
    raw = _read_bundled_csv("ae_attendances.csv")
    by_trust = raw.groupby(["org_code", "period"], as_index=False)[["attendances", "breaches", "admissions"]].sum()
    type1 = raw[raw["type"] == "1"].groupby(["org_code", "period"], as_index=False)["attendances"].sum()
    parts = [
        by_trust.assign(outcome="ae_attendances", value=by_trust["attendances"], denominator=np.nan),
        type1.assign(outcome="ae_type1_attendances", value=type1["attendances"], denominator=np.nan),
        by_trust.assign(outcome="emergency_admissions", value=by_trust["admissions"], denominator=np.nan),
        # Four-hour performance: attendances seen within four hours, out of all attendances.
        by_trust[by_trust["attendances"] > 0].assign(
            outcome="four_hour_performance",
            value=lambda d: d["attendances"] - d["breaches"],
            denominator=lambda d: d["attendances"],
        ),
    ]
    long = pd.concat(parts, ignore_index=True)
    return long.rename(columns={"org_code": "unit"})[["unit", "period", "outcome", "value", "denominator"]]


@dataclass(frozen=True)
class BundledDataset:
    name: str
    description: str
    files: tuple[str, ...]
    outcomes: tuple[str, ...]
    frequency: Frequency
    #: What a unit of the data is, for reports: "trust" or "CCG".
    unit_kind: str = "trust"


BUNDLED: dict[str, BundledDataset] = {
    "ae_monthly_2010_2021": BundledDataset(
        "ae_monthly_2010_2021",
        "NHS England monthly A&E attendances (all types) by trust, Nov 2010 - Dec 2021",
        ("ae_monthly_2010_2021.csv",),
        ("ae_attendances",),
        "monthly",
    ),
    "ae_attendances_2016_2019": BundledDataset(
        "ae_attendances_2016_2019",
        "NHS England monthly A&E attendances, 4-hour performance and emergency admissions by trust, Apr 2016 - Mar 2019",
        ("ae_attendances.csv",),
        ("ae_attendances", "ae_type1_attendances", "emergency_admissions", "four_hour_performance"),
        "monthly",
    ),
}
_LOADERS = {"ae_monthly_2010_2021": _load_ae_monthly, "ae_attendances_2016_2019": _load_ae_attendances}
_CACHE: dict[str, Panel] = {}


def load_bundled(name: str) -> Panel:
    """Load a bundled NHS England dataset as a validated :class:`Panel`.

    Parameters
    ----------
    name : str
        One of ``evallib.sources.bundled.BUNDLED`` (``ae_monthly_2010_2021``, ``ae_attendances_2016_2019``).
    """
    if name not in BUNDLED:
        raise DataError(f"unknown bundled dataset {name!r}; choose one of {', '.join(BUNDLED)}")
    if name not in _CACHE:
        spec = BUNDLED[name]
        _CACHE[name] = validate_panel(_LOADERS[name](), spec.frequency, source=name, files=spec.files)
    return _CACHE[name]
