"""Every site's results as one tidy table, for analysts: :func:`results_table` in JupyterLab, and the
published downloads (``results.csv``, ``results.parquet``, ``sites.csv``) with their data dictionary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from evallib.methods.base.results import TIDY_COLUMNS
from evallib.reporting.publishing import NOT_SITES, read_json, verified_fingerprint

#: Columns of :func:`results_table` before the tidy row's own, with their meaning (the data dictionary).
SITE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("site_id", "the site's registry id (V01-V50 vanguards, I01-I45 ICSs)"),
    ("site_name", "the site's name"),
    ("site_type", "vanguard, ICS or other"),
    ("care_model", "PACS, MCP, EHCH, UEC, ACC, ICS or other"),
    ("status", "evaluated or not evaluable"),
    ("primary_outcome", "the protocol's pre-specified primary outcome"),
    ("expected_direction", "the change the protocol hoped for: decrease or increase"),
    ("primary", "true on the row of the protocol's primary estimate (the one the summary and index lead with)"),
)
TIDY_MEANINGS: dict[str, str] = {
    "outcome": "the outcome this row estimates an effect on",
    "term": "which quantity: treated_x_post (the DiD effect), level_change, slope_change, effect_at_h, event_time_k, ...",
    "estimate": "the estimate on the row's scale (see scale)",
    "std_error": "its standard error (for placebo inference: the spread of the placebo estimates)",
    "ci_low": "lower end of the 95% interval (empty when unbounded)",
    "ci_high": "upper end of the 95% interval (empty when unbounded)",
    "p_value": "two-sided p-value of no effect, from the test named in inference",
    "method": "the estimator (did_twfe, did_poisson_fe, its_controlled_placebo, synthetic_control_outcome, ...)",
    "inference": "how the p-value and interval were made (placebo_in_space, ar1_reml_bootstrap_t, ...)",
    "scale": "how to read the estimate (values below)",
    "n_treated": "number of the site's units in the estimate",
    "n_control": "number of comparison units",
}
SCALES: tuple[tuple[str, str], ...] = (
    ("log", "difference in natural logs: 100 (exp(estimate) - 1) is the percent change"),
    ("log_per_year", "difference in yearly growth, in log points"),
    ("percentage_points", "difference in a percentage (a share of a whole, such as four-hour performance)"),
    ("percentage_points_per_year", "difference in the yearly trend of a percentage"),
    ("rate_ratio", "ratio of rates (1 = no change)"),
    ("percent", "percent change (already computed)"),
    ("count", "a number of events (a model output: not rounded)"),
    ("level", "difference in the outcome's own units"),
    ("statistic", "a test statistic (read its p-value); no interval"),
)
SITES_COLUMNS: tuple[tuple[str, str], ...] = (
    *[c for c in SITE_COLUMNS if c[0] != "primary"],
    ("reason", "why the site is not evaluable (empty otherwise)"),
    ("estimator", "the protocol's primary estimator"),
    ("scale", "scale of the primary estimate"),
    ("estimate", "the primary estimate"),
    ("ci_low", "lower end of its 95% interval"),
    ("ci_high", "upper end of its 95% interval"),
    ("p_value", "its p-value"),
    (
        "placebo_draws",
        "random placebo assignments the p-value ranks the site among, when they were sampled (several treated units, "
        "or past 500 units for the estimators that refit); empty when every assignment was tried",
    ),
    ("p_value_mc_error", "the sampled p-value's Monte Carlo standard error; empty when every assignment was tried"),
    ("conclusion", "decrease, increase or no clear effect (clear when p is at most 0.05, as the interval)"),
    (
        "direction",
        "hoped for, opposite or unclear; with the verdict it gives the index's marker (good, bad, not confirmed, unclear)",
    ),
    ("robustness_verdict", "confirmed, not confirmed or no clear effect"),
    ("minimum_detectable_effect", "smallest change the design would detect with 80% power (log scale, or points)"),
    ("cautions", "the report's cautions, separated by ' | '"),
)


#: First characters that make a spreadsheet read a cell as a formula (or a DDE command): ``=``, ``+``, ``-``,
#: ``@``, tab and carriage return (OWASP's list for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` for a CSV download: every text cell that a spreadsheet would run as a formula gets a
    leading single quote (``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``), so it opens as text.

    Only text cells change: numbers (negative estimates included) stay numbers. The parquet and JSON
    downloads keep the exact text.
    """
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = [f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v for v in out[c]]
    return out


