"""Model families: which modules LoRA adapts and how each chat template behaves.

A family is chosen per model in config.yaml. LoRA targets differ between architectures: Qwen2
names on a Phi-3 model would silently adapt only ``o_proj`` and ``down_proj``, so training code
checks that every target of the family exists in the loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlcausality.settings.blocks import Lora
from rlcausality.task import SYSTEM_PROMPT

LLAMA_STYLE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PHI3_TARGETS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]  # config.model_type values this family expects
    lora_targets: tuple[str, ...]
    supports_system_prompt: bool
    # The system prompt used when the model's config sets none. None: send no system turn.
    default_system_prompt: str | None
    # True when the chat template's generation prompt already opens "<think>".
    opens_think: bool = False
    # Sampling temperature the model's authors recommend (None: greedy is fine).
    recommended_temperature: float | None = None


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="qwen2",
            model_types=("qwen2",),
            lora_targets=LLAMA_STYLE_TARGETS,
            supports_system_prompt=True,
            default_system_prompt=None,
        ),
        Family(
            name="qwen2-r1",
            model_types=("qwen2",),
            lora_targets=LLAMA_STYLE_TARGETS,
            supports_system_prompt=False,
            default_system_prompt=None,
            opens_think=True,
            recommended_temperature=0.6,
        ),
        Family(
            name="phi3",
            model_types=("phi3",),
            lora_targets=PHI3_TARGETS,
            supports_system_prompt=True,
            default_system_prompt=None,
        ),
        Family(
            name="llama",
            model_types=("llama",),
            lora_targets=LLAMA_STYLE_TARGETS,
            supports_system_prompt=True,
            # SmolLM2's template inserts a generic "helpful assistant" system turn when none
            # is given; every stage sends the task's own instead.
            default_system_prompt=SYSTEM_PROMPT,
        ),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise KeyError(f"unknown model family {name!r}; known families: {known}") from None


def lora_targets(lora: Lora, family: Family) -> list[str] | str:
    """The configured ``lora.target_modules``, or the family's when unset."""
    configured = lora.target_modules
    if configured is None:
        return list(family.lora_targets)
    return configured if isinstance(configured, str) else list(configured)
