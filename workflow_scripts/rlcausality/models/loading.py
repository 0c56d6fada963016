"""Loading models and tokenizers the same way in every stage.

``model`` is the ``model`` block of a job's typed settings (``rlcausality.settings.blocks.Model``):
it gives the path or hub id, revision, quantization, dtype and trust_remote_code. Remote code is
never trusted unless the model's config sets ``trust_remote_code: true``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rlcausality.launch import cuda_capability
from rlcausality.settings.blocks import Model


@dataclass(frozen=True)
class Precision:
    """Training/inference precision chosen from the hardware."""

    dtype: torch.dtype
    bf16: bool
    fp16: bool

    @property
    def name(self) -> str:
        if self.dtype == torch.float32 and self.bf16:
            return "bf16-autocast"  # fp32 weights, matmuls in bf16 (a CPU asked for bfloat16)
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")


BF16_CAPABILITY = (8, 0)  # Ampere: bf16 in hardware; earlier GPUs only emulate it


def choose_precision(
    requested: str = "auto", capability: tuple[int, int] | str | None = "detect"
) -> Precision:
    """bf16 on GPUs of compute capability ≥ 8.0, fp16 on earlier GPUs, fp32 on the CPU.

    ``bfloat16`` asked for on the CPU: fp32 weights (and optimizer state) with bf16 autocast
    (``bf16=True``: the trainers' matmuls in bf16). On a CPU with AVX-512 BF16 SmolLM2's SFT
    took 0.75x and its GRPO 0.87x the time of fp32 (docs/demo.md, "bf16 autocast on the CPU");
    the weights stay fp32, and so do the saved adapters. ``float16`` on the CPU stays fp32.

    ``torch.cuda.is_bf16_supported()`` is True on a V100 or RTX 2080 Ti too (by emulation, its
    default), so the decision reads the capability instead. ``capability`` None means no GPU;
    "detect" asks the device (``rlcausality.launch.cuda_capability``). ``bfloat16`` requested
    on a GPU without it is refused rather than emulated slowly.
    """
    if capability == "detect":
        capability = cuda_capability()
    if capability is None and requested == "bfloat16":
        return Precision(torch.float32, bf16=True, fp16=False)
    if requested == "float32" or capability is None:
        return Precision(torch.float32, bf16=False, fp16=False)
    native_bf16 = tuple(capability) >= BF16_CAPABILITY
    if requested == "bfloat16" and not native_bf16:
        raise ValueError(
            f"dtype: bfloat16 was asked for, but this GPU (compute capability "
            f"{capability[0]}.{capability[1]}) has no bf16 in hardware; set dtype: auto "
            "(fp16 here) or float16"
        )
    if requested == "bfloat16" or (requested == "auto" and native_bf16):
        return Precision(torch.bfloat16, bf16=True, fp16=False)
    return Precision(torch.float16, bf16=False, fp16=True)


def inference_precision(
    model: Model, requested: str = "auto", capability: tuple[int, int] | str | None = "detect"
) -> Precision:
    """The precision evaluation runs the model in (``evaluate.dtype``).

    ``auto``: the precision of the weights training used (``choose_precision(model.dtype)``;
    on a CPU fp32, also where training ran under bf16 autocast).
    ``bfloat16`` on a CPU too: there decoding is bound by reading the weights once per step,
    and halving them halves it (docs/demo.md); on a GPU without bf16 it is refused, as in
    training. ``float32``: full precision anywhere.
    """
    if requested not in ("auto", "bfloat16", "float32"):
        raise ValueError(f"evaluate.dtype: {requested!r}; expected auto, bfloat16 or float32")
    if capability == "detect":
        capability = cuda_capability()
    if requested == "bfloat16" and capability is None:
        return Precision(torch.bfloat16, bf16=True, fp16=False)
    if requested == "auto" and capability is None:  # what training used: fp32 weights
        return Precision(torch.float32, bf16=False, fp16=False)
    return choose_precision(model.dtype if requested == "auto" else requested, capability)


def _hub_kwargs(model: Model) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": bool(model.trust_remote_code)}
    if model.revision:
        kwargs["revision"] = model.revision
    if model.hub:  # pinned to a downloaded snapshot (models.hub): never the hub
        kwargs["local_files_only"] = True
    return kwargs


def load_tokenizer(model: Model, path: str | None = None) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path or model.path, **_hub_kwargs(model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(model: Model, precision: Precision) -> Any:
    """A bitsandbytes config for ``4bit`` (nf4, QLoRA) or ``8bit``; None for ``none``."""
    quant = model.quantization
    if quant == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quant == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=precision.dtype,
        )
    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"quantization must be none, 4bit or 8bit, got {quant!r}")


def load_model(
    model: Model,
    path: str | None = None,
    precision: Precision | None = None,
    device_map: Any = None,
) -> Any:
    """The base causal LM, quantised as configured, in the chosen precision."""
    from transformers import AutoModelForCausalLM

    precision = precision or choose_precision(model.dtype)
    kwargs = _hub_kwargs(model)
    quant = quantization_config(model, precision)
    if quant is not None:
        kwargs["quantization_config"] = quant
        if device_map is None and cuda_capability() is not None:
            device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if device_map is not None:
        kwargs["device_map"] = device_map
    return AutoModelForCausalLM.from_pretrained(path or model.path, dtype=precision.dtype, **kwargs)


@dataclass(frozen=True)
class Artifacts:
    """What a stage's model is made of: weights to load, an adapter on them, the tokenizer.

    The one reading of a training manifest that every consumer uses (evaluation with
    transformers or vLLM, and any later stage).
    """

    weights: str
    adapter: str | None
    tokenizer: str
    merged: bool


def artifacts(model: Model, manifest: dict[str, Any] | None) -> Artifacts:
    """The base model itself (``manifest`` None), merged weights if saved, else base + adapter."""
    if manifest is None:
        path = str(model.path)
        return Artifacts(path, None, path, merged=False)
    if manifest.get("merged_path"):
        merged = str(manifest["merged_path"])
        return Artifacts(merged, None, merged, merged=True)
    adapter = str(manifest["adapter_path"])
    has_tokenizer = (Path(adapter) / "tokenizer_config.json").exists()
    tokenizer = adapter if has_tokenizer else str(manifest["base_model"])
    return Artifacts(str(manifest["base_model"]), adapter, tokenizer, merged=False)


def load_trained(
    model: Model,
    manifest: dict[str, Any] | None,
    precision: Precision | None = None,
    trainable: bool = False,
    merge: bool = False,
) -> Any:
    """The model a stage produced (``artifacts``); ``trainable`` always takes base + adapter.

    ``merge`` (for generation): an adapter on a base that is not quantised is folded into the
    weights in memory (``merge_and_unload``), so each layer runs one matmul, not the base's and
    the adapter's: a stage saved as an adapter alone (GRPO) then generates as fast as a merged
    one (docs/demo.md, "Time"). A quantised base keeps its adapter, which cannot be folded
    into 4-bit weights without rounding it away.
    """
    parts = artifacts(model, manifest)
    if manifest is not None and trainable and parts.merged:
        parts = artifacts(model, {**manifest, "merged_path": None})
    if parts.merged:
        unquantized = dataclasses.replace(model, quantization="none")
        return load_model(unquantized, path=parts.weights, precision=precision)
    base = load_model(model, path=parts.weights, precision=precision)
    if parts.adapter is None:
        return base
    from peft import PeftModel

    adapted = PeftModel.from_pretrained(base, parts.adapter, is_trainable=trainable)
    if merge and not trainable and not model.quantized:
        return adapted.merge_and_unload()
    return adapted
