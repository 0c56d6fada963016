"""Dry-run warnings: a LoRA GRPO learning rate in the range that did not move the policy."""

from __future__ import annotations

from pathlib import Path

import yaml

from rlcausality.plan.advice import LORA_GRPO_STILL_RATE, learning_rate_warnings
from rlcausality.settings.validation import validate_config


def config_with(rates: dict[str, float]) -> dict:
    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    for name, rate in rates.items():
        config["models"][name].setdefault("grpo", {})["learning_rate"] = rate
    return validate_config(config)


def test_a_rate_that_did_not_move_is_named() -> None:
    config = config_with({"qwen2.5-1.5b": 5e-7, "tiny": 1e-3, "smollm2-135m": 5e-5})
    lines = learning_rate_warnings(config)
    named = [line for line in lines if "models.qwen2.5-1.5b.grpo.learning_rate 5e-07" in line]
    assert len(named) == 1 and "docs/demo.md" in named[0]
    assert not any("models.tiny." in line or "smollm2" in line for line in lines)


def test_the_boundary_and_models_without_grpo() -> None:
    config = config_with({"tiny": LORA_GRPO_STILL_RATE})
    assert any("models.tiny." in line for line in learning_rate_warnings(config))
    config["models"]["tiny"]["stages"] = ["base", "sft"]
    assert not any("models.tiny." in line for line in learning_rate_warnings(config))
