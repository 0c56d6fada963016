"""Warnings a dry-run prints about settings that run but are unlikely to do what is meant.

* ``learning_rate_warnings``: a LoRA GRPO job whose learning rate lies in the range where, in
  the measurement of docs/demo.md ("GRPO learning rate"; ``benchmarks/grpo_lr.py``), GRPO
  barely moved the policy. Every GRPO job here trains a LoRA adapter, so the warning applies
  to every model with a GRPO stage.

Warnings never stop a run: the rate may be meant (a longer run, another model).
"""

from __future__ import annotations

from typing import Any

from rlcausality.settings.config import resolved_settings

# At or below this rate, 4 LoRA GRPO steps on SmolLM2-135M from its SFT adapter moved the
# policy by a token KL under 1e-5 nats (rounding) and P(Yes) by under 2e-4; the change of the
# LoRA weights grew in proportion to the rate (docs/demo.md, "GRPO learning rate").
LORA_GRPO_STILL_RATE = 5e-6
MEASURED_MOVING_RATE = 5e-5  # the measured rate that moved the policy


def learning_rate_warnings(config: dict[str, Any]) -> list[str]:
    """One line per model whose LoRA GRPO learning rate is in the range that did not move."""
    lines = []
    for name in config.get("models", {}):
        settings = resolved_settings(config, name)
        if "grpo" not in settings.model.stages:
            continue
        rate = float(settings.grpo.learning_rate)
        if rate <= LORA_GRPO_STILL_RATE:
            lines.append(
                f"WARNING: models.{name}.grpo.learning_rate {rate:g} with a LoRA adapter: at "
                f"≤ {LORA_GRPO_STILL_RATE:g} GRPO barely moved the policy in the measurement "
                f"of docs/demo.md (GRPO learning rate), and each step moves the adapter about "
                f"{rate / MEASURED_MOVING_RATE:.2g}x as far as a step at "
                f"{MEASURED_MOVING_RATE:g}; LoRA is usually trained at 1e-5 to 1e-4"
            )
    return lines
