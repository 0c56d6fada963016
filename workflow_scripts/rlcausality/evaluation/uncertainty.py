"""Uncertainty of the metrics: bootstrap intervals over classes, paired comparisons, McNemar.

* **Unit of resampling.** Items of one Markov equivalence class share their premise, and a
  model's answers on them are correlated, so the bootstrap resamples whole classes (with
  replacement, as many as there are) and keeps every item of a drawn class. The cluster key is
  the row's ``class_id``: ``n{N}-c{index}`` for generated data, and for published data (hub or
  file, which has no class ids) ``load.class_id_of`` of the premise text, since the items of
  one class share the premise. A row without a ``class_id`` is its own cluster (item level);
  ``ci.cluster`` in the output says which was used.
* **Intervals** are percentile intervals of ``RESAMPLES`` resamples drawn with a fixed seed, so
  a file gives the same interval every time: ``<metric>_ci95: [lo, hi]`` for accuracy,
  precision, recall and F1, computed by the conventions of ``rlcausality.evaluation.metrics`` (an
  unparsed answer is wrong and counts as predicted invalid; 0/0 := 0).
* **Paired comparisons** join two sets of predictions on ``id`` (identical items), resample
  the classes of the joined items with the same draws for both sides, and report the interval
  of ``F1(b) - F1(a)``. The exact McNemar test of accuracy is the two-sided binomial test
  (p = 1/2) on the discordant items: those only ``a`` answered correctly and those only ``b``
  answered correctly.
* **Several runs** of one configuration (seeds) are compared with a baseline by the mean over
  the runs of ``F1(run) - F1(a)``, on the items every run and ``a`` share, resampling their
  classes with the same draws for every side (``mean_paired_comparison``): its interval holds
  the items' uncertainty at the runs' mean; the spread between the runs is reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb
from typing import Any

import numpy as np

RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95
CI_METRICS = ("accuracy", "precision", "recall", "f1")
COLUMNS = ("tp", "fp", "fn", "correct", "n")  # per-item counts, summed per class

Row = Mapping[str, Any]


def cluster_key(row: Row) -> str:
    """The class an item belongs to (its ``class_id``), or the item itself when it has none."""
    class_id = row.get("class_id")
    return f"class:{class_id}" if class_id is not None else f"item:{row.get('id')}"


def item_counts(rows: Sequence[Row]) -> np.ndarray:
    """(items, 5) counts of tp, fp, fn, correct and 1 per item (``metrics`` conventions)."""
    out = np.zeros((len(rows), len(COLUMNS)), dtype=np.int64)
    for index, row in enumerate(rows):
        truth = int(row["label"])
        answer = row.get("answer")
        predicted = 1 if answer == 1 else 0
        out[index] = (
            predicted and truth,
            predicted and not truth,
            truth and not predicted,
            answer is not None and answer == truth,
            1,
        )
    return out


def clusters(rows: Sequence[Row]) -> np.ndarray:
    """The cluster index of each row (0..K-1, in order of first appearance)."""
    index: dict[str, int] = {}
    return np.array([index.setdefault(cluster_key(r), len(index)) for r in rows], dtype=np.int64)


def per_cluster(counts: np.ndarray, members: np.ndarray) -> np.ndarray:
    """(K, 5) sums of the item counts over each cluster."""
    k = int(members.max()) + 1 if len(members) else 0
    out = np.zeros((k, counts.shape[1]), dtype=np.int64)
    np.add.at(out, members, counts)
    return out


def resample_weights(k: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, k) how often each of k clusters is drawn in each resample of k draws."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(resamples, k))
    offsets = (np.arange(resamples) * k)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=resamples * k)
    return counts.reshape(resamples, k).astype(float)  # float: matrix products use BLAS


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def rates(totals: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, precision, recall and F1 of (..., 5) summed counts (0/0 := 0)."""
    tp, fp, fn, correct, n = (totals[..., i] for i in range(len(COLUMNS)))
    return {
        "accuracy": _ratio(correct, n),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def interval(values: np.ndarray, confidence: float = CONFIDENCE) -> list[float]:
    """The percentile interval ``[lo, hi]`` of bootstrap values."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


def _settings(rows: Sequence[Row], k: int, resamples: int, seed: int) -> dict[str, Any]:
    keyed = all(r.get("class_id") is not None for r in rows)
    return {
        "method": "percentile bootstrap",
        "cluster": "class_id" if keyed else "item (some rows lack class_id)",
        "n_clusters": k,
        "resamples": resamples,
        "seed": seed,
        "confidence": CONFIDENCE,
    }


def intervals(rows: Sequence[Row], resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """``<metric>_ci95`` for accuracy, precision, recall and F1, and the ``ci`` settings."""
    members = clusters(rows)
    table = per_cluster(item_counts(rows), members)
    k = len(table)
    out: dict[str, Any] = {f"{m}_ci95": None for m in CI_METRICS}
    if k:
        boot = rates(resample_weights(k, resamples, seed) @ table)
        out.update({f"{m}_ci95": interval(boot[m]) for m in CI_METRICS})
    out["ci"] = _settings(rows, k, resamples, seed)
    return out


def add_intervals(metrics: dict[str, Any], rows: Sequence[Row], **kwargs: Any) -> dict[str, Any]:
    """``metrics`` (updated in place and returned) with the intervals of ``rows``."""
    metrics.update(intervals(rows, **kwargs))
    return metrics


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``a_only`` of ``a_only + b_only``
    discordant items at p = 1/2 (1.0 when there are none)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(a_only, b_only) + 1))
    return min(1.0, 2 * tail / 2**n)


def join(a: Sequence[Row], b: Sequence[Row]) -> list[tuple[Row, Row]]:
    """Pairs of predictions on identical items (joined by ``id``, in ``a``'s order)."""
    by_id = {row["id"]: row for row in b}
    pairs = []
    for row in a:
        other = by_id.get(row["id"])
        if other is None:
            continue
        if int(other["label"]) != int(row["label"]):
            raise ValueError(f"item {row['id']!r} has label {row['label']} and {other['label']}")
        pairs.append((row, other))
    return pairs


def _aligned_f1(sides: Sequence[Sequence[Row]], resamples: int, seed: int) -> dict[str, Any]:
    """F1 of each side (lists of rows on the same items, in the same order) and, with items,
    its bootstrap values under the same class draws for every side."""
    first = sides[0]
    keys = [
        {
            "id": row["id"],
            "class_id": next((s[i].get("class_id") for s in sides if s[i].get("class_id")), None),
        }
        for i, row in enumerate(first)
    ]
    members = clusters(keys)
    counts = [item_counts(side) for side in sides]
    k = int(members.max()) + 1 if len(first) else 0
    boot = None
    if len(first):
        weights = resample_weights(k, resamples, seed)
        boot = [rates(weights @ per_cluster(c, members))["f1"] for c in counts]
    return {
        "n": len(first),
        "n_clusters": k,
        "counts": counts,
        "f1": [float(rates(c.sum(axis=0))["f1"]) for c in counts],
        "boot": boot,
    }


def paired_comparison(
    a: Sequence[Row], b: Sequence[Row], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """F1(b) - F1(a) with its paired class bootstrap interval, and McNemar's p of accuracy."""
    pairs = join(a, b)
    aligned = _aligned_f1([[x for x, _ in pairs], [y for _, y in pairs]], resamples, seed)
    counts_a, counts_b = aligned["counts"]
    right_a, right_b = counts_a[:, 3].astype(bool), counts_b[:, 3].astype(bool)
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    f1_a, f1_b = aligned["f1"]
    out: dict[str, Any] = {
        "n": aligned["n"],
        "n_clusters": aligned["n_clusters"],
        "f1_a": f1_a,
        "f1_b": f1_b,
        "delta_f1": f1_b - f1_a,
        "delta_f1_ci95": None,
        "a_only_correct": a_only,
        "b_only_correct": b_only,
        "mcnemar_p": mcnemar_exact(a_only, b_only),
    }
    if aligned["boot"] is not None:
        boot_a, boot_b = aligned["boot"]
        out["delta_f1_ci95"] = interval(boot_b - boot_a)
    return out


def _shared_items(a: Sequence[Row], runs: Sequence[Sequence[Row]]) -> list[list[Row]]:
    """``a`` and each run restricted to the items all of them hold, each in ``a``'s order."""
    ids = {row["id"] for row in a}
    for run in runs:
        ids &= {row["id"] for row in run}
    kept = [row for row in a if row["id"] in ids]
    return [kept] + [[b for _, b in join(kept, run)] for run in runs]


def mean_paired_comparison(
    a: Sequence[Row], runs: Sequence[Sequence[Row]], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """The mean over ``runs`` of F1(run) - F1(a), with its paired class bootstrap interval.

    Every side is restricted to the items all of them share; each resample draws the classes
    once for all sides. ``f1_runs`` and ``delta_f1_runs`` give each run's own values (their
    spread is the runs' variation, which the interval does not hold), and ``mean_f1_ci95`` the
    interval of the runs' mean F1.
    """
    if not runs:
        raise ValueError("mean_paired_comparison needs at least one run")
    aligned = _aligned_f1(_shared_items(a, runs), resamples, seed)
    f1_a, *f1_runs = aligned["f1"]
    mean_f1 = float(np.mean(f1_runs))
    out: dict[str, Any] = {
        "n": aligned["n"],
        "n_clusters": aligned["n_clusters"],
        "runs": len(runs),
        "f1_a": f1_a,
        "f1_runs": f1_runs,
        "mean_f1": mean_f1,
        "mean_f1_ci95": None,
        "delta_f1_runs": [value - f1_a for value in f1_runs],
        "delta_f1": mean_f1 - f1_a,
        "delta_f1_ci95": None,
    }
    if aligned["boot"] is not None:
        boot_a, *boot_runs = aligned["boot"]
        mean = np.mean(boot_runs, axis=0)
        out["mean_f1_ci95"] = interval(mean)
        out["delta_f1_ci95"] = interval(mean - boot_a)
    return out


def mean_of_paired_differences(
    pairs: Sequence[tuple[Sequence[Row], Sequence[Row]]],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """The mean over ``pairs`` of F1(b) - F1(a), each pair its own runs (say seed k's SFT and
    the GRPO trained from it), with its paired class bootstrap interval.

    Every side is restricted to the items all of them share; each resample draws the classes
    once for all sides. ``delta_f1_runs`` gives each pair's own difference (their spread is
    the runs' variation, which the interval does not hold).
    """
    if not pairs:
        raise ValueError("mean_of_paired_differences needs at least one pair")
    first, *rest = [side for pair in pairs for side in pair]
    aligned = _aligned_f1(_shared_items(first, rest), resamples, seed)
    f1 = aligned["f1"]
    deltas = [f1[2 * i + 1] - f1[2 * i] for i in range(len(pairs))]
    out: dict[str, Any] = {
        "n": aligned["n"],
        "n_clusters": aligned["n_clusters"],
        "runs": len(pairs),
        "delta_f1_runs": deltas,
        "delta_f1": float(np.mean(deltas)),
        "delta_f1_ci95": None,
    }
    if aligned["boot"] is not None:
        boot = aligned["boot"]
        differences = [boot[2 * i + 1] - boot[2 * i] for i in range(len(pairs))]
        out["delta_f1_ci95"] = interval(np.mean(differences, axis=0))
    return out
