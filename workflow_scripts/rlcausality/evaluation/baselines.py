"""Reference points for the models: constant answers, random guessing, a relation prior, and the
exact symbolic reasoner.

* ``majority``: always answers invalid (0), the majority class. Exact metrics: accuracy is the
  share of invalid items; precision, recall and F1 of the valid class are 0 (0/0 := 0).
* ``always_valid``: always answers valid (1). With q the valid share: precision = q, recall = 1,
  F1 = 2q/(1+q), accuracy = q.
* ``random``: answers valid with probability ``p`` (the class prior) independently of the item.
  Its metrics are **expectations computed analytically**, not a sampled run: with ``q`` the
  valid share of the evaluated items, E[tp] = p·n₁ and E[fp] = p·n₀, so precision = q,
  recall = p, F1 = 2pq/(p+q) and accuracy = pq + (1-p)(1-q). With ``p`` taken from the same items
  (the default) ``p == q``: precision = recall = F1 = p and accuracy = p² + (1-p)². (Precision
  and F1 are ratios of expectations.) The confusion matrix holds expected, fractional counts.
  It has no per-item answers, hence no interval; its F1 never exceeds always-valid's
  (2pq/(p+q) <= 2q/(1+q) for p <= 1).
* ``relation_prior``: reads only the hypothesis's relation. The relations answered Yes are the
  set that maximises F1 on the **train** split (``--train``); every other relation, and one not
  seen in train, is answered No. F1 = 2·tp/(tp + fp + n₁) is maximised by answering Yes for the
  relations whose valid rate in train is above a threshold, so the best set is one of the
  prefixes of the relations sorted by valid rate (ties: the fewer Yes relations). A model that
  only learned which relations tend to be valid scores about this.
* ``symbolic``: the exact reasoner of ``rlcausality.data.corr2cause.symbolic`` applied to each
item's
  ``input`` text (its ``label`` function); an item whose premise it finds inconsistent (None),
  or whose text it cannot read, counts as unparsed (``n_unreadable`` counts the latter). It is
  an oracle, not a competitor: the "best baseline" of the reports is never this one.

Every baseline with per-item answers carries the class-level bootstrap intervals of
``rlcausality.evaluation.uncertainty``; ``--predictions`` writes those answers, one row per item
(id, class_id, relation, num_variables, label, ``answers: {baseline: 1 | 0 | None}``), for the
reports' paired comparisons.

CLI::

    python -m rlcausality.evaluation.baselines --data results/data/corr2cause/test.jsonl \
        --out results/eval/baselines/test.json [--train results/data/corr2cause/train.jsonl] \
        [--predictions results/eval/baselines/test.predictions.jsonl] [--max-samples N] \
        [--prior P]

With ``--max-samples`` N the items are ``rlcausality.evaluation.selection``'s stratified sample, the
same items ``rlcausality.evaluation.evaluate`` scores with ``evaluate.max_samples`` N.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.evaluation.metrics import BREAKDOWNS, compute_metrics, f1_score, safe_div
from rlcausality.evaluation.selection import SUBSET_SEED, select_rows
from rlcausality.evaluation.uncertainty import add_intervals
from rlcausality.io import read_jsonl, sha256_file, write_json, write_jsonl
from rlcausality.provenance import provenance
from rlcausality.settings import cli

SYMBOLIC_MODULE = "rlcausality.data.corr2cause.symbolic"
SYMBOLIC_FUNCTION = "label"  # input text -> 1 | 0 | None (inconsistent premise)
# Baselines with per-item answers that a model can be compared with (the symbolic reasoner is
# an oracle and random guessing has expected metrics only): the reports' "best baseline".
COMPETITORS = ("majority", "always_valid", "relation_prior")
PREDICTION_KEYS = ("id", "class_id", "relation", "num_variables", "label")

Row = Mapping[str, Any]


def score(rows: Sequence[Row], answers: Sequence[int | None]) -> dict[str, Any]:
    """Metrics, with bootstrap intervals, of giving ``answers`` to ``rows``."""
    predictions = [{**row, "answer": a} for row, a in zip(rows, answers, strict=True)]
    return add_intervals(compute_metrics(predictions), predictions)


def majority(rows: Sequence[Row]) -> dict[str, Any]:
    """Metrics of always answering invalid (exact)."""
    return score(rows, [0] * len(rows))


def always_valid(rows: Sequence[Row]) -> dict[str, Any]:
    """Metrics of always answering valid (exact): F1 = 2q/(1+q) for a valid share q."""
    return score(rows, [1] * len(rows))


def relation_answers(train: Sequence[Row]) -> dict[str, int]:
    """Per relation of ``train``, the answer (1 Yes, 0 No) of the F1-maximising set of Yes
    relations (a prefix of the relations sorted by valid rate; see the module docstring)."""
    totals: dict[str, list[int]] = {}
    for row in train:
        counts = totals.setdefault(str(row.get("relation")), [0, 0])
        counts[0] += int(row["label"])
        counts[1] += 1
    positives = sum(valid for valid, _ in totals.values())
    order = sorted(totals, key=lambda r: (-totals[r][0] / totals[r][1], totals[r][1], r))
    best, best_f1, tp, predicted = 0, 0.0, 0, 0
    for size, relation in enumerate(order, start=1):
        tp += totals[relation][0]
        predicted += totals[relation][1]
        f1 = safe_div(2 * tp, predicted + positives)
        if f1 > best_f1 + 1e-12:
            best, best_f1 = size, f1
    yes = set(order[:best])
    return {relation: int(relation in yes) for relation in sorted(totals)}


def relation_prior(rows: Sequence[Row], train: Sequence[Row]) -> dict[str, Any]:
    """Metrics of answering each relation as :func:`relation_answers` of ``train`` says."""
    table = relation_answers(train)
    metrics = score(rows, [table.get(str(row.get("relation")), 0) for row in rows])
    metrics["answers_by_relation"] = dict(sorted(table.items()))
    metrics["train_items"] = len(train)
    return metrics


def _expected(rows: Sequence[Row], p: float) -> dict[str, Any]:
    n = len(rows)
    n_valid = sum(1 for r in rows if int(r["label"]) == 1)
    q = safe_div(n_valid, n)
    precision = q if n else 0.0
    recall = p if n_valid else 0.0
    confusion = {
        "tp": p * n_valid,
        "fp": p * (n - n_valid),
        "fn": (1 - p) * n_valid,
        "tn": (1 - p) * (n - n_valid),
    }
    return {
        "n": n,
        "n_valid": n_valid,
        "valid_rate": q,
        "accuracy": p * q + (1 - p) * (1 - q) if n else 0.0,
        "precision": precision if p > 0 else 0.0,
        "recall": recall,
        "f1": f1_score(precision if p > 0 else 0.0, recall),
        "predicted_valid_rate": p,
        "parse_rate": 1.0 if n else 0.0,
        "n_unparsed": 0,
        "unparsed_by_label": {"0": 0, "1": 0},
        "mean_completion_tokens": None,
        "truncated": None,
        "truncation_rate": None,
        "confusion": confusion,
    }


def random_guess(rows: Sequence[Mapping[str, Any]], prior: float | None = None) -> dict[str, Any]:
    """Expected metrics of answering valid with probability ``prior`` (default: the items' own)."""
    p = prior if prior is not None else safe_div(sum(int(r["label"]) for r in rows), len(rows))
    metrics = _expected(rows, p)
    for name, key in BREAKDOWNS.items():
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            value = row.get(key)
            groups.setdefault("unknown" if value is None else str(value), []).append(row)
        metrics[name] = {g: _expected(groups[g], p) for g in sorted(groups)}
    metrics["expected"] = True
    metrics["prior"] = p
    return metrics


def symbolic_function() -> Callable[[str], int | None]:
    """The corr2cause module's ``input text -> 1 | 0 | None`` function (imported lazily)."""
    return getattr(importlib.import_module(SYMBOLIC_MODULE), SYMBOLIC_FUNCTION)


def symbolic_answers(
    rows: Sequence[Row], solve: Callable[[str], int | None] | None = None
) -> tuple[list[int | None], int]:
    """The exact reasoner's answer to each row's ``input``, and how many it could not read."""
    solve = solve or symbolic_function()
    answers: list[int | None] = []
    unreadable = 0
    for row in rows:
        try:
            answer = solve(row["input"])
        except ValueError:  # text the reasoner cannot read (text.ParseError): unparsed
            answer = None
            unreadable += 1
        answers.append(None if answer is None else int(answer))
    return answers, unreadable


def symbolic(
    rows: Sequence[Row], solve: Callable[[str], int | None] | None = None
) -> dict[str, Any]:
    """Metrics of the exact symbolic reasoner on each row's ``input``."""
    answers, unreadable = symbolic_answers(rows, solve)
    metrics = score(rows, answers)
    metrics["n_unreadable"] = unreadable  # the rest of n_unparsed: inconsistent premises
    return metrics


def run_baselines(
    rows: Sequence[Row], prior: float | None = None, train: Sequence[Row] | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, list[int | None]]]:
    """The metrics of every baseline, and the per-item answers of those that have them."""
    answers: dict[str, list[int | None]] = {
        "majority": [0] * len(rows),
        "always_valid": [1] * len(rows),
    }
    results: dict[str, dict[str, Any]] = {
        "majority": majority(rows),
        "always_valid": always_valid(rows),
        "random": random_guess(rows, prior),
    }
    if train is None:
        results["relation_prior"] = {"error": "no train split given (--train)"}
    else:
        results["relation_prior"] = relation_prior(rows, train)
        table = results["relation_prior"]["answers_by_relation"]
        answers["relation_prior"] = [table.get(str(r.get("relation")), 0) for r in rows]
    try:
        answers["symbolic"], unreadable = symbolic_answers(rows)
    except (ImportError, AttributeError) as err:
        results["symbolic"] = {"error": f"symbolic reasoner unavailable: {err}"}
    else:
        results["symbolic"] = score(rows, answers["symbolic"])
        results["symbolic"]["n_unreadable"] = unreadable
    return results, answers


