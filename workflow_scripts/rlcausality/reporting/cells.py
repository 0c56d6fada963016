"""Cells (model, stage, test set): their key, their order, and loading them from files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlcausality.corr2cause.graphs import RELATIONS
from rlcausality.io import read_json
from rlcausality.stages import ROBUSTNESS_VARIANTS, STAGES

STAGE_ORDER = STAGES
PRIMARY_TEST_SET = "test"
ROBUSTNESS_SETS = tuple(ROBUSTNESS_VARIANTS)
BASELINE_LABELS = {
    "majority": "always invalid (majority)",
    "random": "random at prior (expected)",
    "symbolic": "exact symbolic reasoner",
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
