"""The domain's words have one home, evallib/vocabulary.py: each is defined there once, no other module keeps its
own copy, and every name the code can produce (bundled outcome, frequency, kind of unit, estimator) has its words."""

from __future__ import annotations

import ast
import typing

import pytest

from evallib import vocabulary
from evallib.evaluation.studies.calibration import CONTRASTS
from evallib.protocol.params import PRIMARY_ESTIMATORS
from evallib.sources.bundled import BUNDLED
from evallib.sources.panel import Frequency
from evallib.vocabulary import (
    CONTRAST_LABELS,
    ESTIMATOR_LABELS,
    PERIOD_WORDS,
    estimator_label,
    outcome_label,
    period_word,
    plural,
    unit_plural,
)

from .conftest import ROOT

pytestmark = pytest.mark.unit

PACKAGE = ROOT / "evallib"
HOME = PACKAGE / "vocabulary.py"
#: Every dictionary of words the vocabulary holds, by name.
WORDS = {n: v for n, v in vars(vocabulary).items() if n.isupper() and isinstance(v, dict)}


def _trees() -> list[tuple[str, ast.Module]]:
    return [
        (str(p.relative_to(PACKAGE)), ast.parse(p.read_text(encoding="utf-8")))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p != HOME and "__pycache__" not in p.parts
    ]


def test_the_vocabulary_holds_the_words_of_every_kind() -> None:
    assert set(WORDS) >= {
        "OUTCOME_LABELS",
        "PERIOD_WORDS",
        "UNIT_PLURALS",
        "ESTIMATOR_LABELS",
        "CONTRAST_LABELS",
        "INFERENCE_LABELS",
        "METHOD_LABELS",
        "TERM_LABELS",
    }


def test_no_other_module_defines_a_word_the_vocabulary_holds() -> None:
    """No module defines the vocabulary's names or functions again at its top level (importing them is fine)."""
    names = set(WORDS) | {n for n, v in vars(vocabulary).items() if callable(v) and not n.startswith("_")}
    names -= {"annotations"}
    defined = []
    for rel, tree in _trees():
        for node in tree.body:
            targets = []
            if isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets = [node.target.id]
            elif isinstance(node, ast.FunctionDef):
                targets = [node.name]
            defined += [f"{rel}: {t}" for t in targets if t in names]
    assert defined == []


def test_no_other_module_keeps_its_own_copy_of_the_words() -> None:
    """No dictionary elsewhere repeats an entry of the vocabulary's (a copy under another name)."""
    entries = {(k, v) for d in WORDS.values() for k, v in d.items()}
    copies = []
    for rel, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                pairs = {
                    (k.value, v.value)
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                }
                copies += [f"{rel}:{node.lineno} {k!r}: {v!r}" for k, v in sorted(pairs & entries)]
    assert copies == []


def test_every_outcome_frequency_and_estimator_the_code_knows_has_its_words() -> None:
    outcomes = {o for d in BUNDLED.values() for o in d.outcomes}
    assert outcomes <= set(vocabulary.OUTCOME_LABELS)
    assert set(typing.get_args(Frequency)) == set(PERIOD_WORDS)
    assert {d.unit_kind for d in BUNDLED.values()} <= set(vocabulary.UNIT_PLURALS)
    assert set(PRIMARY_ESTIMATORS) == set(ESTIMATOR_LABELS)
    assert set(CONTRASTS) == set(CONTRAST_LABELS)


def test_words_for_names_the_vocabulary_does_not_hold() -> None:
    assert outcome_label("bed_days") == "bed days"
    assert unit_plural("CCG") == "CCGs" and unit_plural("practice") == "practices" and unit_plural("GPs") == "GPs"
    assert period_word("daily") == "period" and period_word("weekly") == "week"
    assert plural(1, "month") == "1 month" and plural(1200, "month") == "1,200 months"
    assert estimator_label("did_cr1").startswith("difference-in-differences, cluster-robust")
    assert estimator_label("something_new") == "something_new"
