"""Fixtures for the training tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlcausality.data.corr2cause.generate import generate_corpus
from rlcausality.io import write_jsonl
from rlcausality.models import tiny
from rlcausality.models.loading import load_tokenizer
from rlcausality.settings.blocks import Settings
from rlcausality.training import lora, sft


@pytest.fixture(scope="session")
def sft_trainer(formatted: dict[str, Path]) -> Callable[[Settings, Path], Any]:
    """Build TRL's SFTTrainer on the tiny SFT train split the way the SFT job builds it
    (``sft.sft_config``, ``lora.new_lora_model``); call it with the settings and an output dir."""

    def build(settings: Settings, output_dir: Path) -> Any:
        from trl import SFTTrainer

        precision = lora.stage_precision(settings.model)
        args = sft.sft_config(settings, str(output_dir), precision, False)
        trainable = lora.new_lora_model(settings.model, settings.sft, args)
        return SFTTrainer(
            model=trainable.model,
            args=args,
            train_dataset=sft.load_rows(formatted["train.sft"]),
            processing_class=load_tokenizer(settings.model),
        )

    return build


@pytest.fixture(scope="session")
def corpus_model(model_factory) -> Callable[[Path], tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Call with a folder: the train rows of the exact corpus at N = 3..4, and the settings of
    a tiny model built there with a tokenizer trained on them."""

    def build(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        corpus = generate_corpus({"num_variables": [3, 4], "robustness": False})["train"]
        write_jsonl(root / "corpus.jsonl", corpus)  # the tokenizer's training text
        base = root / "base"
        tiny.build({"model": model_factory(base)}, root / "corpus.jsonl", base)
        return corpus, model_factory(base)

    return build


@pytest.fixture(scope="session")
def memorize(make_settings) -> Callable[..., Path]:
    """Call with a model's settings, formatted SFT rows, an output folder and SFT overrides:
    SFT at a high constant learning rate and LoRA rank 32, long enough to learn a few rows by
    heart; returns the SFT manifest."""

    def train(model: dict[str, Any], rows: Path, out: Path, **override: Any) -> Path:
        settings = make_settings(
            model, "sft", learning_rate=5e-3, lora={"r": 32, "alpha": 64, "dropout": 0.0},
            warmup_steps=0, lr_scheduler_type="constant", save_steps=1000, logging_steps=50,
            **override,
        )  # fmt: skip
        sft.main(
            ["--settings", json.dumps(settings), "--train", str(rows), "--output-dir", str(out),
             "--manifest", str(out / "manifest.json"), "--threads", "1"]
        )  # fmt: skip
        return out / "manifest.json"

    return train
