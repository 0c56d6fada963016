"""Metrics of predictions on Corr2Cause: the valid class (label 1) is the positive class.

Conventions (stated once, used everywhere):

* A prediction is a mapping with ``label`` (0/1) and ``answer`` (1, 0 or None when the reply
  could not be parsed), optionally ``completion_tokens``, ``truncated``, ``relation`` and
  ``num_variables``; ``trace`` (the oracle trace's body) and ``completion`` for the trace
  metrics (``trace_metrics``).
* ``truncated`` counts completions that reached the token limit without an end of sequence;
  ``truncation_rate`` is its share of n. Both are None when no prediction says (baselines).
* An unparsed answer counts as **wrong** for accuracy, whatever the label.
* In the confusion matrix an unparsed answer counts as **predicted invalid** (0): it is a false
  negative on a valid item and a true negative on an invalid one. ``unparsed_by_label`` says how
  many of each there were, so ``accuracy == (tp + tn - unparsed_by_label["0"]) / n``.
* Precision, recall and F1 of the valid class are computed from that confusion matrix; any ratio
  with a zero denominator (0/0, e.g. precision when nothing is predicted valid) is defined as 0.

Every value is JSON-serialisable (dict keys are strings; numbers are int/float or None).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from math import comb
from typing import Any

from rlcausality.data.corr2cause.symbolic import trace_label
from rlcausality.task import read_trace

ZERO_DIVISION = 0.0
BREAKDOWNS = {"by_relation": "relation", "by_num_variables": "num_variables"}


def safe_div(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, with x/0 defined as 0 (see the module docstring)."""
    return numerator / denominator if denominator else ZERO_DIVISION


def f1_score(precision: float, recall: float) -> float:
    return safe_div(2 * precision * recall, precision + recall)


