"""The calibration page: a broken or contradictory params/calibration.csv never blocks publishing and never
publishes a page whose text the table contradicts; the page says what each protocol leads with."""

from __future__ import annotations

from pathlib import Path

import pytest

from evallib.reporting.calibration_page import CalibrationFileError, calibration_context

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "design,site_type,data_source,outcome,estimator,fake_sites,bias,rmse,rejection_rate,rejection_mc_se,"
    "median_width,holds_size,chosen\n"
)


def _project(tmp_path: Path, text: str | bytes) -> tuple[Path, Path]:
    (tmp_path / "params").mkdir()
    path = tmp_path / "params" / "calibration.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    return tmp_path, outputs


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    ["", "\n\n", HEADER + 'd1,"ICS,src,o,did,29,0.1\n', b"\xff\xfe\x00garbage"],
    ids=["empty", "blank-lines", "unclosed-quote", "not-utf8"],
)
def test_a_broken_calibration_csv_never_blocks_publishing(tmp_path: Path, text: str | bytes) -> None:
    # build_site raises the pandas/codec error today (EmptyDataError, ParserError, UnicodeDecodeError) and leaves
    # outputs/.site-staging-<pid>/ behind: one optional page stops the whole site being published.
    from evallib.reporting.static_site import build_site

    root, outputs = _project(tmp_path, text)
    problems: list[str] = []
    build_site(outputs, root=root, problems=problems)
    assert not (outputs / "site" / "calibration.html").exists()
    assert any("calibration" in p for p in problems), problems
    assert not list(outputs.glob(".site-staging-*"))


@pytest.mark.unit
def test_a_calibration_csv_without_the_needed_columns_is_skipped_with_a_reason(tmp_path: Path) -> None:
    from evallib.reporting.static_site import build_site

    root, outputs = _project(tmp_path, "design,estimator\nd,did\n")
    problems: list[str] = []
    build_site(outputs, root=root, problems=problems)
    assert not (outputs / "site" / "calibration.html").exists()
    assert any("calibration" in p for p in problems), problems  # today: silently no page, no reason


@pytest.mark.unit
def test_values_that_are_not_a_studys_output_are_refused_not_printed(tmp_path: Path) -> None:
    root, _ = _project(tmp_path, HEADER + "d1,ICS,src,o,did,29,1e308,1e308,1e308,1e308,1e308,True,True\n")
    with pytest.raises(CalibrationFileError, match="out of range"):
        calibration_context(root)


@pytest.mark.unit
@pytest.mark.parametrize("chosen", ["False", "True\nd1,ICS,src,o,rate_ratio,29,0.001,0.05,0.05,0.04,0.2,True,True"])
def test_each_design_needs_exactly_one_chosen_method_that_holds_its_size(tmp_path: Path, chosen: str) -> None:
    from evallib.reporting.static_site import build_site

    good = "d1,ICS,src,o,did,29,0.001,0.05,0.05,0.04,0.2,True,"
    root, outputs = _project(tmp_path, HEADER + good + chosen + "\n")
    problems: list[str] = []
    build_site(outputs, root=root, problems=problems)
    assert not (outputs / "site" / "calibration.html").exists()
    assert any("exactly one chosen" in p for p in problems), problems


@pytest.mark.unit
def test_the_page_names_what_every_protocol_leads_with() -> None:
    # Protocols of a kind lead with the method most precise over all designs of that kind, which can differ from a
    # design's own choice (V40's design chose the synthetic control): the page must say what the protocols do.
    from evallib.evaluation.studies.calibration import designs
    from evallib.protocol.params import load_params
    from evallib.vocabulary import ESTIMATOR_LABELS

    protocols = [load_params(p) for p in sorted((ROOT / "params").glob("*/*.yaml"))]
    by_id = {p.site_id: p for p in protocols}
    ctx = calibration_context(ROOT)
    assert ctx is not None
    lead = {d["name"]: d["lead"] for d in ctx["designs"]}
    wrong = [
        (s, by_id[s].primary_estimator, lead[d.name])
        for d in designs(protocols)
        for s in d.sites
        if ESTIMATOR_LABELS[by_id[s].primary_estimator] != lead[d.name]
    ]
    assert wrong == []
    assert any(d["lead"] != d["chosen"] for d in ctx["designs"])  # the case the page's wording exists for
