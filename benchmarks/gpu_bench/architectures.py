"""The model the benchmark builds for a config.yaml model name, and its benchmark tokenizer.

A model's architecture is the plan's (``rlcausality.plan.arch.for_model``: the model's
config.json when it is on disk, else its ``tiny:`` dims, else ``architectures.yaml``), built as a
transformers config with random weights; smoke mode keeps the architecture (its type, grouped or
full KV heads, tied or untied embeddings, attention bias) at tiny dims.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from rlcausality.plan import arch as archs
from rlcausality.settings.blocks import Settings
from rlcausality.settings.config import resolved_settings
from rlcausality.settings.validation import validate_config

REPO = Path(__file__).resolve().parents[2]
CONFIG_YAML = REPO / "config.yaml"

PROMPT_TOKENS = {"pad": 0, "eos": 1, "unk": 2}  # the benchmark tokenizer's whole vocabulary

# Longer than every sequence the benchmark runs; what a step costs does not depend on it.
MAX_POSITIONS = 32768
SMOKE_DIMS = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 512,
    "max_position_embeddings": 4096,
}
SMOKE_KV_HEADS = 2  # of SMOKE_DIMS' 4 heads, for an architecture with grouped KV heads


@functools.cache
def project_config() -> dict[str, Any]:
    """config.yaml, validated (schema defaults filled in)."""
    return validate_config(yaml.safe_load(CONFIG_YAML.read_text("utf-8")))


def model_names() -> list[str]:
    return list(project_config()["models"])


def default_models() -> list[str]:
    """The models config.yaml builds when no target is named (its ``run``)."""
    return list(project_config()["run"])


def model_settings(name: str) -> Settings:
    """The typed settings of the model ``name``: every section, recipe defaults merged in."""
    return resolved_settings(project_config(), name)


@dataclass(frozen=True)
class Arch:
    """One benchmarked model: its config.yaml name and the plan's facts of its architecture."""

    model: str  # the model's name in config.yaml
    stands_for: str  # the hub id (or GGUF file, or tiny dims) it stands for; never downloaded
    facts: archs.Arch

    @property
    def model_type(self) -> str:
        return self.facts.model_type

    @property
    def architecture(self) -> str:
        """The transformers architecture's name (Qwen2, Phi3, Llama)."""
        from transformers import CONFIG_MAPPING

        return CONFIG_MAPPING[self.model_type].__name__.removesuffix("Config")

    def dims(self, smoke: bool) -> dict[str, Any]:
        """The transformers config values of the model built (``model_type`` aside)."""
        facts = self.facts
        if smoke:
            full_kv = facts.kv_heads == facts.heads
            kv_heads = SMOKE_DIMS["num_attention_heads"] if full_kv else SMOKE_KV_HEADS
            dims = {**SMOKE_DIMS, "num_key_value_heads": kv_heads}
        else:
            dims = {
                "hidden_size": facts.hidden,
                "num_hidden_layers": facts.layers,
                "num_attention_heads": facts.heads,
                "num_key_value_heads": facts.kv_heads,
                "intermediate_size": facts.intermediate,
                "vocab_size": facts.vocab,
                "max_position_embeddings": MAX_POSITIONS,
            }
            if facts.head_dim != facts.hidden // facts.heads:
                dims["head_dim"] = facts.head_dim
        dims["tie_word_embeddings"] = facts.tied
        if facts.qkv_bias and facts.model_type != "qwen2":  # Qwen2 always has q/k/v biases
            dims["attention_bias"] = True
        return dims


def benchmark_arch(name: str) -> Arch:
    """The architecture of config.yaml's model ``name``, as the plan knows it."""
    model = model_settings(name).model
    facts = archs.for_model(project_config(), model)
    if facts is None:
        raise ValueError(f"{name}: rlcausality.plan knows no architecture for this model")
    return Arch(model=name, stands_for=archs.shipped_key(model) or facts.source, facts=facts)


def unknown_models(names: list[str]) -> list[str]:
    """Why each of ``names`` cannot be benchmarked: not a config.yaml model, or no known
    architecture; empty when every one can."""
    known = model_names()
    problems = []
    for name in names:
        if name not in known:
            problems.append(f"{name}: not a model of config.yaml ({', '.join(known)})")
            continue
        try:
            benchmark_arch(name)
        except ValueError as error:
            problems.append(str(error))
    return problems


def model_config(arch: Arch, dims: dict[str, Any]) -> Any:
    """The transformers config of ``arch`` at ``dims``, with the benchmark tokenizer's ids."""
    from transformers import AutoConfig

    return AutoConfig.for_model(
        arch.model_type,
        **dims,
        pad_token_id=PROMPT_TOKENS["pad"],
        bos_token_id=PROMPT_TOKENS["eos"],
        eos_token_id=PROMPT_TOKENS["eos"],
        use_cache=True,
    )


def count_parameters(model: Any) -> dict[str, int]:
    """All parameters (embedding tables counted once if tied), and those of Linear layers."""
    total = sum(p.numel() for p in model.parameters())
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return {"parameters": total, "matmul_parameters": matmul}


def benchmark_tokenizer() -> Any:
    """A three-token tokenizer: the data are random ids, the trainer only needs pad/eos."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(
        WordLevel(vocab={f"<{k}>": v for k, v in PROMPT_TOKENS.items()}, unk_token="<unk>")
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
