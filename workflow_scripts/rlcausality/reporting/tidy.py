"""Every number of the summary as one tidy table: ``results/reports/metrics.tsv``.

One row per model, stage, test set and metric, with its value, its 95% interval (``ci_low``,
``ci_high``, the class bootstrap of ``rlcausality.evaluation.uncertainty``) where it has one, ``n``
(items scored) and ``classes`` (equivalence classes resampled). Baselines are rows of the model
``baseline`` whose stage is the baseline's name. A researcher loads it all with

    pandas.read_csv("results/reports/metrics.tsv", sep="\\t")

and the summary's tables ("F1 of the valid class", "All cells") are built from this frame
(``cell_metrics``), so what the report shows is what the file holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from rlcausality.reporting.cells import Key

COLUMNS = ["model", "stage", "test_set", "metric", "value", "ci_low", "ci_high", "n", "classes"]
METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "parse_rate",
    "mean_completion_tokens",
    "truncation_rate",
)
BASELINE = "baseline"


def _rows(model: str, stage: str, test_set: str, metrics: Mapping[str, Any]) -> list[list[Any]]:
    n = metrics.get("n")
    classes = (metrics.get("ci") or {}).get("n_clusters")
    rows = []
    for metric in METRICS:
        value = metrics.get(metric)
        if value is None:
            continue
        low, high = (metrics.get(f"{metric}_ci95") or (None, None))[:2]
        rows.append([model, stage, test_set, metric, value, low, high, n, classes])
    return rows


def metrics_frame(
    cells: Mapping[Key, Mapping[str, Any]], baselines: Mapping[str, Mapping[str, Any]]
) -> pd.DataFrame:
    """The tidy table of every model cell and every baseline that scored."""
    rows: list[list[Any]] = []
    for (model, stage, test_set), metrics in cells.items():
        rows += _rows(model, stage, test_set, metrics)
    for test_set, data in baselines.items():
        for name, metrics in (data.get("baselines") or {}).items():
            if metrics and "error" not in metrics:
                rows += _rows(BASELINE, name, test_set, metrics)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"n": "Int64", "classes": "Int64"})


def cell_metrics(frame: pd.DataFrame, model: str, stage: str, test_set: str) -> dict[str, Any]:
    """One cell's metrics read back from the frame, in the shape of its metrics.json (value,
    ``<metric>_ci95``, ``n``, ``ci.n_clusters``); empty when the frame has no such cell."""
    rows = frame[(frame.model == model) & (frame.stage == stage) & (frame.test_set == test_set)]
    if rows.empty:
        return {}
    first = rows.iloc[0]
    out: dict[str, Any] = {
        "n": None if pd.isna(first.n) else int(first.n),
        "ci": {"n_clusters": None if pd.isna(first.classes) else int(first.classes)},
    }
    for row in rows.itertuples():
        out[row.metric] = row.value
        if not pd.isna(row.ci_low):
            out[f"{row.metric}_ci95"] = [row.ci_low, row.ci_high]
    return out


def write_tsv(frame: pd.DataFrame, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False)
