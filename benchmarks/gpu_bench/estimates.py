"""The run plan's estimate (``rlcausality.plan.bench``) of every shape the benchmark measured."""

from __future__ import annotations

from typing import Any

from benchmarks.gpu_bench.architectures import Arch
from rlcausality.plan import arch as archs
from rlcausality.plan import bench

NO_GPU_PLAN = "A100-80GB"  # the plan's GPU when the benchmark runs without one


def plan_gpu(args: Any, env: dict[str, Any]) -> str | None:
    """``--plan-gpu``, else the gpus.yaml name of this GPU (an A100-80GB without a GPU)."""
    gpu_name = args.plan_gpu or bench.match_gpu(env["gpu"], env["gpu_memory_gib"])
    if gpu_name is None and env["gpu"] is None:
        return NO_GPU_PLAN
    return gpu_name


def plan_estimates(
    arch: Arch, dims: dict[str, Any], result: dict[str, Any], args: Any, env: dict[str, Any]
) -> dict[str, Any]:
    """rlcausality.plan's estimate of every measured shape, on the benchmark's GPU (or on
    ``--plan-gpu``), for the dims built, to stand beside the measurement."""
    gpu_name = plan_gpu(args, env)
    if gpu_name is None:
        return {"skipped": f"{env['gpu']} is not in rlcausality/plan/gpus.yaml"}
    facts = archs.from_config({"model_type": arch.model_type, **dims}, arch.stands_for)
    quant = "4bit" if str(result.get("quantization", "")).startswith("4bit") else "none"
    targets = result["lora_targets"]
    # what every training-step estimate takes first: architecture, quantisation, GPU, LoRA
    trained = (facts, quant, gpu_name, targets, args.lora_r, result.get("lora_dropout", 0.0))
    sft = bench.sft_step(*trained, args.batch_size, args.seq_len)
    lora = facts.lora_parameters(targets, args.lora_r)
    generation = [
        {
            "kind": gen["kind"],
            "new_tokens": gen["new_tokens"],
            **bench.generation(
                facts, quant, gpu_name, lora, gen["sequences"], gen["prompt_len"], gen["new_tokens"]
            ),
        }
        for gen in result.get("generation", [])
        if "sequences" in gen
    ]
    estimates = {"sft": sft, "generation": generation}
    grpo = result.get("grpo") or {}
    if "sequences" in grpo:
        estimates["grpo"] = bench.grpo_step(
            *trained, grpo["sequences"], grpo["prompt_len"], grpo["new_tokens"]
        )
    return estimates
