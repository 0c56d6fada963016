"""The benchmarked model: config.yaml's settings at the benchmark's step shape, the random-init
base (reloaded in 4 bits the way the workflow loads it, when asked) and the project's LoRA."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
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
from rlcausality.models.loading import Precision, load_model
from rlcausality.settings.blocks import Model, Settings, Sft
from rlcausality.training import lora

QUANTIZED = "4bit-nf4 (bitsandbytes, double quant, reloaded via load_model)"


@dataclass(frozen=True)
class SftSetup:
    """A model's typed settings at the benchmark's step shape, and the precision the project
    chooses for them on this machine (``lora.stage_precision``)."""

    settings: Settings
    precision: Precision

    @property
    def model(self) -> Model:
        return self.settings.model

    @property
    def sft(self) -> Sft:
        return self.settings.of("sft")


def benchmark_stage(sft: Sft, args: Any) -> Sft:
    """config.yaml's SFT stage with the benchmark's step shape: ``--lora-r`` (alpha 2r), one
    batch of ``--seq-len`` tokens per step, no saving or logging, DeepSpeed when asked."""
    return dataclasses.replace(
        sft,
        lora=dataclasses.replace(sft.lora, r=args.lora_r, alpha=2 * args.lora_r),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.warmup_steps + args.steps,
        warmup_steps=0,
        max_length=args.seq_len,
        gradient_checkpointing=True,
        save_steps=10**9,
        save_total_limit=None,
        logging_steps=10**9,
        deepspeed=args.deepspeed,  # --deepspeed zero2 under torchrun, else one plain process
    )


def sft_setup(model_name: str, args: Any) -> SftSetup:
    """config.yaml's settings for the model, with the benchmark's step shape (and ``--dtype``),
    and their precision."""
    settings = model_settings(model_name)
    model = dataclasses.replace(settings.model, dtype=args.dtype) if args.dtype else settings.model
    stage = benchmark_stage(settings.of("sft"), args)
    settings = dataclasses.replace(settings, model=model, sft=stage)
    return SftSetup(settings, lora.stage_precision(model))


def random_base(arch: Arch, dims: dict[str, Any], precision: Precision) -> Any:
    """The random-init model of ``arch`` at ``dims``, on the GPU (or the CPU)."""
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config(arch, dims), dtype=precision.dtype)
    sync()
    return model


def load_4bit(setup: SftSetup, path: Path) -> Any:
    """The saved model at ``path``, loaded through ``load_model`` (the project's nf4 config)."""
    quantized = dataclasses.replace(setup.model, quantization="4bit", trust_remote_code=False)
    model = load_model(quantized, path=str(path), precision=setup.precision)
    sync()
    return model


def build_base(
    arch: Arch, dims: dict[str, Any], setup: SftSetup, quantize: bool, tmp_dir: str | None
) -> tuple[Any, dict[str, Any]]:
    """The random-init base model, on the GPU (or CPU), quantised when asked: saved to a scratch
    folder and reloaded in 4 bits, the bf16 copy freed before the reload."""
    start = time.perf_counter()
    model = random_base(arch, dims, setup.precision)
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
        model = load_4bit(setup, tmp)
        info["quantize_load_s"] = round(time.perf_counter() - start, 2)
    info["quantization"] = QUANTIZED
    info["stored_parameters"] = sum(p.numel() for p in model.parameters())
    return model, info


def lora_model(base: Any, setup: SftSetup) -> tuple[Any, dict[str, Any]]:
    """The project's own LoRA set-up (``lora.attach_lora``) on an already built base."""
    trainable = lora.attach_lora(base, setup.model, setup.sft, setup.precision)
    model = trainable.model
    return model, {
        "family": trainable.family.name,
        "lora_r": setup.sft.lora.r,
        "lora_targets": trainable.adapted,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "lora_dropout": setup.sft.lora.dropout,
    }
