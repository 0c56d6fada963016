"""The stratified sample every model, stage and baseline is scored on."""

from __future__ import annotations

import json
import random
from collections import Counter

from eval_helpers import item

from rlcausality.evaluation import baselines, selection
from rlcausality.io import write_jsonl


def corpus(n: int) -> list[dict]:
    """Items in uneven strata: relation x number of variables."""
    rows = []
    for i in range(n):
        relation = "parent" if i % 10 < 6 else ("collider" if i % 10 < 9 else "confounder")
        rows.append({"id": f"c-{i:04d}", "relation": relation, "num_variables": 2 + i % 2,
                     "input": "x", "label": int(i % 7 == 0)})  # fmt: skip
    return rows


def test_allocation_is_proportional_with_largest_remainder():
    assert selection.allocate({("a",): 5, ("b",): 3, ("c",): 2}, 5) == {
        ("a",): 3,  # 2.5 and 1.5 tie on the remainder: the name that sorts first gets it
        ("b",): 1,
        ("c",): 1,
    }
    assert selection.allocate({("a",): 6, ("b",): 3, ("c",): 1}, 4) == {
        ("a",): 2,  # 2.4
        ("b",): 1,  # 1.2
        ("c",): 1,  # 0.4: the largest remainder
    }
    assert selection.allocate({("a",): 2, ("b",): 1}, 10) == {("a",): 2, ("b",): 1}


def test_sample_keeps_every_stratum_share():
    rows = corpus(1000)
    sample = selection.select_rows(rows, 100)
    population = Counter(selection.stratum(r) for r in rows)
    drawn = Counter(selection.stratum(r) for r in sample)
    assert len(sample) == 100 and len({r["id"] for r in sample}) == 100
    assert drawn == {name: size // 10 for name, size in population.items()}
    # within a stratum, the ids with the smallest stable hash
    parents = sorted(
        (r for r in rows if selection.stratum(r) == ("parent", "2")),
        key=lambda r: selection.subset_key(r["id"]),
    )
    chosen = {r["id"] for r in sample if selection.stratum(r) == ("parent", "2")}
    assert chosen == {r["id"] for r in parents[: len(chosen)]}


def test_sample_ignores_file_order_and_extra_columns():
    rows = [item(i) for i in range(60)]
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    first = [r["id"] for r in selection.select_rows(rows, 17)]
    assert first == [r["id"] for r in selection.select_rows(shuffled, 17)]
    # the corpus file (what the baselines read) has other columns but the same ids and strata
    bare = [{k: r[k] for k in ("id", "relation", "num_variables", "label")} for r in shuffled]
    assert first == [r["id"] for r in selection.select_rows(bare, 17)]
    assert selection.select_rows(rows, None) == rows


def test_baselines_score_the_same_sample(tmp_path):
    rows = corpus(300)
    data = tmp_path / "test.jsonl"
    write_jsonl(data, rows)
    out = tmp_path / "baselines.json"
    baselines.main(["--data", str(data), "--out", str(out), "--max-samples", "30"])
    result = json.loads(out.read_text())
    sample = selection.select_rows(rows, 30)
    assert result["n"] == 30
    majority = result["baselines"]["majority"]
    assert majority["n_valid"] == sum(r["label"] for r in sample)
    by_relation = Counter(r["relation"] for r in sample)
    assert {k: v["n"] for k, v in majority["by_relation"].items()} == dict(by_relation)
