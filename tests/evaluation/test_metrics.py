"""Metrics against values computed by hand."""

from __future__ import annotations

import json
import math

import pytest

from rlcausality.evaluation.metrics import compute_metrics, confusion_matrix, core_metrics

# label, answer, tokens, relation, num_variables
HAND = [
    (1, 1, 1, "parent", 2),  # tp
    (1, 0, 2, "parent", 3),  # fn
    (1, None, 3, "child", 2),  # fn (unparsed: predicted invalid, wrong)
    (0, 1, 4, "child", 3),  # fp
    (0, 0, 5, "collider", 2),  # tn
    (0, None, 6, "collider", 3),  # tn in the matrix, yet wrong for accuracy
    (0, 0, 7, "parent", 4),  # tn
    (1, 1, 8, "child", 4),  # tp
]


def rows(spec=HAND):
    return [
        {
            "label": lab,
            "answer": ans,
            "completion_tokens": tok,
            "relation": rel,
            "num_variables": nv,
        }
        for lab, ans, tok, rel, nv in spec
    ]


def test_hand_computed_totals():
    m = compute_metrics(rows())
    assert m["n"] == 8
    assert m["n_valid"] == 4
    assert m["confusion"] == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    assert m["accuracy"] == pytest.approx(4 / 8)  # tp 2 + tn 2 (the unparsed tn is wrong)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(4 / 7)  # 2·(2/3)·(1/2) / (2/3 + 1/2)
    assert m["parse_rate"] == pytest.approx(6 / 8)
    assert m["n_unparsed"] == 2
    assert m["unparsed_by_label"] == {"0": 1, "1": 1}
    assert m["predicted_valid_rate"] == pytest.approx(3 / 8)
    assert m["valid_rate"] == pytest.approx(0.5)
    assert m["mean_completion_tokens"] == pytest.approx(4.5)
    c = m["confusion"]
    assert m["accuracy"] == pytest.approx((c["tp"] + c["tn"] - m["unparsed_by_label"]["0"]) / 8)


def test_hand_computed_breakdown():
    m = compute_metrics(rows())
    parent = m["by_relation"]["parent"]  # tp, fn, tn
    assert parent["confusion"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 1}
    assert parent["f1"] == pytest.approx(2 / 3)  # precision 1, recall 1/2
    collider = m["by_relation"]["collider"]  # no valid items: 0/0 precision and recall
    assert collider["precision"] == 0 and collider["recall"] == 0 and collider["f1"] == 0
    assert collider["accuracy"] == pytest.approx(0.5)
    assert list(m["by_num_variables"]) == ["2", "3", "4"]
    assert m["by_num_variables"]["4"]["accuracy"] == 1.0


@pytest.mark.parametrize("key", ["by_relation", "by_num_variables"])
def test_breakdowns_sum_to_totals(key):
    m = compute_metrics(rows())
    groups = m[key].values()
    assert sum(g["n"] for g in groups) == m["n"]
    assert sum(g["n_unparsed"] for g in groups) == m["n_unparsed"]
    for cell in ("tp", "fp", "fn", "tn"):
        assert sum(g["confusion"][cell] for g in groups) == m["confusion"][cell]
    correct = sum(g["accuracy"] * g["n"] for g in groups)
    assert correct == pytest.approx(m["accuracy"] * m["n"])


def test_zero_division_is_zero():
    all_invalid = core_metrics([{"label": 0, "answer": 0}] * 3)
    assert all_invalid["precision"] == 0.0  # 0/0
    assert all_invalid["recall"] == 0.0  # 0/0
    assert all_invalid["f1"] == 0.0
    assert all_invalid["accuracy"] == 1.0
    assert all_invalid["mean_completion_tokens"] is None
    unparsed = core_metrics([{"label": 1, "answer": None}] * 2)
    assert unparsed["confusion"] == {"tp": 0, "fp": 0, "fn": 2, "tn": 0}
    assert unparsed["parse_rate"] == 0.0 and unparsed["accuracy"] == 0.0 and unparsed["f1"] == 0.0
    empty = compute_metrics([])
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and empty["f1"] == 0.0
    assert empty["by_relation"] == {}


def test_all_correct_and_json():
    perfect = compute_metrics(rows([(1, 1, 2, "parent", 2), (0, 0, 2, "child", 3)]))
    assert perfect["f1"] == 1.0 and perfect["accuracy"] == 1.0
    text = json.dumps(compute_metrics(rows()), allow_nan=False)
    assert json.loads(text)["by_relation"]["child"]["n"] == 3
    assert not any(isinstance(v, float) and math.isnan(v) for v in json.loads(text).values())


def test_confusion_counts_unparsed_as_invalid():
    assert confusion_matrix([{"label": 0, "answer": None}]) == {"tp": 0, "fp": 0, "fn": 0, "tn": 1}


def test_truncation_is_counted_overall_and_per_group():
    predictions = rows()
    for index, row in enumerate(predictions):
        row["truncated"] = index in (2, 5, 6)  # the two unparsed ones and one more
    metrics = compute_metrics(predictions)
    assert metrics["truncated"] == 3 and metrics["truncation_rate"] == 3 / 8
    assert metrics["by_relation"]["collider"]["truncation_rate"] == 0.5
    assert metrics["by_relation"]["parent"]["truncated"] == 1
    unknown = core_metrics(rows())  # no prediction says (e.g. a baseline)
    assert unknown["truncated"] is None and unknown["truncation_rate"] is None
