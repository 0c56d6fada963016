"""The plan's estimate for the shapes the GPU benchmark (``python -m benchmarks.gpu_bench``)
measures, so that a benchmark run puts the measured peak memory and step time beside the plan's
(docs/performance.md).

The benchmark's SFT step: batch × seq tokens, LoRA of rank r on the family's targets, gradient
checkpointing, one process, no DeepSpeed; its rollouts and evaluation: ``generate`` of a batch
of prompts to exactly ``new_tokens`` tokens.
"""

from __future__ import annotations

from typing import Any

from rlcausality.plan import memory as mem
from rlcausality.plan import stages, timing
from rlcausality.plan.arch import Arch
from rlcausality.plan.jobs import gpu, gpu_table

# torch.cuda.get_device_name() fragments -> gpus.yaml names (memory decides A100 and V100)
NAME_FRAGMENTS = (
    ("H200", "H200"),
    ("H100 PCIE", "H100-PCIe"),
    ("H100 NVL", "H100-NVL"),
    ("H100", "H100-80GB"),
    ("L40S", "L40S"),
    ("2080 TI", "RTX-2080-Ti"),
    ("3090", "RTX-3090"),
    ("4090", "RTX-4090"),
)


def match_gpu(device_name: str | None, memory_gib: float | None) -> str | None:
    """The gpus.yaml name of a CUDA device, or None when the table has no such GPU."""
    if not device_name:
        return None
    upper = device_name.upper()
    for fragment, name in NAME_FRAGMENTS:
        if fragment in upper:
            return name
    big = memory_gib is not None and memory_gib > 48
    if "A100" in upper:
        return "A100-80GB" if big else "A100-40GB"
    if "V100" in upper:
        return "V100-32GB" if memory_gib is not None and memory_gib > 20 else "V100-16GB"
    return None


def sft_step(
    arch: Arch, quantization: str, gpu_name: str, targets: Any, rank: int, dropout: float,
    batch: int, seq: int,
) -> dict[str, Any]:  # fmt: skip
    """Estimated peak GiB and seconds of one benchmark SFT step."""
    device = gpu(gpu_name)
    setup = mem.Setup(arch, quantization, compute_bytes=2, fp16=not device.bf16)
    parts, _ = stages.train_breakdown(setup, targets, rank, dropout, batch * seq, seq, True)
    parts = mem.with_allowance(parts)
    flops = timing.train_flops(setup, batch * seq, seq, arch.lora_parameters(targets, rank), True)
    return {
        "gpu": gpu_name,
        "peak_gib": round(sum(parts.values()) / mem.GIB, 2),
        "breakdown_gib": mem.gib(parts),
        "step_s": round(timing.train_seconds(setup, device, flops, 1), 4),
    }


def generation(
    arch: Arch, quantization: str, gpu_name: str, lora: int, sequences: int, prompt: int,
    new_tokens: int,
) -> dict[str, Any]:  # fmt: skip
    """Estimated seconds and peak GiB of one benchmark ``generate`` call."""
    device = gpu(gpu_name)
    setup = mem.Setup(arch, quantization, compute_bytes=2, kbit_prepared=True)
    parts = {
        "base_weights": mem.base_weight_bytes(setup),
        "lora_params": 4 * lora,
        "kv_cache": mem.kv_cache_bytes(setup, sequences, prompt + new_tokens),
        "activations": mem.prefill_bytes(setup, sequences, prompt),
    }
    seconds = timing.generation_seconds(setup, device, sequences, prompt, new_tokens, lora)
    return {
        "gpu": gpu_name,
        "peak_gib": round(sum(mem.with_allowance(parts).values()) / mem.GIB, 2),
        "batch_s": round(seconds, 2),
        "tokens_per_s": round(sequences * new_tokens / seconds, 1),
    }


def grpo_step(
    arch: Arch, quantization: str, gpu_name: str, targets: Any, rank: int, dropout: float,
    sequences: int, prompt: int, new_tokens: int,
) -> dict[str, Any]:  # fmt: skip
    """Estimated seconds (rollout and update) and peak GiB of one benchmark GRPO step:
    ``sequences`` completions of ``new_tokens`` after prompts of ``prompt`` tokens, then one
    micro-batch of one sequence per completion (as ``plan.stages.grpo`` prices a job's step)."""
    device = gpu(gpu_name)
    setup = mem.Setup(arch, quantization, compute_bytes=2, fp16=not device.bf16)
    seq = prompt + new_tokens
    parts, _ = stages.train_breakdown(setup, targets, rank, dropout, seq, seq, True)
    lora = arch.lora_parameters(targets, rank)
    rollout_parts = {
        "base_weights": mem.base_weight_bytes(setup),
        **{k: parts[k] for k in ("lora_params", "lora_grads", "optimizer")},
        "kv_cache": mem.kv_cache_bytes(setup, sequences, seq),
        "activations": mem.prefill_bytes(setup, sequences, prompt),
    }
    peak = max(sum(parts.values()), sum(rollout_parts.values()))
    flops = timing.train_flops(setup, sequences * seq, seq, lora, True)
    update = timing.train_seconds(setup, device, flops, sequences)  # one sequence a micro-batch
    rollout = timing.generation_seconds(
        setup, device, sequences, prompt, new_tokens, lora, rollout=True
    )
    return {
        "gpu": gpu_name,
        "peak_gib": round(sum(mem.with_allowance({"peak": peak}).values()) / mem.GIB, 2),
        "rollout_s": round(rollout, 3),
        "update_s": round(update, 3),
        "step_s": round(rollout + update, 3),
    }


def known_gpus() -> list[str]:
    return list(gpu_table())
