"""Splits, naming schemes, robustness sets, determinism and the generate CLI."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rlcausality.data.corpus import main
from rlcausality.data.corr2cause import generate, symbolic, text
from rlcausality.io import read_jsonl

SMALL = {"num_variables": [2, 5]}


@pytest.fixture(scope="module")
def canonical() -> dict[str, list[dict]]:
    return generate.generate_corpus(SMALL)


@pytest.fixture(scope="module")
def shuffled() -> dict[str, list[dict]]:
    return generate.generate_corpus({**SMALL, "naming": "shuffled", "seed": 3})


def test_splits_are_disjoint_whole_classes(canonical: dict) -> None:
    owner: dict[str, str] = {}
    premise_owner: dict[str, str] = {}
    for split in ("train", "validation", "test"):
        for row in canonical[split]:
            assert owner.setdefault(row["class_id"], split) == split
            assert premise_owner.setdefault(row["premise"], split) == split
    sizes = {s: len({r["class_id"] for r in canonical[s]}) for s in ("train", "validation", "test")}
    total = sum(sizes.values())
    assert total == 2 + 5 + 20 + 142
    assert abs(sizes["train"] / total - 0.8) < 0.02
    # stratified: every n >= 4 appears in every split
    for split in ("train", "validation", "test"):
        assert {r["num_variables"] for r in canonical[split]} >= {4, 5}


def test_ids_unique_and_deterministic(canonical: dict) -> None:
    ids = [row["id"] for rows in canonical.values() for row in rows]
    assert len(ids) == len(set(ids))
    again = generate.generate_corpus(SMALL)
    assert again == canonical
    other_seed = generate.generate_corpus({**SMALL, "seed": 1})
    assert {r["class_id"] for r in other_seed["test"]} != {r["class_id"] for r in canonical["test"]}


def test_canonical_child_never_valid(canonical: dict) -> None:
    rows = [r for split in ("train", "validation", "test") for r in canonical[split]]
    valid = Counter(r["relation"] for r in rows if r["label"] == 1)
    assert valid["child"] == 0 and valid["non-child descendant"] == 0
    assert valid["parent"] > 0


def test_shuffled_child_as_often_as_parent(shuffled: dict) -> None:
    rows = [r for split in ("train", "validation", "test") for r in shuffled[split]]
    valid = Counter(r["relation"] for r in rows if r["label"] == 1)
    assert valid["child"] > 0
    assert 0.75 < valid["child"] / valid["parent"] < 1.33
    assert 0.6 < valid["non-child descendant"] / valid["non-parent ancestor"] < 1.66
    # the letters really are permuted: some premise lists an edge pointing backwards
    assert any("B directly causes A." in r["input"] and r["label"] for r in rows)


def test_robustness_sets_mirror_test(canonical: dict) -> None:
    test = canonical["test"]
    for split, suffix in (("test_paraphrased", "-paraphrased"), ("test_refactored", "-refactored")):
        variant = canonical[split]
        assert [r["id"] for r in variant] == [r["id"] + suffix for r in test]
        assert [r["label"] for r in variant] == [r["label"] for r in test]
        assert [r["relation"] for r in variant] == [r["relation"] for r in test]
        assert [r["class_id"] for r in variant] == [r["class_id"] for r in test]
    para = canonical["test_paraphrased"]
    assert all(r["premise"] == t["premise"] for r, t in zip(para, test, strict=True))
    assert any(r["hypothesis"].endswith("through some mediator(s).") for r in para)
    refac = canonical["test_refactored"]
    assert all(" A " not in r["input"] and "Z" in r["premise"] for r in refac)


def test_caps_sample_the_same_items() -> None:
    corpus = generate.generate_corpus(
        {**SMALL, "max_items": {"train": 100, "test": 40, "validation": None}}
    )
    assert len(corpus["train"]) == 100 and len(corpus["test"]) == 40
    assert len(corpus["test_refactored"]) == 40
    assert [r["id"] + "-refactored" for r in corpus["test"]] == [
        r["id"] for r in corpus["test_refactored"]
    ]
    assert len(corpus["validation"]) > 100


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="num_variables"):
        generate.parse_settings({"num_variables": [2, 7]})
    with pytest.raises(ValueError, match="sum to 1"):
        generate.parse_settings({"splits": {"train": 0.5}})
    with pytest.raises(ValueError, match="naming"):
        generate.parse_settings({"naming": "random"})


@pytest.mark.parametrize("naming", text.NAMINGS)
@pytest.mark.parametrize("phrasing", list(text.TEMPLATES))
def test_round_trip(naming: str, phrasing: str) -> None:
    corpus = generate.generate_corpus(
        {"num_variables": [2, 5], "naming": naming, "phrasing": phrasing, "seed": 7}
    )
    corpus6 = generate.generate_corpus(
        {
            "num_variables": [6, 6],
            "naming": naming,
            "phrasing": phrasing,
            "seed": 7,
            "robustness": False,
            "splits": {"test": 0.05, "rest": 0.95},
        }
    )
    rows = [r for rs in corpus.values() for r in rs] + corpus6["test"]
    for row in rows:
        parsed = text.parse_input(row["input"])
        assert parsed.premise_text == row["premise"]
        assert parsed.hypothesis_text == row["hypothesis"]
        assert parsed.relation == row["relation"]
        assert parsed.num_variables == row["num_variables"]
        assert symbolic.label(row["input"]) == row["label"], row["id"]


def test_cli_generate_writes_everything(tmp_path, capsys) -> None:
    outdir = tmp_path / "corpus"
    settings = {**SMALL, "naming": "shuffled", "max_items": {"train": 50}}
    assert main(["generate", "--settings", json.dumps(settings), "--outdir", str(outdir)]) == 0
    names = sorted(p.name for p in outdir.iterdir())
    assert names == sorted(
        [f"{s}.jsonl" for s in ("train", "validation", "test")]
        + ["test_paraphrased.jsonl", "test_refactored.jsonl", "stats.json"]
    )
    stats = json.loads((outdir / "stats.json").read_text())
    train = list(read_jsonl(outdir / "train.jsonl"))
    assert len(train) == 50 == stats["splits"]["train"]["items"]
    assert set(train[0]) == {
        "id", "input", "label", "premise", "hypothesis", "relation", "num_variables", "class_id"
    }  # fmt: skip
    assert stats["splits"]["test"]["by_relation"]["parent"]["items"] > 0
    assert "positive_rate" in stats["splits"]["validation"]


def test_cli_generate_bad_settings_exit_2(tmp_path, capsys) -> None:
    code = main(["generate", "--settings", '{"naming": "x"}', "--outdir", str(tmp_path / "o")])
    assert code == 2
    assert "naming" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
