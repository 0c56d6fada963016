"""Reference points for the models: majority class, random guessing, the exact symbolic reasoner.

* ``majority``: always answers invalid (0), the majority class. Exact metrics: accuracy is the
  share of invalid items; precision, recall and F1 of the valid class are 0 (0/0 := 0).
* ``random``: answers valid with probability ``p`` (the class prior) independently of the item.
  Its metrics are **expectations computed analytically**, not a sampled run: with ``q`` the
  valid share of the evaluated items, E[tp] = p·n₁ and E[fp] = p·n₀, so precision = q,
  recall = p, F1 = 2pq/(p+q) and accuracy = pq + (1-p)(1-q). With ``p`` taken from the same items
  (the default) ``p == q``: precision = recall = F1 = p and accuracy = p² + (1-p)². (Precision
  and F1 are ratios of expectations.) The confusion matrix holds expected, fractional counts.
* ``symbolic``: the exact reasoner of ``rlcausality.corr2cause.symbolic`` applied to each item's
  ``input`` text (its ``label`` function); an item whose premise it finds inconsistent (None),
  or whose text it cannot read, counts as unparsed (``n_unreadable`` counts the latter).

CLI::

    python -m rlcausality.baselines --data results/data/corr2cause/test.jsonl \
        --out results/eval/baselines/test.json [--max-samples N] [--prior P]

With ``--max-samples`` N the items are ``rlcausality.selection``'s stratified sample, the same
items ``rlcausality.evaluate`` scores with ``evaluate.max_samples`` N.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.io import read_jsonl, sha256_file, write_json
from rlcausality.metrics import BREAKDOWNS, compute_metrics, f1_score, safe_div
from rlcausality.provenance import provenance
from rlcausality.selection import SUBSET_SEED, select_rows

SYMBOLIC_MODULE = "rlcausality.corr2cause.symbolic"
SYMBOLIC_FUNCTION = "label"  # input text -> 1 | 0 | None (inconsistent premise)


def majority(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics of always answering invalid (exact)."""
    return compute_metrics([{**row, "answer": 0} for row in rows])


def _expected(rows: Sequence[Mapping[str, Any]], p: float) -> dict[str, Any]:
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


def symbolic(
    rows: Sequence[Mapping[str, Any]], solve: Callable[[str], int | None] | None = None
) -> dict[str, Any]:
    """Metrics of the exact symbolic reasoner on each row's ``input``."""
    solve = solve or symbolic_function()
    predictions = []
    unreadable = 0
    for row in rows:
        try:
            answer = solve(row["input"])
        except ValueError:  # text the reasoner cannot read (text.ParseError): unparsed
            answer = None
            unreadable += 1
        predictions.append({**row, "answer": None if answer is None else int(answer)})
    metrics = compute_metrics(predictions)
    metrics["n_unreadable"] = unreadable  # the rest of n_unparsed: inconsistent premises
    return metrics


def run_baselines(
    rows: Sequence[Mapping[str, Any]], prior: float | None = None
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {
        "majority": majority(rows),
        "random": random_guess(rows, prior),
    }
    try:
        results["symbolic"] = symbolic(rows)
    except (ImportError, AttributeError) as err:
        results["symbolic"] = {"error": f"symbolic reasoner unavailable: {err}"}
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="corpus split JSONL (id, input, label, ...)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--test-set", help="name of the test set (default: the data file's stem)")
    parser.add_argument(
        "--max-samples", type=int, default=None, help="the stratified sample evaluate scores"
    )
    parser.add_argument("--prior", type=float, default=None, help="random baseline's P(valid)")
    args = parser.parse_args(argv)

    rows = select_rows(list(read_jsonl(args.data)), args.max_samples)
    settings = {
        "max_samples": args.max_samples,
        "prior": args.prior,
        "subset_seed": SUBSET_SEED,
        "sample": "all" if args.max_samples is None else "stratified by relation x size",
    }
    write_json(
        args.out,
        {
            "test_set": args.test_set or Path(args.data).stem,
            "data": str(args.data),
            "data_sha256": sha256_file(args.data),
            "n": len(rows),
            "settings": settings,
            "baselines": run_baselines(rows, args.prior),
            "provenance": provenance(settings),
        },
    )


if __name__ == "__main__":
    main()
