"""The benchmarked model: config.yaml's settings at the benchmark's step shape, the random-init
base (reloaded in 4 bits the way the workflow loads it, when asked) and the project's LoRA."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu_bench.architectures import (
    Arch,
    count_parameters,
    model_config,
    model_settings,
)
from benchmarks.gpu_bench.environment import free_memory, scratch_dir, sync
from rlcausality import lora
from rlcausality.models.loading import load_model

QUANTIZED = "4bit-nf4 (bitsandbytes, double quant, reloaded via load_model)"


def sft_settings(model_name: str, args: Any) -> dict[str, Any]:
    """config.yaml's settings for the model, with the benchmark's step shape."""
    settings = model_settings(model_name)
    sft = settings["sft"]
    sft["lora"] = {**sft.get("lora", {}), "r": args.lora_r, "alpha": 2 * args.lora_r}
    sft.update(
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.warmup_steps + args.steps,
        warmup_steps=0,
        max_length=args.seq_len,
        gradient_checkpointing=True,
        save_steps=10**9,
        save_total_limit=None,
        logging_steps=10**9,
        deepspeed=None,  # one process on one GPU: ZeRO would shard nothing
    )
    if args.dtype:
        settings["model"]["dtype"] = args.dtype
    settings["precision"] = lora.stage_precision(settings)
    return settings


def random_base(arch: Arch, dims: dict[str, Any], settings: dict[str, Any]) -> Any:
    """The random-init model of ``arch`` at ``dims``, on the GPU (or the CPU)."""
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(
            model_config(arch, dims), dtype=settings["precision"].dtype
        )
    sync()
    return model


def load_4bit(settings: dict[str, Any], path: Path) -> Any:
    """The saved model at ``path``, loaded through ``load_model`` (the project's nf4 config)."""
    quant_settings = {**settings["model"], "quantization": "4bit", "trust_remote_code": False}
    model = load_model(quant_settings, path=str(path), precision=settings["precision"])
    sync()
    return model


def build_base(
    arch: Arch, dims: dict[str, Any], settings: dict[str, Any], quantize: bool, tmp_dir: str | None
) -> tuple[Any, dict[str, Any]]:
    """The random-init base model, on the GPU (or CPU), quantised when asked: saved to a scratch
    folder and reloaded in 4 bits, the bf16 copy freed before the reload."""
    start = time.perf_counter()
    model = random_base(arch, dims, settings)
    info: dict[str, Any] = {"build_s": round(time.perf_counter() - start, 2)}
    info.update(count_parameters(model))
    if not quantize:
        info["quantization"] = "none"
        return model, info
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    with scratch_dir(size, tmp_dir) as tmp:
        start = time.perf_counter()
        model.save_pretrained(tmp)
        info["save_s"] = round(time.perf_counter() - start, 2)
        del model
        free_memory()
        start = time.perf_counter()
        model = load_4bit(settings, tmp)
        info["quantize_load_s"] = round(time.perf_counter() - start, 2)
    info["quantization"] = QUANTIZED
    info["stored_parameters"] = sum(p.numel() for p in model.parameters())
    return model, info


def lora_model(base: Any, settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The project's own LoRA set-up (``lora.attach_lora``) on an already built base."""
    trainable = lora.attach_lora(base, settings, "sft", settings["precision"])
    model = trainable.model
    return model, {
        "family": trainable.family.name,
        "lora_r": settings["sft"]["lora"]["r"],
        "lora_targets": trainable.adapted,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "lora_dropout": settings["sft"]["lora"].get("dropout", 0.0),
    }