def _site_values(res: Mapping[str, Any]) -> dict[str, Any]:
    return {k: res.get(k, "") for k, _ in SITE_COLUMNS if k != "primary"}


def results_frame(results: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One tidy DataFrame of the rows of several ``results.json`` contents (site columns first)."""
    rows = []
    for res in results:
        answer = res.get("answer") or {}
        site = _site_values(res)
        for r in res.get("results", []):
            primary = (
                bool(answer)
                and r.get("method") == answer.get("method")
                and r.get("term") == answer.get("term")
                and r.get("inference") == answer.get("inference")
                and r.get("outcome") == res.get("primary_outcome")
            )
            rows.append({**site, "primary": primary, **{c: r.get(c) for c in TIDY_COLUMNS}})
    columns = [c for c, _ in SITE_COLUMNS] + list(TIDY_COLUMNS)
    frame = pd.DataFrame(rows, columns=columns)
    for c in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    for c in ("n_treated", "n_control"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("Int64")
    frame["primary"] = frame["primary"].astype(bool)
    return frame


def sites_frame(results: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per site: status, primary estimate, verdict and cautions."""
    rows = []
    for res in results:
        a = res.get("answer") or {}
        rows.append(
            {
                **_site_values(res),
                "reason": res.get("reason", ""),
                **{k: a.get(k) for k in ("estimator", "scale", "estimate", "ci_low", "ci_high", "p_value")},
                # Only a sampled p-value has them (results.json writes neither for an exhaustive one): empty cells.
                **{k: a.get(k) for k in ("placebo_draws", "p_value_mc_error")},
                "conclusion": a.get("conclusion", ""),
                "direction": a.get("direction", ""),
                "robustness_verdict": a.get("robustness_verdict", ""),
                "minimum_detectable_effect": a.get("minimum_detectable_effect"),
                "cautions": " | ".join(res.get("flags") or []),
            }
        )
    frame = pd.DataFrame(rows, columns=[c for c, _ in SITES_COLUMNS])
    frame["placebo_draws"] = pd.to_numeric(frame["placebo_draws"], errors="coerce").astype("Int64")  # 999, not 999.0
    frame["p_value_mc_error"] = pd.to_numeric(frame["p_value_mc_error"], errors="coerce").astype(float)
    return frame


def _read(path: Path) -> dict[str, Any] | None:
    value = read_json(path)  # a link not followed, a FIFO not waited on
    return value if value is not None and "site_id" in value else None


def results_table(outputs: str | Path = "outputs", *, verified_only: bool = False) -> pd.DataFrame:
    """Every site's results in ``outputs/`` as one tidy DataFrame, one row per estimate.

    Parameters
    ----------
    outputs : str or Path
        The batch's outputs folder (``outputs/`` of the project), or any folder of ``<site>/results.json``.
    verified_only : bool
        Only results that match the run record and page that made them (what the public site shows).

    Returns
    -------
    DataFrame
        Site columns (``site_id``, ``site_name``, ``site_type``, ``care_model``, ``status``,
        ``primary_outcome``, ``expected_direction``, ``primary``) followed by the tidy columns
        (:data:`evallib.methods.base.results.TIDY_COLUMNS`); ``primary`` marks each site's primary estimate.
        Sites that were not evaluable have no rows: see :func:`sites_frame` for one row per site.

    Examples
    --------
    >>> t = results_table("outputs")                                   # doctest: +SKIP
    >>> t[t["primary"]].groupby("care_model")["estimate"].describe()   # doctest: +SKIP
    """
    root = Path(outputs)
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name in NOT_SITES:
            continue
        res = _read(folder / "results.json")
        if res is None or (verified_only and verified_fingerprint(folder) is None):
            continue
        found.append(res)
    return results_frame(found)
