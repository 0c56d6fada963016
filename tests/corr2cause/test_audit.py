"""The audit recomputes labels from text and reports exactly the wrong rows."""

from __future__ import annotations

import json
from pathlib import Path

import brute_force as bf
import pytest
from published import write_csv, write_jsonl

from rlcausality.data.corpus import main
from rlcausality.data.corr2cause import audit, symbolic, text
from rlcausality.io import DataError, read_jsonl


def _premise(n: int, edges: list[tuple[int, int]], names: list[str], extra=()) -> str:
    stmts = set(bf.statements(n, frozenset(edges))) | set(extra)
    return bf.premise_text(n, frozenset(stmts), names)


def _row(premise: str, hypothesis: str, label: int) -> dict:
    return {"input": f"Premise: {premise}\nHypothesis: {hypothesis}", "label": label}


# collider A -> C <- B with C -> E, and D -> E: 5 variables
COLLIDER = [(0, 2), (1, 2), (2, 4), (3, 4)]
ABCDE = ["A", "B", "C", "D", "E"]


def hand_made() -> tuple[list[dict], list[int], list[int]]:
    """Rows (file lines = index + 2 in CSV... computed by the caller), wrong ones, inconsistent."""
    chain = _premise(3, [(0, 1), (1, 2)], ["A", "B", "C"])  # A -> B -> C: a chain's MEC
    vstruct = _premise(3, [(0, 2), (1, 2)], ["P", "Q", "R"])  # P -> R <- Q, odd letters
    collider = _premise(5, COLLIDER, ABCDE)
    inconsistent = _premise(5, COLLIDER, ABCDE, extra=[(0, 1, frozenset({4}))])
    assert "A and B are independent given E." in inconsistent
    rows = [
        _row(chain, "A directly causes B.", 0),  # the chain's MEC also has B -> A: invalid
        _row(chain, "There exists at least one collider (i.e., common effect) of A and C.", 1),
        _row(vstruct, "P directly causes R.", 1),
        _row(vstruct, "R directly affects P.", 0),
        _row(vstruct, "Q and P together cause some other variable(s).", 1),
        _row(vstruct, "Some variable(s) cause(s) both P and Q.", 1),  # wrong
        _row(collider, "A is a cause for E, but not a direct one.", 1),
        _row(collider, "E causes something else which causes A.", 0),
        _row(collider, "B influences E through some mediator(s).", 0),  # wrong
        _row(collider, "There exists at least one confounder (i.e., common cause) of C and D.", 0),
        _row(inconsistent, "A directly causes C.", 1),
        _row(collider, "D directly causes E.", 0),  # wrong
    ]
    return rows, [1, 5, 8, 11], [10]


def test_hand_made_rows_are_judged_right() -> None:
    rows, wrong, inconsistent = hand_made()
    for k, row in enumerate(rows):
        exact = symbolic.label(row["input"])
        if k in inconsistent:
            assert exact is None
        elif k in wrong:
            assert exact == 1 - row["label"], k
        else:
            assert exact == row["label"], k


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_audit_reports_exactly_the_wrong_rows(tmp_path: Path, fmt: str) -> None:
    rows, wrong, inconsistent = hand_made()
    if fmt == "csv":
        path = write_csv(tmp_path / "published.csv", rows)
        line = [2 + 2 * k for k in range(len(rows))]  # header, then two lines per record
    else:
        path = write_jsonl(tmp_path / "published.jsonl", rows)
        line = [1 + k for k in range(len(rows))]
    out = tmp_path / "audit.jsonl"
    summary = audit.audit_file(path, out)
    assert summary["disagreeing_lines"] == [line[k] for k in wrong]
    assert summary["inconsistent_lines"] == [line[k] for k in inconsistent]
    assert summary["disagreements"] == len(wrong) and summary["inconsistent_rows"] == 1
    assert summary["by_relation"]["confounder"]["disagreements"] == 1
    assert summary["by_num_variables"]["5"]["inconsistent"] == 1
    audited = list(read_jsonl(out))
    assert [r["line"] for r in audited] == line
    assert audited[10]["exact_label"] is None and audited[10]["premise_consistent"] is False
    assert audited[0]["exact_label"] == 0 and audited[0]["premise_consistent"] is True
    assert json.loads(audit.summary_path(out).read_text()) == summary


def test_audit_cli(tmp_path: Path, capsys) -> None:
    rows, wrong, _ = hand_made()
    path = write_jsonl(tmp_path / "published.jsonl", rows)
    out = tmp_path / "res" / "audit.jsonl"
    assert main(["audit", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        f"{len(wrong)} label(s) disagree" in printed and "1 row(s) with an inconsistent" in printed
    )
    assert (tmp_path / "res" / "audit.summary.json").exists()


def test_audit_refuses_unparsable_text(tmp_path: Path, capsys) -> None:
    rows, _, _ = hand_made()
    rows[3] = {**rows[3], "input": rows[3]["input"].replace("directly affects", "loves")}
    path = write_jsonl(tmp_path / "published.jsonl", rows)
    out = tmp_path / "audit.jsonl"
    with pytest.raises(DataError, match=rf"^{path}:4: expected a Corr2Cause hypothesis"):
        audit.audit_file(path, out)
    assert main(["audit", str(path), "--out", str(out)]) == 2
    assert f"{path}:4:" in capsys.readouterr().err
    assert not out.exists() and not audit.summary_path(out).exists()


def test_audit_of_generated_data_finds_nothing(tmp_path: Path) -> None:
    from rlcausality.data.corr2cause.generate import generate_corpus

    corpus = generate_corpus({"num_variables": [2, 4], "naming": "shuffled", "seed": 5})
    rows = [{"input": r["input"], "label": r["label"]} for r in corpus["test_paraphrased"]]
    summary = audit.audit_file(write_csv(tmp_path / "t.csv", rows), tmp_path / "a.jsonl")
    assert summary["rows"] == len(rows) and summary["disagreements"] == 0
    assert summary["inconsistent_rows"] == 0


def test_parser_accepts_published_variants() -> None:
    premise = text.parse_premise(_premise(3, [(0, 2), (1, 2)], ["Z", "Y", "X"]))
    assert premise.names == ("Z", "Y", "X")
    hyp = text.parse_hypothesis("X is a cause for Z, but not a direct one.", premise.names)
    assert (hyp.relation, hyp.x, hyp.y) == ("non-child descendant", 0, 2)
    hyp = text.parse_hypothesis(
        "There exists at least one collider (i.e., common effect) of X and Z.", premise.names
    )
    assert (hyp.relation, hyp.x, hyp.y) == ("collider", 0, 2)
