"""`benchmarks/curve.py`: the learning-curve table, on a generated corpus and the baselines'
real answers (the exact reasoner stands in for a trained model: its F1 is known)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from benchmarks import curve
from rlcausality.data.chat_format import oracle_trace
from rlcausality.data.corr2cause.generate import generate_corpus
from rlcausality.evaluation import baselines
from rlcausality.evaluation.metrics import compute_metrics
from rlcausality.evaluation.uncertainty import add_intervals
from rlcausality.io import read_json, read_jsonl, write_json, write_jsonl
from rlcausality.task import trace_completion


@pytest.fixture(scope="module")
def test_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("curve")
    splits = {"train": 0.5, "validation": 0.1, "test": 0.4}  # 68 test classes, 512 valid items
    corpus = generate_corpus({"num_variables": [2, 5], "robustness": False, "splits": splits})
    for split in ("train", "test"):
        write_jsonl(out / f"{split}.jsonl", corpus[split])
    baselines.main(
        ["--data", str(out / "test.jsonl"), "--train", str(out / "train.jsonl"),
         "--out", str(out / "test.json"), "--predictions", str(out / "test.predictions.jsonl")]
    )  # fmt: skip
    return out


def evaluation_folder(root: Path, name: str, answer: str) -> Path:
    """An evaluation folder whose predictions are one baseline's per-item answers."""
    rows = list(read_jsonl(root / "test.predictions.jsonl"))
    predictions = [{**row, "answer": row["answers"][answer]} for row in rows]
    folder = root / name
    folder.mkdir()
    write_jsonl(folder / "predictions.jsonl", predictions)
    write_json(folder / "metrics.json", add_intervals(compute_metrics(predictions), predictions))
    return folder


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_the_exact_reasoner_beats_both_baselines_by_their_f1_gap(test_set: Path) -> None:
    folder = evaluation_folder(test_set, "symbolic", "symbolic")
    text = curve.table([("exact", folder)], test_set / "test.json")
    head, _, row = text.splitlines()
    assert cells(head)[0] == "run" and len(cells(row)) == len(cells(head))
    label, n, f1, yes, trace, pairs, consistent, lists_f1, vs_valid, vs_prior = cells(row)
    found = read_json(test_set / "test.json")["baselines"]
    assert label == "exact" and int(n) == found["symbolic"]["n"]
    assert f1.startswith("1.000 [1.00, 1.00]")
    assert int(yes) == found["symbolic"]["confusion"]["tp"]
    assert trace == pairs == consistent == lists_f1 == "–"  # no oracle trace in these rows
    for cell, name in ((vs_valid, "always_valid"), (vs_prior, "relation_prior")):
        delta = float(cell.split()[0])
        assert delta == pytest.approx(1 - found[name]["f1"], abs=5e-4)
        low = float(cell.split("[")[1].split(",")[0])
        assert 0 < low <= delta


def test_a_run_equal_to_a_baseline_differs_from_it_by_zero(test_set: Path) -> None:
    folder = evaluation_folder(test_set, "valid", "always_valid")
    row = curve.table([("always Yes", folder)], test_set / "test.json").splitlines()[2]
    vs_valid = cells(row)[8]
    assert vs_valid.startswith("0.000 [0.00, 0.00], p 1")


def test_a_folder_without_an_evaluation_is_named(tmp_path: Path) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"metrics\.json: missing"):
        curve.parse_run(f"x={tmp_path}")


def test_runs_under_one_label_get_a_mean_row(test_set: Path) -> None:
    exact = evaluation_folder(test_set, "seed-a", "symbolic")
    valid = evaluation_folder(test_set, "seed-b", "always_valid")
    text = curve.table([("cfg", exact), ("cfg", valid)], test_set / "test.json")
    rows = [cells(line) for line in text.splitlines()[2:]]
    assert [row[0] for row in rows] == ["cfg #1", "cfg #2", "cfg, mean of 2"]
    found = read_json(test_set / "test.json")["baselines"]
    f1_valid = found["always_valid"]["f1"]
    label, n, f1, yes, trace, pairs, consistent, lists_f1, vs_valid, vs_prior = rows[2]
    assert int(n) == found["symbolic"]["n"]
    assert float(f1.split()[0]) == pytest.approx((1 + f1_valid) / 2, abs=5e-4)
    assert float(yes) == pytest.approx((found["symbolic"]["confusion"]["tp"] + int(n)) / 2)
    assert trace == pairs == consistent == lists_f1 == "– / –"
    assert label == "cfg, mean of 2" and len(vs_prior.split("; runs ")[1].split(", ")) == 2
    delta, runs = vs_valid.split("; runs ")
    assert float(delta.split()[0]) == pytest.approx((1 - f1_valid) / 2, abs=5e-4)
    assert [float(d) for d in runs.split(", ")] == pytest.approx([1 - f1_valid, 0], abs=5e-4)
    low, high = (float(x) for x in delta.split("[")[1].rstrip("]").split(","))
    assert 0 < low <= float(delta.split()[0]) <= high