def best_competitor(baselines: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The baseline of ``COMPETITORS`` with the highest F1 (the first on a tie), if any."""
    scored = [n for n in COMPETITORS if (baselines.get(n) or {}).get("f1") is not None]
    return max(scored, key=lambda n: baselines[n]["f1"], default=None)


def prediction_rows(
    rows: Sequence[Row], answers: Mapping[str, Sequence[int | None]]
) -> list[dict[str, Any]]:
    """One row per item with every baseline's answer (for paired comparisons)."""
    out = []
    for index, row in enumerate(rows):
        record = {key: row.get(key) for key in PREDICTION_KEYS}
        record["label"] = int(row["label"])
        record["answers"] = {name: values[index] for name, values in answers.items()}
        out.append(record)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="corpus split JSONL (id, input, label, ...)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--train", help="train split JSONL, for the relation prior")
    parser.add_argument("--predictions", help="JSONL of every baseline's answer per item")
    parser.add_argument("--test-set", help="name of the test set (default: the data file's stem)")
    parser.add_argument(
        "--max-samples", type=int, default=None, help="the stratified sample evaluate scores"
    )
    parser.add_argument("--prior", type=float, default=None, help="random baseline's P(valid)")
    args = parser.parse_args(argv)

    rows = select_rows(list(read_jsonl(args.data)), args.max_samples)
    train = list(read_jsonl(args.train)) if args.train else None
    settings = {
        "max_samples": args.max_samples,
        "prior": args.prior,
        "subset_seed": SUBSET_SEED,
        "sample": "all" if args.max_samples is None else "stratified by relation x size",
    }
    results, answers = run_baselines(rows, args.prior, train)
    if args.predictions:
        write_jsonl(args.predictions, prediction_rows(rows, answers))
    write_json(
        args.out,
        {
            "test_set": args.test_set or Path(args.data).stem,
            "data": str(args.data),
            "data_sha256": sha256_file(args.data),
            "train": None
            if train is None
            else {"path": args.train, "sha256": sha256_file(args.train)},
            "n": len(rows),
            "settings": settings,
            "baselines": results,
            "best_competitor": best_competitor(results),
            "predictions": args.predictions,
            "provenance": provenance(settings),
        },
    )


if __name__ == "__main__":
    cli.entry(main)
