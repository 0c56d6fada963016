"""Shared test settings (few CPU threads: the machines have two cores) and the tiny fixtures:
a small Corr2Cause-style corpus, the tiny Qwen2 model, formatted data and one trained SFT run,
each built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlcausality.io import write_jsonl
from rlcausality.models.tiny import DEFAULT_DIMS
from rlcausality.settings.blocks import Model
from rlcausality.settings.config import deep_merge, load_settings, recipe_defaults

VARIABLES = "ABCDEF"
RELATIONS = {
    "direct_cause": "{a} directly causes {b}.",
    "parent": "{a} is a cause for {b}, but not a direct one.",
    "child": "{a} directly affects {b}.",
    "confounder": "There exists at least one confounder (cause of both) of {a} and {b}.",
}
# The SFT values that take the tiny model to >= 95 % parseable answers (see test_sft.py).
TINY_SFT = {
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
    "per_device_train_batch_size": 16,
    "gradient_accumulation_steps": 1,
    "learning_rate": 3.0e-3,
    "max_steps": 60,
    "warmup_steps": 0,
    "gradient_checkpointing": False,
    "save_steps": 20,
    "logging_steps": 5,
    "merge": True,
}
TINY_GRPO = {
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
    "num_generations": 4,
    "max_completion_length": 16,
    "learning_rate": 1.0e-3,
    "temperature": 1.0,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "max_steps": 4,
    "gradient_checkpointing": False,
    "save_steps": 2,
    "logging_steps": 1,
}


def make_rows(count: int, seed: int, prefix: str = "r") -> list[dict[str, Any]]:
    """Rows in the corpus schema, with premises/hypotheses in the Corr2Cause style."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        n = rng.randint(2, 4)
        names = list(VARIABLES[:n])
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        facts = []
        for i in range(n):
            for j in range(i + 1, n):
                a, b = names[i], names[j]
                independent = rng.random() < 0.4
                facts.append(
                    f"{a} is independent of {b}." if independent else f"{a} correlates with {b}."
                )
        premise = (
            f"Suppose there is a closed system of {n} variables, {listed}. All the statistical "
            f"relations among these {n} variables are as follows: " + " ".join(facts)
        )
        relation = rng.choice(sorted(RELATIONS))
        a, b = rng.sample(names, 2)
        hypothesis = RELATIONS[relation].format(a=a, b=b)
        rows.append(
            {
                "id": f"{prefix}{index}",
                "input": f"Premise: {premise}\nHypothesis: {hypothesis}",
                "label": rng.randint(0, 1),
                "premise": premise,
                "hypothesis": hypothesis,
                "relation": relation,
                "num_variables": n,
                "class_id": sorted(RELATIONS).index(relation),
            }
        )
    return rows


def model_settings(path: str | Path, family: str = "qwen2", **extra: Any) -> dict[str, Any]:
    settings = {
        "name": "tiny",
        "source": "tiny",
        "family": family,
        "path": str(path),
        "quantization": "none",
        "dtype": "auto",
        "trust_remote_code": False,
        "revision": None,
        "system_prompt": None,
        "stages": ["base", "sft", "grpo"],
        "tiny": dict(DEFAULT_DIMS),
    }
    settings.update(extra)
    return settings


def stage_settings(model: dict[str, Any], stage: str, **override: Any) -> dict[str, Any]:
    """Like config.stage_settings: recipe defaults < tiny values < ``override``."""
    tiny = {"sft": TINY_SFT, "grpo": TINY_GRPO}.get(stage, {})
    section = deep_merge(deep_merge(recipe_defaults()[stage], tiny), override)
    return {"model": model, stage: section}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_jsonl(root / "train.jsonl", make_rows(320, seed=1, prefix="train"))
    write_jsonl(root / "test.jsonl", make_rows(64, seed=2, prefix="test"))
    return root


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from rlcausality.models import tiny

    out = tmp_path_factory.mktemp("models") / "tiny" / "base"
    tiny.build({"model": model_settings(out)}, data_dir / "train.jsonl", out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_base: Path) -> dict[str, Any]:
    return model_settings(tiny_base)


@pytest.fixture(scope="session")
def formatted(tiny_model: dict[str, Any], data_dir: Path) -> dict[str, Path]:
    from rlcausality.data import formatting

    paths = {}
    settings = {"model": tiny_model, "format": {"max_length": 1024, "max_train_samples": None}}
    for fmt in ("sft", "grpo"):
        for split in ("train", "test"):
            out = data_dir / f"{split}.{fmt}.jsonl"
            formatting.main(
                [
                    "--settings", json.dumps(settings),
                    "--fmt", fmt,
                    "--input", str(data_dir / f"{split}.jsonl"),
                    "--output", str(out),
                    "--stats", str(data_dir / f"{split}.{fmt}.stats.json"),
                ]
            )  # fmt: skip
            paths[f"{split}.{fmt}"] = out
    return paths


@pytest.fixture(scope="session")
def sft_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: dict[str, Any], formatted: dict
) -> dict[str, Any]:
    """One full tiny SFT run (the configured 60 steps); its manifest."""
    from rlcausality.training import sft

    out = tmp_path_factory.mktemp("sft")
    settings = stage_settings(tiny_model, "sft")
    sft.main(
        [
            "--settings", json.dumps(settings),
            "--train", str(formatted["train.sft"]),
            "--output-dir", str(out),
            "--manifest", str(out / "manifest.json"),
            "--threads", "1",
        ]
    )  # fmt: skip
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., dict[str, Any]]:
    return stage_settings


@pytest.fixture(scope="session")
def rows_factory() -> Callable[..., list[dict[str, Any]]]:
    return make_rows


@pytest.fixture(scope="session")
def model_factory() -> Callable[..., dict[str, Any]]:
    return model_settings


def typed(model: dict[str, Any]) -> Model:
    """A model block as the entry points read it (``config.load_settings``)."""
    return load_settings({"model": model}).model


@pytest.fixture(scope="session")
def typed_model() -> Callable[[dict[str, Any]], Model]:
    return typed
