"""Loaders: file (CSV/JSONL) and hub-format conversion, validation with file:line errors."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from published import write_csv, write_jsonl

from rlcausality.data.corpus import main
from rlcausality.data.corr2cause import load
from rlcausality.data.corr2cause.generate import generate_corpus
from rlcausality.io import DataError, read_jsonl

PREMISE = (
    "Suppose there is a closed system of 3 variables, A, B and C. All the statistical "
    "relations among these 3 variables are as follows: A correlates with C. B correlates with "
    "C. However, A is independent of B."
)
GOOD = {"input": f"Premise: {PREMISE}\nHypothesis: A directly causes C.", "label": 1}


@pytest.fixture(scope="module")
def published_rows() -> list[dict]:
    corpus = generate_corpus({"num_variables": [2, 4], "robustness": False})
    return [{"input": r["input"], "label": r["label"]} for r in corpus["test"]]


def test_file_loader_csv_and_jsonl(tmp_path: Path, published_rows: list[dict]) -> None:
    csv_path = write_csv(tmp_path / "train.csv", published_rows)
    jsonl_path = write_jsonl(tmp_path / "test.jsonl", published_rows)
    corpus = load.load_corpus(
        {"source": "file", "file": {"train": str(csv_path), "test": str(jsonl_path)}}
    )
    assert corpus["train"] == corpus["test"] or [r["input"] for r in corpus["train"]] == [
        r["input"] for r in corpus["test"]
    ]
    row = corpus["train"][0]
    assert set(row) == {
        "id", "input", "label", "premise", "hypothesis", "relation", "num_variables", "class_id"
    }  # fmt: skip
    assert row["class_id"] == load.class_id_of(row["premise"])
    assert [r["label"] for r in corpus["train"]] == [r["label"] for r in published_rows]


def test_hub_conversion_from_dataset() -> None:
    ds = datasets.Dataset.from_list(
        [GOOD, {"input": GOOD["input"].replace("A directly causes C.", "C directly causes A."),
                "label": 0}]
    )  # fmt: skip
    rows = load.rows_from_dataset(ds, "hub:causalnlp/corr2cause[test]", "test")
    assert [r["relation"] for r in rows] == ["parent", "child"]
    assert rows[0]["num_variables"] == 3 and rows[0]["premise"] == PREMISE
    bad = datasets.Dataset.from_list([GOOD, {"input": GOOD["input"], "label": 2}])
    with pytest.raises(DataError, match=r"^hub:x\[test\]:2: label must be 0 or 1"):
        load.rows_from_dataset(bad, "hub:x[test]", "test")


def test_load_hub_passes_id_revision_and_splits(monkeypatch) -> None:
    calls = []

    def fake_load_dataset(repo, split, revision=None):  # the network, not the code under test
        calls.append((repo, split, revision))
        return datasets.Dataset.from_list([GOOD])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    corpus = load.load_corpus(
        {
            "source": "hub",
            "hub": {"revision": "abc123", "splits": {"train": "train", "dev": "validation"}},
        }
    )
    assert calls == [
        ("causalnlp/corr2cause", "train", "abc123"),
        ("causalnlp/corr2cause", "validation", "abc123"),
    ]
    assert set(corpus) == {"train", "dev"} and corpus["dev"][0]["relation"] == "parent"


def _jsonl_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD_LINE = json.dumps(GOOD)
BAD_JSONL = {
    "malformed": ([GOOD_LINE, "", '{"input": "Premise', GOOD_LINE], 3, "not valid JSON"),
    "not_object": ([GOOD_LINE, "[1, 2]"], 2, "expected a JSON object"),
    "missing_column": ([GOOD_LINE, GOOD_LINE, json.dumps({"input": GOOD["input"]})], 3, "label"),
    "bad_label": ([GOOD_LINE, json.dumps({**GOOD, "label": "yes"})], 2, "label must be 0 or 1"),
    "bad_premise": (
        [json.dumps({**GOOD, "input": GOOD["input"].replace("correlates with C.", "likes C.")})],
        1,
        "expected 'X correlates with Y.'",
    ),
    "bad_hypothesis": (
        [GOOD_LINE, GOOD_LINE, GOOD_LINE, json.dumps({**GOOD, "input": GOOD["input"][:-5]})],
        4,
        "expected a Corr2Cause hypothesis",
    ),
    "unknown_variable": (
        [json.dumps({**GOOD, "input": GOOD["input"].replace("causes C", "causes Q")})],
        1,
        "'Q'",
    ),
    "no_hypothesis": ([json.dumps({**GOOD, "input": PREMISE})], 1, "Hypothesis"),
    "empty": ([], 1, "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSONL))
def test_bad_jsonl(tmp_path: Path, case: str) -> None:
    lines, lineno, expected = BAD_JSONL[case]
    path = _jsonl_lines(tmp_path / f"{case}.jsonl", lines)
    with pytest.raises(DataError) as err:
        load.load_file_split(path, "train")
    message = str(err.value)
    assert message.startswith(f"{path}:{lineno}: "), message
    assert expected in message


def test_bad_csv_lines(tmp_path: Path) -> None:
    # every record spans two physical lines (the input has a newline), so record 3 starts on 6
    rows = [GOOD, GOOD, {**GOOD, "label": 5}]
    path = write_csv(tmp_path / "bad_label.csv", rows)
    with pytest.raises(DataError, match=rf"^{path}:6: label must be 0 or 1, got '5'"):
        load.load_file_split(path, "train")

    path = write_csv(tmp_path / "no_label.csv", rows, columns=("input",))
    with pytest.raises(DataError, match=rf"^{path}:1: header lacks column\(s\) \['label'\]"):
        load.load_file_split(path, "train")

    path = tmp_path / "fields.csv"
    write_csv(path, [GOOD])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('"x",1,extra\n')
    with pytest.raises(DataError, match=rf"^{path}:4: 3 fields, expected 2"):
        load.load_file_split(path, "train")

    path = tmp_path / "quote.csv"
    write_csv(path, [GOOD])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('"Premise: unterminated,1\n')
    with pytest.raises(DataError, match=rf"^{path}:4: malformed CSV"):
        load.load_file_split(path, "train")

    path = tmp_path / "empty.csv"
    path.write_text("input,label\n")
    with pytest.raises(DataError, match=rf"^{path}:1: split 'train' is empty"):
        load.load_file_split(path, "train")


def test_cli_load(tmp_path: Path, published_rows: list[dict], capsys) -> None:
    train = write_csv(tmp_path / "train.csv", published_rows)
    test = write_jsonl(tmp_path / "test.jsonl", published_rows[:10])
    outdir = tmp_path / "out"
    settings = {"source": "file", "file": {"train": str(train), "test": str(test)}}
    assert main(["load", "--settings", json.dumps(settings), "--outdir", str(outdir)]) == 0
    assert len(list(read_jsonl(outdir / "test.jsonl"))) == 10
    assert (outdir / "stats.json").exists()


def test_cli_load_error_leaves_nothing(tmp_path: Path, published_rows: list[dict], capsys) -> None:
    train = write_csv(tmp_path / "train.csv", published_rows)
    bad = _jsonl_lines(tmp_path / "test.jsonl", [GOOD_LINE, GOOD_LINE, "{oops"])
    outdir = tmp_path / "out"
    settings = {"source": "file", "file": {"train": str(train), "test": str(bad)}}
    assert main(["load", "--settings", json.dumps(settings), "--outdir", str(outdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:3: not valid JSON" in err
    assert not outdir.exists() or not any(outdir.iterdir())


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_file_with_a_byte_order_mark_loads(
    tmp_path: Path, published_rows: list[dict], suffix: str
) -> None:
    # Excel's "CSV UTF-8" (and other Windows tools) start the file with a UTF-8 byte-order mark.
    plain = tmp_path / f"plain{suffix}"
    (write_csv if suffix == ".csv" else write_jsonl)(plain, published_rows[:5])
    marked = tmp_path / f"marked{suffix}"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    rows = load.load_file_split(marked, "train")
    assert [r["input"] for r in rows] == [r["input"] for r in published_rows[:5]]
    assert not rows[0]["id"].startswith("\ufeff")