def confusion_matrix(predictions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counts of tp/fp/fn/tn for the valid class; an unparsed answer is predicted invalid."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for row in predictions:
        truth = int(row["label"])
        predicted = 1 if row.get("answer") == 1 else 0
        key = ("t" if predicted == truth else "f") + ("p" if predicted == 1 else "n")
        counts[key] += 1
    return counts


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def core_metrics(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """n, accuracy, precision/recall/F1 (valid class), parse rate, lengths, confusion matrix."""
    n = len(predictions)
    matrix = confusion_matrix(predictions)
    correct = sum(
        1 for r in predictions if r.get("answer") is not None and r["answer"] == int(r["label"])
    )
    unparsed = {"0": 0, "1": 0}
    for row in predictions:
        if row.get("answer") is None:
            unparsed[str(int(row["label"]))] += 1
    precision = safe_div(matrix["tp"], matrix["tp"] + matrix["fp"])
    recall = safe_div(matrix["tp"], matrix["tp"] + matrix["fn"])
    tokens = [r["completion_tokens"] for r in predictions if r.get("completion_tokens") is not None]
    n_valid = sum(1 for r in predictions if int(r["label"]) == 1)
    n_unparsed = unparsed["0"] + unparsed["1"]
    flags = [bool(r["truncated"]) for r in predictions if r.get("truncated") is not None]
    truncated = sum(flags) if flags else None
    return {
        "n": n,
        "n_valid": n_valid,
        "valid_rate": safe_div(n_valid, n),
        "accuracy": safe_div(correct, n),
        "precision": precision,
        "recall": recall,
        "f1": f1_score(precision, recall),
        "predicted_valid_rate": safe_div(matrix["tp"] + matrix["fp"], n),
        "parse_rate": safe_div(n - n_unparsed, n),
        "n_unparsed": n_unparsed,
        "unparsed_by_label": unparsed,
        "mean_completion_tokens": _mean(tokens),
        "truncated": truncated,
        "truncation_rate": None if truncated is None else safe_div(truncated, n),
        "confusion": matrix,
    }


def breakdown(predictions: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``core_metrics`` per value of ``key`` (as a string; rows without it go under "unknown")."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in predictions:
        value = row.get(key)
        groups.setdefault("unknown" if value is None else str(value), []).append(row)
    return {name: core_metrics(groups[name]) for name in sorted(groups, key=_natural_key)}


def _natural_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def compute_metrics(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``core_metrics`` of all predictions plus the same metrics by relation and by size."""
    metrics = core_metrics(predictions)
    for name, key in BREAKDOWNS.items():
        metrics[name] = breakdown(predictions, key)
    return metrics


def trace_metrics(
    predictions: Sequence[Mapping[str, Any]], inputs: Mapping[str, str | None] | None = None
) -> dict[str, Any] | None:
    """How often a completion's ``Adjacent`` and ``Fixed`` lists equal the oracle trace's
    (``task.read_trace``), over the items that have one (``trace``); None when none has.
    ``states_trace``: the fraction whose completion states both lists at all.
    ``adjacency_pairs``: precision, recall and F1 of the stated adjacent pairs against the
    oracle's, pooled over the items (an unstated list states no pair), so a list with one
    wrong pair still counts its right ones; with ``num_variables``, also the accuracy over all
    N(N-1)/2 pairs of each item and, for reference, the F1 and accuracy of listing every pair
    (a reading of nothing but N).
    With ``inputs`` (each prediction's model input by ``id``), ``lists_answer``: the answer the
    completion's own lists imply (``symbolic.trace_label``), scored as an answer (accuracy,
    F1; no answer where no DAG fits them), and ``consistent``, the share whose stated answer
    is that one: whether the answer follows from the reading."""
    scored = [p for p in predictions if p.get("trace")]
    if not scored:
        return None
    counts = Counter()
    for record in scored:
        oracle = read_trace(str(record["trace"]))
        generated = read_trace(str(record.get("completion") or ""))
        adjacent = generated["adjacent"] == oracle["adjacent"]
        fixed = generated["fixed"] == oracle["fixed"]
        counts["states_trace"] += None not in generated.values()
        counts["adjacency_match"] += adjacent
        counts["fixed_match"] += fixed
        counts["both_match"] += adjacent and fixed
        stated, true = generated["adjacent"] or frozenset(), oracle["adjacent"] or frozenset()
        counts["tp"] += len(stated & true)
        counts["fp"] += len(stated - true)
        counts["fn"] += len(true - stated)
        if record.get("num_variables") is not None:
            counts["pairs"] += comb(int(record["num_variables"]), 2)
            counts["wrong"] += len(stated ^ true)
            counts["true"] += len(true)
    n = len(scored)
    keys = ("states_trace", "adjacency_match", "fixed_match", "both_match")
    out = {"n": n, **{key: counts[key] / n for key in keys}, "adjacency_pairs": _pairs(counts)}
    if inputs is not None:
        out.update(lists_answer_metrics(scored, inputs))
    return out


def lists_answer_metrics(
    predictions: Sequence[Mapping[str, Any]], inputs: Mapping[str, str | None]
) -> dict[str, Any]:
    """``trace_metrics``' ``consistent`` and ``lists_answer`` (see there)."""
    implied = []
    for record in predictions:
        text = inputs.get(str(record["id"]))
        completion = str(record.get("completion") or "")
        answer = None if text is None else trace_label(text, completion)
        implied.append({"label": record["label"], "answer": answer})
    consistent = sum(
        p.get("answer") is not None and p["answer"] == i["answer"]
        for p, i in zip(predictions, implied, strict=True)
    )
    scores = core_metrics(implied)
    keys = ("accuracy", "precision", "recall", "f1", "predicted_valid_rate", "parse_rate")
    return {
        "consistent": safe_div(consistent, len(predictions)),
        "lists_answer": {key: scores[key] for key in keys},
    }


def _pairs(counts: Mapping[str, int]) -> dict[str, float | None]:
    """``trace_metrics``' pooled adjacent-pair scores from its counts."""
    precision = safe_div(counts["tp"], counts["tp"] + counts["fp"])
    recall = safe_div(counts["tp"], counts["tp"] + counts["fn"])
    out: dict[str, float | None] = {"precision": precision, "recall": recall}
    out["f1"] = f1_score(precision, recall)
    total = counts["pairs"]
    out["accuracy"] = safe_div(total - counts["wrong"], total) if total else None
    out["every_pair_f1"] = f1_score(safe_div(counts["true"], total), 1.0) if total else None
    out["every_pair_accuracy"] = safe_div(counts["true"], total) if total else None
    return out
