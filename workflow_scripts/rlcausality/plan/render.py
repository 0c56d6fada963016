"""``results/plan.json`` and ``results/plan.md``: the plan of every job, as data and as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcausality.io import write_json, write_text
from rlcausality.plan import memory as mem
from rlcausality.plan import stages, timing
from rlcausality.plan.jobs import JobPlan, gpu_table

CONSTANTS = {
    "train_mfu": timing.TRAIN_MFU,
    "quantized_speed": timing.QUANT_SPEED,
    "microbatch_s": timing.MICROBATCH_S,
    "deepspeed_microbatch_s": timing.DEEPSPEED_MICROBATCH_S,
    "bandwidth_efficiency": timing.BANDWIDTH_EFFICIENCY,
    "layer_launch_s": timing.LAYER_LAUNCH_S,
    "quantized_layer_launch_s": timing.QUANT_LAUNCH_S,
    "quantized_rollout_layer_launch_s": timing.QUANT_ROLLOUT_LAUNCH_S,
    "job_start_s": timing.JOB_START_S,
    "cuda_context_gib": mem.CUDA_CONTEXT_BYTES / mem.GIB,
    "allocator_fraction": mem.ALLOCATOR_FRACTION,
    "python_host_gib": mem.PYTHON_HOST_BYTES / mem.GIB,
    "trl_vllm_fraction": stages.TRL_VLLM_FRACTION,
    "vllm_fraction": stages.VLLM_FRACTION,
}
PARTS = (
    "base_weights",
    "lora_params",
    "lora_grads",
    "optimizer",
    "activations",
    "logits",
    "kv_cache",
    "vllm",
    "allocator",
    "cuda_context",
)


def document(jobs: list[JobPlan]) -> dict[str, Any]:
    used = sorted({j.gpu for j in jobs if j.gpu != "CPU"})
    return {
        "jobs": [job.as_dict() for job in jobs],
        "gpus": {name: gpu_table()[name] for name in used},
        "constants": CONSTANTS,
        "units": "GB are GiB (2^30 bytes); hours of wall time; runtime as declared (attempt 1)",
    }


def cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def job_rows(jobs: list[JobPlan]) -> list[str]:
    lines = [
        "| job | GPUs | steps | eff. batch | tokens/step | s/step | est. h / runtime h | "
        "est. GB/GPU / GPU GB | host GB / mem_mb | fits |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for job in jobs:
        where = f"{job.gpus} × {job.gpu}" if job.gpus else "CPU"
        s_step = cell(job.seconds_per_step, 2)
        if job.seconds_per_step_source == "config (measured)":
            s_step += " (measured)"
        verdict = "yes" if job.fits else "**no**: " + "; ".join(job.reasons)
        lines.append(
            f"| {job.name} | {where} | {cell(job.steps)} | {cell(job.effective_batch)} | "
            f"{cell(job.tokens_per_step)} | {s_step} | {cell(job.est_hours, 2)} / "
            f"{job.runtime_h:g} | {cell(job.est_gpu_mem_gb)} / {cell(job.gpu_memory_gb, 0)} | "
            f"{cell(job.host_mem_gb)} / {cell(job.mem_mb)} | {verdict} |"
        )
    return lines


def breakdown_rows(jobs: list[JobPlan]) -> list[str]:
    present = [p for p in PARTS if any(p in j.mem_breakdown_gb for j in jobs)]
    lines = [
        "| job | " + " | ".join(present) + " | total | activations ckpt on / off | lengths |",
        "|---|" + "---:|" * (len(present) + 2) + "---|",
    ]
    for job in jobs:
        parts = [cell(job.mem_breakdown_gb.get(p), 2) for p in present]
        both = job.activations_gb
        act = (
            f"{cell(both.get('checkpointing on'), 2)} / {cell(both.get('checkpointing off'), 2)}"
            if both
            else "–"
        )
        lengths = ", ".join(f"{k} {v:,}" for k, v in job.lengths.items())
        lines.append(
            f"| {job.name} | " + " | ".join(parts) + f" | {cell(job.est_gpu_mem_gb)} | {act} | "
            f"{lengths} |"
        )
    return lines


def markdown(jobs: list[JobPlan]) -> str:
    doc = document(jobs)
    lines = [
        "# Run plan",
        "",
        "Estimated before any GPU hour by `rlcausality.plan` from the resolved settings and each "
        "model's architecture (README: the run plan). GB are GiB. Time: steps × s/step plus "
        f"{timing.JOB_START_S} s of start-up; s/step is the plan's estimate unless config.yaml "
        "states a measured `resources.<stage>.seconds_per_step`.",
        "",
        *job_rows(jobs),
        "",
        "## Memory per GPU (GB)",
        "",
        *breakdown_rows(jobs),
        "",
        "## Notes",
        "",
    ]
    for job in jobs:
        notes = job.notes + ([f"architecture: {job.architecture}"] if job.architecture else [])
        lines.append(f"- {job.name}: " + "; ".join(notes))
    lines += ["", "## GPUs and constants", ""]
    for name, entry in doc["gpus"].items():
        lines.append(
            f"- {name}: {entry['memory_gib']} GB, bf16 {cell(entry['bf16_tflops'])} / fp16 "
            f"{entry['fp16_tflops']} TFLOP/s, {entry['bandwidth_gbs']} GB/s; {entry['source']}"
        )
    lines.append(
        "- constants (stated, not yet fitted to a measurement): "
        + ", ".join(f"{k} {v:g}" for k, v in CONSTANTS.items())
    )
    return "\n".join(lines) + "\n"


def write(
    jobs: list[JobPlan], json_path: str | Path, md_path: str | Path, log: str | Path | None = None
) -> None:
    write_json(json_path, document(jobs))
    write_text(md_path, markdown(jobs))
    if log is not None:
        write_text(log, f"{len(jobs)} jobs planned: {json_path}, {md_path}\n")
