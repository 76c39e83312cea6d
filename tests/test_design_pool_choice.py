"""The comparison pool chosen at design time: the conservative rule, data before the start only, the choices file
written into the generated params files as ``design_pool``, the field restricting the analysis's comparators, and
``evallib design SITE --write`` refusing once the site has results."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from evallib import SiteProtocol
from evallib.errors import ParamsError
from evallib.evaluation.site.coverage import analysis_frame
from evallib.evaluation.studies.design import POOL_MARGIN, TABLE_COLUMNS, SiteDesign
from evallib.pipeline.cli import main
from evallib.pipeline.preregister import design_for_choice, with_design_pool, write_site_choice
from evallib.protocol.generator import DESIGN_POOLS_FILE, chosen_pools, edited_by_hand, write_params
from evallib.protocol.params import load_params

from .conftest import ROOT, simulated_panel, simulated_site


def _design(mdes: dict[str, tuple[float, bool]]) -> SiteDesign:
    """A design result whose primary test has the given (MDE, holds size) per pool at the protocol's follow-up."""
    rows = [
        {c: np.nan for c in TABLE_COLUMNS}
        | {
            "estimator": "did",
            "pool": pool,
            "follow_up": 24,
            "mde": mde,
            "mde_percent": 100 * mde,
            "holds_size": holds,
        }
        for pool, (mde, holds) in mdes.items()
    ]
    return SiteDesign(
        site_id="X",
        outcome="admissions",
        scale="log",
        expected_direction="decrease",
        primary_estimator="did",
        planned_start=pd.Timestamp("2016-04-01"),
        history=(pd.Timestamp("2011-04-01"), pd.Timestamp("2016-03-01")),
        protocol_follow_up=24,
        pre_periods=36,
        hoped_for_percent=5.0,
        share=1.0,
        hoped_for_area=-0.05,
        pool_units={pool: (f"U{i:02d}", f"U{i + 1:02d}") for i, pool in enumerate(mdes)},
        table=pd.DataFrame(rows, columns=TABLE_COLUMNS),
        curves=pd.DataFrame(),
    )


def test_the_rule_keeps_the_protocol_pool_unless_another_is_clearly_more_precise() -> None:
    small_gain = 0.10 * (1 - POOL_MARGIN / 2)
    assert _design({"protocol": (0.10, True), "nearest": (small_gain, True)}).recommended_pool == "protocol"
    assert _design({"protocol": (0.10, True), "nearest": (0.10 * (1 - POOL_MARGIN), True)}).recommended_pool == (
        "nearest"
    )
    # A more precise pool that does not hold its size at fake starts is never chosen.
    assert _design({"protocol": (0.10, True), "nearest": (0.05, False)}).recommended_pool == "protocol"
    # A protocol pool that cannot reach 80% power at all gives way to any pool that can and holds its size.
    assert _design({"protocol": (np.inf, True), "same_region": (0.30, True)}).recommended_pool == "same_region"
    kept = _design({"protocol": (0.10, True), "nearest": (0.097, True)}).choice()
    assert kept["pool"] == "protocol" and kept["units"] == "" and kept["data_end"] == "2016-03"
    moved = _design({"protocol": (0.10, True), "nearest": (0.05, True)}).choice()
    assert moved["pool"] == "nearest" and moved["units"] == "U01 U02" and moved["mde_chosen"] == 5.0


def test_the_chosen_pool_reads_only_data_before_the_start() -> None:
    protocol, long = _site()
    before = design_for_choice(protocol, _panel(long))
    changed = long.copy()
    after = pd.to_datetime(changed["period"]) >= "2013-04-01"
    rng = np.random.default_rng(1)
    changed.loc[after, "value"] = np.round(changed.loc[after, "value"] * rng.uniform(0.2, 5.0, after.sum())) + 1
    again = design_for_choice(protocol, _panel(changed))
    assert before.choice() == again.choice()
    assert before.choice()["data_end"] == "2013-03"  # the month before the start
    assert set(before.table["pool"]) == {"protocol", "nearest"}  # the pools ranked (no NHS region here)


