"""A model's architecture as the plan needs it: parameter counts by kind, LoRA sizes, KV bytes.

The facts come from the model's ``config.json`` when the model is on disk (a built tiny or GGUF
model, a downloaded hub snapshot, a local folder), else from the ``tiny:`` dims, else from
``architectures.yaml`` shipped with the package. Counts are exact for the decoder families the
workflow trains (Qwen2, Llama, Phi-3): tests/test_plan_exact.py compares them with models that
transformers builds on the meta device and with PEFT's LoRA on them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rlcausality.models import hub
from rlcausality.models.sources import BUILT_SOURCES
from rlcausality.models.tiny import DEFAULT_DIMS
from rlcausality.settings.blocks import Model

# Phi-3 fuses q/k/v and gate/up into one Linear each; the others keep them apart.
FUSED_FAMILIES = ("phi3",)
KNOWN_TYPES = ("qwen2", "llama", "phi3", "mistral")


@dataclass(frozen=True)
class Arch:
    model_type: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    head_dim: int
    qkv_bias: bool
    source: str  # where these facts were read

    def linears(self) -> dict[str, tuple[int, int, bool]]:
        """One layer's Linear modules: name -> (in, out, has bias)."""
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        if self.model_type in FUSED_FAMILIES:
            return {
                "qkv_proj": (h, q + 2 * kv, False),
                "o_proj": (q, h, False),
                "gate_up_proj": (h, 2 * i, False),
                "down_proj": (i, h, False),
            }
        bias = self.qkv_bias
        return {
            "q_proj": (h, q, bias),
            "k_proj": (h, kv, bias),
            "v_proj": (h, kv, bias),
            "o_proj": (q, h, False),
            "gate_proj": (h, i, False),
            "up_proj": (h, i, False),
            "down_proj": (i, h, False),
        }

    @property
    def layer_linear_weights(self) -> int:
        """Weights of the decoder layers' Linear modules (what 4/8-bit quantisation stores)."""
        return self.layers * sum(a * b for a, b, _ in self.linears().values())

    @property
    def embedding(self) -> int:
        return self.vocab * self.hidden

    @property
    def lm_head(self) -> int:
        """Parameters of an untied output layer (0 when tied to the embedding)."""
        return 0 if self.tied else self.vocab * self.hidden

    @property
    def dense_other(self) -> int:
        """Biases and norms: the decoder's parameters that are neither Linear weights nor tables."""
        biases = sum(b for _, b, has in self.linears().values() if has)
        return self.layers * (biases + 2 * self.hidden) + self.hidden

    @property
    def parameters(self) -> int:
        """Every parameter, a tied table once (``sum(p.numel() for p in model.parameters())``)."""
        return self.layer_linear_weights + self.embedding + self.lm_head + self.dense_other

    @property
    def matmul_parameters(self) -> int:
        """Weights a token multiplies through: every Linear layer and the output projection."""
        return self.layer_linear_weights + self.vocab * self.hidden

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return self.layers * 2 * self.kv_heads * self.head_dim * dtype_bytes

    def lora_targets(self, targets: list[str] | str) -> dict[str, tuple[int, int, bool]]:
        """The layer's Linear modules a LoRA of ``targets`` adapts (``all-linear``: all)."""
        linears = self.linears()
        if isinstance(targets, str):
            return linears
        return {name: linears[name] for name in targets if name in linears}

    def lora_parameters(self, targets: list[str] | str, rank: int) -> int:
        """Trainable LoRA parameters: r × (in + out) per adapted module and layer."""
        adapted = self.lora_targets(targets)
        return self.layers * sum(rank * (a + b) for a, b, _ in adapted.values())


@functools.cache
def shipped() -> dict[str, dict[str, Any]]:
    text = resources.files("rlcausality.plan").joinpath("architectures.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def from_config(config: dict[str, Any], source: str) -> Arch | None:
    """The facts of a transformers ``config.json`` (as a dict); None for another family."""
    model_type = config.get("model_type")
    if model_type not in KNOWN_TYPES:
        return None
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    return Arch(
        model_type=model_type,
        layers=int(config["num_hidden_layers"]),
        hidden=hidden,
        heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        intermediate=int(config["intermediate_size"]),
        vocab=int(config["vocab_size"]),
        # Qwen2Config, LlamaConfig and Phi3Config all default to untied
        tied=bool(config.get("tie_word_embeddings", False)),
        head_dim=int(config.get("head_dim") or hidden // heads),
        qkv_bias=model_type == "qwen2" or bool(config.get("attention_bias", False)),
        source=source,
    )


def tiny_config(dims: dict[str, Any]) -> dict[str, Any]:
    """The config.json the tiny build (rlcausality.models.tiny) writes for ``dims``."""
    dims = {**DEFAULT_DIMS, **(dims or {})}
    return {
        "model_type": "qwen2",
        "num_hidden_layers": dims["num_layers"],
        "hidden_size": dims["hidden_size"],
        "num_attention_heads": dims["num_heads"],
        "num_key_value_heads": dims["num_kv_heads"],
        "intermediate_size": dims["intermediate_size"],
        "vocab_size": dims["vocab_size"],
        "tie_word_embeddings": True,
    }


def local_config_path(config: dict[str, Any], model: Model) -> Path | None:
    """Where the model's config.json is (or will be) on this machine; None for a hub id."""
    source = model.source
    if source in BUILT_SOURCES:
        return Path(model.path) / "config.json"
    if source == "path":
        return Path(model.id) / "config.json"
    manifest = Path(hub.manifest_path(model.name))
    try:
        snapshot = json.loads(manifest.read_text("utf-8"))["snapshot"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(snapshot) / "config.json"


def shipped_key(model: Model) -> str | None:
    if model.source == "gguf":
        gguf = model.blocks.get("gguf") or {}
        return f"gguf:{gguf.get('package')}/{gguf.get('file')}"
    return model.id


def for_model(config: dict[str, Any], model: Model) -> Arch | None:
    """The architecture of a resolved ``model`` block: on disk, else tiny dims, else shipped."""
    path = local_config_path(config, model)
    if path is not None and path.is_file():
        try:
            return from_config(json.loads(path.read_text("utf-8")), str(path))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if model.source == "tiny":
        return from_config(tiny_config(model.blocks.get("tiny") or {}), "config.yaml tiny dims")
    key = shipped_key(model)
    facts = shipped().get(key) if key else None
    if facts is None:
        return None
    return from_config(facts, f"rlcausality/plan/architectures.yaml: {key}")
