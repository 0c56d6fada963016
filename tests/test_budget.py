"""Budget arithmetic and decisions that need no trainer (the trainer checks: models/test_budget)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import yaml

from rlcausality.settings.config import load_settings
from rlcausality.settings.validation import validate_config
from rlcausality.training import budget, lora

REPO = Path(__file__).resolve().parents[1]
MODEL = {"name": "m", "source": "path", "family": "qwen2", "path": "unused", "stages": ["base"]}


def test_corpus_rows_are_counted_when_the_corpus_exists(tmp_path: Path) -> None:
    config = validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    estimate = budget.corpus_train_rows(config, tmp_path / "missing.json")
    # 207,432 items for N = 2..6, 80 % of the classes in train: the generator gives 165,972
    assert abs(estimate - 165_972) / 165_972 < 0.001
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"splits": {"train": {"items": 165_972}}}))
    assert budget.corpus_train_rows(config, stats) == 165_972


def test_one_epoch_of_recipe_grpo_is_what_the_issue_counted() -> None:
    stage = {"max_steps": -1, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 16,
             "num_generations": 4, "num_train_epochs": 1}  # fmt: skip
    stage = load_settings({"model": MODEL, "grpo": stage}).grpo
    assert budget.grpo_steps(stage, 165_972, processes=1) == 41_493
    assert budget.grpo_steps(stage, 165_972, processes=2) == 20_746
    longer = dataclasses.replace(stage, max_steps=600)
    assert budget.grpo_steps(longer, 165_972, processes=1) == 600


def test_zero3_keeps_adapters_in_the_base_dtype() -> None:
    zero3 = SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=3))
    zero2 = SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=2))
    plain = load_settings({"model": {**MODEL, "quantization": "none"}}).model
    quantized = load_settings({"model": {**MODEL, "quantization": "4bit"}}).model
    assert lora.adapter_dtype_kwargs(plain, zero3) == {"autocast_adapter_dtype": False}
    assert lora.adapter_dtype_kwargs(plain, zero2) == {}
    assert lora.adapter_dtype_kwargs(quantized, zero3) == {}
    assert lora.adapter_dtype_kwargs(plain, None) == {}