def test_a_design_pool_in_the_protocol_is_set_aside_when_the_pool_is_chosen_again() -> None:
    protocol, long = _site()
    first = design_for_choice(protocol, _panel(long))
    fixed = replace(protocol, design_pool=first.pool_units["nearest"])
    assert design_for_choice(fixed, _panel(long)).choice() == first.choice()


def test_design_pool_restricts_the_comparators_to_the_chosen_units() -> None:
    protocol, long = _site()
    panel = _panel(long)
    d = design_for_choice(protocol, panel)
    chosen = d.pool_units["nearest"]
    fixed = SiteProtocol.from_mapping({**protocol.to_mapping(), "design_pool": list(chosen)})
    _, _, cov = analysis_frame(fixed, panel, protocol.primary_outcome)
    assert cov.comparators == tuple(sorted(chosen)) and len(chosen) < len(d.pool_units["protocol"])
    # A unit the rules leave out stays out even when listed: design_pool restricts, never adds.
    outside = next(u for u in d.pool_units["protocol"] if u not in chosen)
    ruled = SiteProtocol.from_mapping(
        {**protocol.to_mapping(), "comparison_include": list(chosen), "design_pool": [*chosen[:20], outside]}
    )
    _, _, cov = analysis_frame(ruled, panel, protocol.primary_outcome)
    assert cov.comparators == tuple(sorted(chosen[:20]))


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"design_pool": ["T000"]}, "repeats T000 from treated_units"),
        ({"design_pool": ["T001"], "comparison_exclude": ["T001"]}, "repeats T001 from comparison_exclude"),
        ({"design_pool": [7]}, "Quote every code"),
    ],
)
def test_a_bad_design_pool_is_refused_naming_the_field(extra: dict[str, object], problem: str) -> None:
    protocol, _ = _site(n_units=5)
    with pytest.raises(ParamsError, match="design_pool") as info:
        SiteProtocol.from_mapping({**protocol.to_mapping(), **extra})
    assert problem in str(info.value)


def test_the_generator_writes_the_chosen_pool_with_a_design_time_comment(tmp_path: Path) -> None:
    units = ["02A", "02E", "02F", "02G", "02H"]  # CCGs outside every vanguard
    pd.DataFrame(
        [
            {"site_id": "V01", "estimator": "synthetic_did", "follow_up": 36, "data_end": "2015-03", "pool": "nearest"}
            | {
                "n_comparators": 5,
                "mde_protocol": 6.1,
                "mde_chosen": 4.2,
                "alternatives": "",
                "units": " ".join(units),
            },
            {"site_id": "V02", "estimator": "synthetic_did", "follow_up": 36, "data_end": "2015-03", "pool": "protocol"}
            | {
                "n_comparators": 150,
                "mde_protocol": 5.0,
                "mde_chosen": 5.0,
                "alternatives": "nearest 4.80",
                "units": "",
            },
        ]
    ).to_csv(tmp_path / DESIGN_POOLS_FILE, index=False)
    assert chosen_pools(tmp_path)["V01"]["units"] == " ".join(units)
    write_params(tmp_path)
    v01 = (tmp_path / "vanguards" / "V01.yaml").read_text()
    assert 'design_pool: ["02A", "02E", "02F", "02G", "02H"]' in v01
    comment = next(line for line in v01.splitlines() if line.startswith("# design_pool:"))
    assert "fixed at design time" in comment and "2015-03" in comment and "before the start" in comment
    assert load_params(tmp_path / "vanguards" / "V01.yaml").design_pool == tuple(units)
    assert not edited_by_hand(v01)  # the comment is outside the hashed content
    v02 = load_params(tmp_path / "vanguards" / "V02.yaml")
    assert v02.design_pool == () and "protocol's own pool kept" in (tmp_path / "vanguards" / "V02.yaml").read_text()


def test_the_committed_params_files_carry_the_committed_choices() -> None:
    choices = chosen_pools(ROOT / "params")
    assert choices, "params/design_pools.csv is missing: run `evallib design --all --write-choices`"
    for site, row in choices.items():
        (path,) = [p for p in (ROOT / "params").rglob(f"{site}.yaml")]
        assert load_params(path).design_pool == tuple(row["units"].split()), site
        assert "# design_pool: fixed at design time" in path.read_text(), site


