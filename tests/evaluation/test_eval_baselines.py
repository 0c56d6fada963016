"""Baselines: majority (exact), random at the prior (analytic expectation), symbolic reasoner."""

from __future__ import annotations

import importlib.util
import json

import pytest

from rlcausality import baselines
from rlcausality.io import write_jsonl

# 10 items, 2 valid (prior 0.2)
ROWS = [
    {
        "id": f"i{i}",
        "input": f"text {i}",
        "label": int(i < 2),
        "relation": "parent" if i % 2 else "child",
        "num_variables": 3,
    }
    for i in range(10)
]


def test_majority():
    m = baselines.majority(ROWS)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["confusion"] == {"tp": 0, "fp": 0, "fn": 2, "tn": 8}


def test_random_at_own_prior():
    m = baselines.random_guess(ROWS)
    p = 0.2
    assert m["expected"] is True and m["prior"] == pytest.approx(p)
    assert m["precision"] == pytest.approx(p)
    assert m["recall"] == pytest.approx(p)
    assert m["f1"] == pytest.approx(p)
    assert m["accuracy"] == pytest.approx(p**2 + (1 - p) ** 2)  # 0.68
    assert m["confusion"]["tp"] == pytest.approx(0.4)
    assert sum(g["n"] for g in m["by_relation"].values()) == 10


def test_random_at_given_prior():
    m = baselines.random_guess(ROWS, prior=0.5)
    assert m["precision"] == pytest.approx(0.2)  # the valid share of the items
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 * 0.2 * 0.5 / 0.7)
    assert m["accuracy"] == pytest.approx(0.5)


def test_symbolic_with_injected_solver():
    answers = {"text 0": 1, "text 1": None, "text 2": 1}
    m = baselines.symbolic(ROWS, solve=lambda text: answers.get(text, 0))
    assert m["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 7}
    assert m["n_unparsed"] == 1  # an inconsistent premise counts as unparsed


def test_cli_writes_json(tmp_path):
    data = tmp_path / "test.jsonl"
    write_jsonl(data, ROWS)
    out = tmp_path / "baselines" / "test.json"
    baselines.main(["--data", str(data), "--out", str(out), "--max-samples", "6"])
    result = json.loads(out.read_text())
    assert result["test_set"] == "test" and result["n"] == 6
    assert set(result["baselines"]) == {"majority", "random", "symbolic"}
    assert len(result["data_sha256"]) == 64
    assert result["provenance"]["settings_hash"]


@pytest.mark.skipif(
    importlib.util.find_spec("rlcausality.corr2cause.symbolic") is None,
    reason="rlcausality.corr2cause.symbolic is not written yet",
)
def test_real_symbolic_reasoner():
    from rlcausality.corr2cause import text

    def make(names, correlations, independences, relation, label):
        premise = text.join_premise(text.header(names), correlations, independences)
        hyp = text.hypothesis(relation, "A", "B")
        return {"input": text.model_input(premise, hyp), "label": label, "relation": relation}

    rows = [
        # A - B only: either direction is possible, so "A directly causes B" is not implied.
        make(("A", "B"), [text.correlation_sentence("A", "B")], [], "parent", 0),
        # A - C - B with A independent of B: C is a collider of A and B.
        make(
            ("A", "B", "C"),
            [text.correlation_sentence("A", "C"), text.correlation_sentence("B", "C")],
            [text.independence_sentence("A", "B", [])],
            "collider",
            1,
        ),
    ]
    m = baselines.symbolic(rows)
    assert m["accuracy"] == 1.0 and m["f1"] == 1.0


@pytest.mark.skipif(
    importlib.util.find_spec("rlcausality.corr2cause.generate") is None
    or importlib.util.find_spec("rlcausality.corr2cause.symbolic") is None,
    reason="rlcausality.corr2cause (generate, symbolic) is not written yet",
)
def test_symbolic_reasoner_on_a_generated_corpus(tmp_path):
    from rlcausality.corr2cause.generate import generate_corpus

    corpus = generate_corpus({"num_variables": [2, 3], "seed": 0})
    for split in ("test", "test_paraphrased", "test_refactored"):
        write_jsonl(tmp_path / f"{split}.jsonl", corpus[split])
        baselines.main(
            ["--data", str(tmp_path / f"{split}.jsonl"), "--out", str(tmp_path / "b.json")]
        )
        result = json.loads((tmp_path / "b.json").read_text())["baselines"]
        assert result["symbolic"]["accuracy"] == 1.0, split
        prior = result["random"]["prior"]
        assert result["random"]["f1"] == pytest.approx(prior)
        assert result["majority"]["accuracy"] == pytest.approx(1 - prior)
