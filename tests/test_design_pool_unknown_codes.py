"""``design_pool`` codes that the data do not hold are refused before any notebook runs, not dropped without a word:
the message names the params file, the site, the field, how many codes and the first few (codes, not data), and the
fix; ``evallib validate`` exits 2 (issue 22, review)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evallib.pipeline.cli import main as cli_main
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import SiteProtocol, design_pool_problem, find_params
from evallib.protocol.paths import ROOT_ENV

from .test_staggered_params import _mapping, _preflight_refuses, _project

pytestmark = pytest.mark.unit

IN_DATA = [f"A{i:02d}" for i in range(5, 15)]  # ten of the example's areas that never start


def _protocol(pool: list[str]) -> SiteProtocol:
    return SiteProtocol.from_mapping(_mapping(design_pool=pool), "p.yaml")


def test_codes_the_data_hold_pass_ignoring_case() -> None:
    assert design_pool_problem(_protocol(IN_DATA), set(IN_DATA)) == ""
    assert design_pool_problem(_protocol(["a05", "A06"]), {"A05", "a06"}) == ""
    assert design_pool_problem(_protocol([]), set()) == ""


def test_unknown_codes_are_counted_and_the_first_few_named_with_the_fix() -> None:
    unknown = [f"Z{i:02d}" for i in range(8)]
    msg = design_pool_problem(_protocol([*IN_DATA, *unknown]), set(IN_DATA))
    assert msg.startswith("field 'design_pool' (site rollout) has 8 codes of 18 that are not a unit of the data")
    assert "(Z00, Z01, Z02, Z03, Z04 and 3 more)" in msg and "Z05" not in msg
    assert "Re-run `evallib design` for the site on this data" in msg and "remove design_pool" in msg
    one = design_pool_problem(_protocol([*IN_DATA, "Z99"]), set(IN_DATA))
    assert "has 1 code of 11 that is not a unit of the data (Z99), so the analysis would drop it" in one


def test_preflight_refuses_a_design_pool_with_a_code_outside_the_data(tmp_path: Path) -> None:
    msg = _preflight_refuses(_project(tmp_path, design_pool=[*IN_DATA, "Z98", "Z99"]))
    assert msg.startswith("params/other/rollout.yaml: field 'design_pool' (site rollout) has 2 codes of 12")
    assert "(Z98, Z99)" in msg


def test_a_design_pool_the_data_hold_passes_preflight(tmp_path: Path) -> None:
    root = _project(tmp_path, design_pool=IN_DATA)
    assert [j.site_id for j in preflight(find_params(root / "params"), root)] == ["rollout"]


def test_evallib_validate_exits_2_naming_the_unknown_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path, design_pool=[*IN_DATA, "Z99"])
    monkeypatch.setenv(ROOT_ENV, str(root))
    monkeypatch.chdir(root)
    assert cli_main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "field 'design_pool' (site rollout) has 1 code of 11 that is not a unit of the data (Z99)" in err
    assert "Traceback" not in err


def test_a_notebook_run_on_its_own_refuses_a_design_pool_code_the_data_lack() -> None:
    # Outside the batch no pre-run check runs: evaluate_site itself refuses, rather than drop the code silently.
    from dataclasses import replace

    from evallib import evaluate_site
    from evallib.errors import ParamsError
    from evallib.protocol.params import load_params

    from .conftest import ROOT

    protocol = load_params(ROOT / "params" / "vanguards" / "V30.yaml")
    assert protocol.design_pool
    with pytest.raises(ParamsError, match=r"field 'design_pool' \(site V30\) has 1 code of \d+ .*\(Z99\)"):
        evaluate_site(replace(protocol, design_pool=(*protocol.design_pool, "Z99")))
