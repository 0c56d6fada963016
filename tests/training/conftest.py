"""Fixtures for the training tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
