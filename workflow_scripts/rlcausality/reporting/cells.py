"""Cells (model, stage, test set): their key, their order, and loading them from files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.data.corr2cause.graphs import RELATIONS
from rlcausality.io import read_json, read_jsonl
from rlcausality.stages import ROBUSTNESS_VARIANTS, STAGES

STAGE_ORDER = STAGES
PRIMARY_TEST_SET = "test"
ROBUSTNESS_SETS = tuple(ROBUSTNESS_VARIANTS)
BASELINE_LABELS = {
    "majority": "always invalid (majority)",
    "always_valid": "always valid",
    "random": "random at prior (expected)",
    "relation_prior": "relation prior (from train)",
    "symbolic": "exact symbolic reasoner (oracle)",
}
Key = tuple[str, str, str]  # model, stage, test set


def relation_order(name: str) -> tuple[int, str]:
    """Sort key: the paper's relation order, anything else after it alphabetically."""
    return (RELATIONS.index(name), name) if name in RELATIONS else (len(RELATIONS), name)


def ordered_keys(keys: Sequence[Key], order_hint: Sequence[Key] = ()) -> list[Key]:
    models: list[str] = []
    for model, _, _ in [*order_hint, *keys]:
        if model not in models:
            models.append(model)
    tests: list[str] = []
    for _, _, test in [*order_hint, *keys]:
        if test not in tests:
            tests.append(test)

    def sort_key(key: Key) -> tuple[int, int, int]:
        stage = STAGE_ORDER.index(key[1]) if key[1] in STAGE_ORDER else len(STAGE_ORDER)
        return (models.index(key[0]), stage, tests.index(key[2]))

    return sorted(set(keys), key=sort_key)


def load_metrics(paths: Sequence[str]) -> dict[Key, dict[str, Any]]:
    cells: dict[Key, dict[str, Any]] = {}
    for path in paths:
        metrics = read_json(path)
        key = (str(metrics["model"]), str(metrics["stage"]), str(metrics["test_set"]))
        if key in cells:
            raise ValueError(f"{path}: a second metrics file for {':'.join(key)}")
        cells[key] = {**metrics, "_path": str(path)}
    return cells


def load_baselines(paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    result = {}
    for path in paths:
        data = read_json(path)
        result[str(data["test_set"])] = {**data, "_path": str(path)}
    return result


def load_predictions(
    paths: Sequence[str], cells: Mapping[Key, Mapping[str, Any]]
) -> dict[Key, list[dict[str, Any]]]:
    """Predictions of each cell: the ``predictions.jsonl`` beside its metrics file."""
    beside = {Path(c["_path"]).resolve().parent: key for key, c in cells.items()}
    out = {}
    for path in paths:
        key = beside.get(Path(path).resolve().parent)
        if key is None:
            raise ValueError(f"{path}: no metrics file of --metrics lies beside it")
        out[key] = list(read_jsonl(path))
    return out


def baseline_predictions_path(baselines_path: str) -> Path:
    """``.../{test_set}.json`` -> ``.../{test_set}.predictions.jsonl``."""
    return Path(baselines_path).with_suffix(".predictions.jsonl")


def load_baseline_predictions(
    paths: Sequence[str], baselines: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Per test set, the baselines' per-item answers (``{test_set}.predictions.jsonl`` beside
    the baselines file)."""
    owner = {baseline_predictions_path(b["_path"]).resolve(): t for t, b in baselines.items()}
    out = {}
    for path in paths:
        test = owner.get(Path(path).resolve())
        if test is None:
            raise ValueError(f"{path}: not the predictions of any --baselines file")
        out[test] = list(read_jsonl(path))
    return out