def test_items_add_the_answers_the_completions_own_lists_imply(test_set: Path) -> None:
    traced = [r for r in read_jsonl(test_set / "test.jsonl") if oracle_trace(r["input"])]
    rows = [r for r in traced if r["label"] == 1][:20] + [r for r in traced if r["label"] == 0][:40]
    folders = {}
    for name, flip in (("follows", 0), ("contradicts", 1)):
        predictions = []
        for row in rows:  # the oracle's lists, then its answer or the other one
            answer = int(row["label"]) ^ flip
            body = oracle_trace(row["input"])
            completion = trace_completion(body, answer)
            predictions.append({**row, "answer": answer, "trace": body, "completion": completion})
        folders[name] = test_set / f"lists-{name}"
        folders[name].mkdir()
        write_jsonl(folders[name] / "predictions.jsonl", predictions)
        metrics = add_intervals(compute_metrics(predictions), predictions)
        write_json(folders[name] / "metrics.json", metrics)
    runs = list(folders.items())
    items = curve.item_inputs(test_set / "test.jsonl")
    follows, contradicts = (
        cells(line) for line in curve.table(runs, test_set / "test.json", items).splitlines()[2:]
    )
    assert follows[4:8] == ["1.000", "1.000 (" + follows[5].split("(")[1], "1.000", "1.000"]
    assert contradicts[6:8] == ["0.000", "1.000"]  # the lists are right, the answers not theirs
    without = cells(curve.table(runs, test_set / "test.json").splitlines()[2])
    assert without[6:8] == ["–", "–"]


def test_versus_pairs_the_kth_runs_of_two_labels(test_set: Path) -> None:
    exact = evaluation_folder(test_set, "vs-exact", "symbolic")
    valid = evaluation_folder(test_set, "vs-valid", "always_valid")
    runs = [("A", valid), ("B", exact), ("A", exact), ("B", exact)]
    text = curve.versus_table(runs, "A", "B")
    rows = [cells(line) for line in text.splitlines()[2:]]
    assert [row[0] for row in rows] == ["B − A #1", "B − A #2", "B − A, mean of 2"]
    f1_valid = read_json(test_set / "test.json")["baselines"]["always_valid"]["f1"]
    assert float(rows[0][2].split()[0]) == pytest.approx(1 - f1_valid, abs=5e-4)
    assert rows[1][2].startswith("0.000 [0.00, 0.00]") and rows[1][3] == "1 (0 / 0)"
    delta, _, runs_cell = rows[2][2], rows[2][1], rows[2][3]
    assert float(delta.split()[0]) == pytest.approx((1 - f1_valid) / 2, abs=5e-4)
    assert [float(d) for d in runs_cell.removeprefix("runs ").split(", ")] == pytest.approx(
        [1 - f1_valid, 0], abs=5e-4
    )


def test_versus_refuses_unmatched_labels(test_set: Path) -> None:
    exact = evaluation_folder(test_set, "vs-one", "symbolic")
    with pytest.raises(ValueError, match="no run is labelled 'C'"):
        curve.versus_table([("A", exact), ("B", exact)], "A", "C")
    with pytest.raises(ValueError, match="2 runs labelled 'A' but 1 labelled 'B'"):
        curve.versus_table([("A", exact), ("A", exact), ("B", exact)], "A", "B")


def test_by_relation_counts_each_relations_answers(test_set: Path) -> None:
    valid = evaluation_folder(test_set, "rel-valid", "always_valid")
    exact = evaluation_folder(test_set, "rel-exact", "symbolic")
    text = curve.relation_table([("always Yes", valid), ("exact", exact)])
    head, _, yes_row, exact_row = (cells(line) for line in text.splitlines())
    items = list(read_jsonl(test_set / "test.jsonl"))
    held = [r for r in curve.RELATIONS if any(i["relation"] == r for i in items)]
    assert head == ["run", *held] and len(held) == 6
    for k, relation in enumerate(held, 1):
        labels = [int(i["label"]) for i in items if i["relation"] == relation]
        n, valid_n = len(labels), sum(labels)
        assert yes_row[k] == f"{valid_n}/{n} right, Yes {n} ({valid_n} valid)"
        assert exact_row[k] == f"{n}/{n} right, Yes {valid_n} ({valid_n} valid)"


def test_by_relation_with_items_counts_the_lists_answers(test_set: Path) -> None:
    traced = [r for r in read_jsonl(test_set / "test.jsonl") if r["relation"] == "collider"]
    traced = [r for r in traced if oracle_trace(r["input"])][:30]
    folder = test_set / "rel-lists"
    folder.mkdir()
    predictions = []  # the oracle's lists, then always Yes: right where valid, lists always
    for row in traced:
        body = oracle_trace(row["input"])
        predictions.append(
            {**row, "answer": 1, "trace": body, "completion": trace_completion(body, 1)}
        )
    write_jsonl(folder / "predictions.jsonl", predictions)
    write_json(folder / "metrics.json", add_intervals(compute_metrics(predictions), predictions))
    items = curve.item_inputs(test_set / "test.jsonl")
    head, _, row = (
        cells(line) for line in curve.relation_table([("Yes", folder)], items).splitlines()
    )
    valid = sum(int(r["label"]) for r in traced)
    assert head == ["run", "collider"] and 0 < valid < 30
    assert row[1] == f"{valid}/30 right, Yes 30 ({valid} valid); lists 30 right, = lists {valid}"