def test_write_refuses_once_the_site_has_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "params" / "vanguards").mkdir(parents=True)
    shutil.copy(ROOT / "params" / "vanguards" / "V01.yaml", tmp_path / "params" / "vanguards" / "V01.yaml")
    (tmp_path / "outputs" / "V01").mkdir(parents=True)
    (tmp_path / "outputs" / "V01" / "results.json").write_text("{}")
    before = (tmp_path / "params" / "vanguards" / "V01.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["design", "V01", "--write", "--params-dir", "params"]) == 2
    err = capsys.readouterr().err
    assert "already has results" in err and "--force" in err and "outputs/V01/results.json" in err
    assert (tmp_path / "params" / "vanguards" / "V01.yaml").read_text() == before


def test_write_puts_the_chosen_pool_into_an_own_data_params_file(tmp_path: Path) -> None:
    protocol, long = _site()
    path = tmp_path / "SIM.yaml"
    path.write_text("# my protocol\n" + yaml.safe_dump(protocol.to_mapping(), sort_keys=False) + "# last line kept\n")
    result = design_for_choice(protocol, _panel(long))
    said = write_site_choice(tmp_path, path, result)
    written = load_params(path)
    pool = result.recommended_pool
    assert written.design_pool == (() if pool == "protocol" else tuple(result.pool_units[pool]))
    text = path.read_text()
    assert "# my protocol" in text and "# last line kept" in text and "fixed at design time" in text
    assert said.startswith("Wrote design_pool") and path.name in said
    # Results now exist: refused without --force, written (and said so in the comment) with it.
    (tmp_path / "scratch" / "SIM").mkdir(parents=True)
    (tmp_path / "scratch" / "SIM" / "results.json").write_text("{}")
    with pytest.raises(ParamsError, match="already has results"):
        write_site_choice(tmp_path, path, result)
    write_site_choice(tmp_path, path, result, force=True)
    assert "written after results existed (--force)" in path.read_text()
    assert path.read_text().count("design_pool:") == 2  # the comment and the field, each once


def test_with_design_pool_replaces_a_block_list_in_place() -> None:
    text = 'site_id: "A"\ndesign_pool:\n  - "X1"\n  - "X2"\nseed: 3\n'
    out = with_design_pool(text, ["Y1"], "chosen")
    assert yaml.safe_load(out) == {"site_id": "A", "design_pool": ["Y1"], "seed": 3}
    assert out.splitlines()[1] == "# design_pool: chosen"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["design"], "name a site"),
        (["design", "--all"], "--all and --write-choices together"),
        (["design", "V01", "--all", "--write-choices"], "without a site"),
    ],
)
def test_the_design_command_says_how_to_choose_every_pool(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--params-dir", str(ROOT / "params")]) == 2
    assert says in capsys.readouterr().err


def test_writing_the_choice_never_follows_a_planted_link(tmp_path: Path) -> None:
    """A link planted at the temporary name, or a params file that is itself a link, writes nothing outside the
    folder (adversarial review: the first version wrote the params text through ``SIM.yaml.tmp``)."""
    from evallib.errors import EvalLibError

    protocol, long = _site()
    result = design_for_choice(protocol, _panel(long))
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    path = tmp_path / "SIM.yaml"
    path.write_text(yaml.safe_dump(protocol.to_mapping(), sort_keys=False))
    (tmp_path / "SIM.yaml.tmp").symlink_to(outside)
    write_site_choice(tmp_path, path, result)
    assert outside.read_text() == "keep" and not path.is_symlink()
    linked = tmp_path / "LINKED.yaml"
    linked.symlink_to(path)
    with pytest.raises(EvalLibError):
        write_site_choice(tmp_path, linked, result)
    assert outside.read_text() == "keep"


def _site(n_units: int = 60, seed: int = 5) -> tuple[SiteProtocol, pd.DataFrame]:
    """A simulated site: 48 months before an April 2013 start, 36 months of follow-up, the DiD as primary."""
    return simulated_site(n_units, 84, 48, first_month="2009-04", seed=seed, primary_estimator="did")


_panel = simulated_panel
