"""Memory and time of one SFT, GRPO or evaluation process, from its resolved settings.

Sequence lengths: the formatted file's token-length stats (``results/data/{model}/{fmt}/
{split}.stats.json``) once the format job has run, else the caps (``format.max_length``,
``sft.max_length``): memory at the longest row, time at the median (p90 with padded batches).
Completions are planned at their full length (``max_completion_length``, ``max_new_tokens``):
a rollout or an evaluation batch ends when its last sequence does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rlcausality import launch
from rlcausality.models.families import get_family, lora_targets
from rlcausality.plan import memory as mem
from rlcausality.plan import timing
from rlcausality.plan.arch import Arch
from rlcausality.plan.timing import Gpu
from rlcausality.settings.blocks import Settings
from rlcausality.stages import train_format
from rlcausality.training import budget

TRL_VLLM_FRACTION = 0.3  # GRPOConfig.vllm_gpu_memory_utilization's default (colocate)
VLLM_FRACTION = 0.9  # vLLM's own gpu_memory_utilization default (evaluation)
# The share of prompts a pre-pass keeps, as planned: the demo's SFT model disagreed with itself
# on 49-63% of its GRPO groups of 4 (docs/demo.md, "50 GRPO steps at three seeds").
PREPASS_DISAGREEING = 0.5


@dataclass
class Estimate:
    parts: dict[str, int]  # bytes per GPU, allowance included
    seconds_per_step: float | None  # training: one optimizer step; evaluation: the whole job
    lengths: dict[str, int]
    notes: list[str] = field(default_factory=list)
    activations: dict[str, int] = field(default_factory=dict)  # with / without checkpointing
    # seconds_per_step by kind (sft | rollout | update | eval): what a calibration scales
    seconds_by_kind: dict[str, float] = field(default_factory=dict)
    # GRPO with a pre-pass: one batch of its completions (lengths["prepass_batch"] of them)
    prepass_batch_s: float | None = None

    def calibrated(self, factors: Any) -> float | None:
        """``seconds_per_step`` with each kind scaled by ``factors.of(kind)`` (plan.calibration)."""
        if self.seconds_per_step is None or factors is None or not self.seconds_by_kind:
            return self.seconds_per_step
        return sum(s * factors.of(kind) for kind, s in self.seconds_by_kind.items())


def setup_for(settings: Settings, arch: Arch, rule: str, gpu: Gpu | None) -> mem.Setup:
    model = settings.model
    quantization = model.quantization
    gpus = settings.resources.of(rule).gpus if gpu else 0
    compute_bytes = 4 if gpu is None or model.dtype == "float32" else 2
    if rule == "evaluate" and settings.evaluate.dtype != "auto":  # loading.inference_precision
        compute_bytes = 4 if settings.evaluate.dtype == "float32" else 2
    deepspeed = None
    if rule != "evaluate" and gpus:
        deepspeed = launch.deepspeed_stage(settings.of(rule).deepspeed, model.quantized)
    return mem.Setup(
        arch=arch,
        quantization=quantization,
        compute_bytes=compute_bytes,
        processes=max(1, gpus),
        deepspeed=deepspeed,
        kbit_prepared=rule != "evaluate",
        fp16=gpu is not None and compute_bytes == 2 and not gpu.bf16,
    )


def lengths(model: str, fmt: str, split: str, cap: int) -> tuple[int, int, int]:
    """(longest, median, p90) token lengths of a formatted split, capped; the cap without stats."""
    stats = budget.format_stats(model, fmt, split)
    out = (stats or {}).get("length_out") or {}
    if not all(isinstance(out.get(k), int) for k in ("max", "p50", "p90")):
        return cap, cap, cap
    return min(cap, out["max"]), min(cap, out["p50"]), min(cap, out["p90"])


def lora_of(settings: Settings, rule: str, arch: Arch) -> tuple[Any, int, float, int]:
    """Targets, rank, dropout and parameter count of the adapter a job of ``rule`` trains: GRPO
    from SFT continues the SFT adapter (``lora.continued_lora_model``), SFT's LoRA."""
    if rule == "grpo" and settings.grpo.init == "sft":
        rule = "sft"
    lora = settings.of(rule).lora
    targets = lora_targets(lora, get_family(settings.model.family))
    rank = int(lora.r)
    dropout = float(lora.dropout)
    return targets, rank, dropout, arch.lora_parameters(targets, rank)


def train_breakdown(
    setup: mem.Setup,
    targets: list[str] | str,
    rank: int,
    dropout: float,
    tokens: int,
    seq: int,
    checkpointing: bool,
    fused: bool = True,
    eager: bool = False,
) -> tuple[dict[str, int], dict[str, int]]:
    """Weights, LoRA state, activations and the LM head's buffers of one micro-batch of
    ``tokens`` tokens in sequences of ``seq``; and the activations with and without
    checkpointing. ``fused``: TRL's tiled LM head (else full logits); ``eager``: attention
    that saves its softmax (else SDPA)."""
    lora = setup.arch.lora_parameters(targets, rank)
    lora_act = mem.lora_activation_bytes(setup, targets, rank, dropout)
    both = {
        f"checkpointing {'on' if ck else 'off'}": mem.activation_bytes(
            setup, tokens, seq, ck, lora_act, eager
        )
        for ck in (True, False)
    }
    parts = {
        "base_weights": mem.base_weight_bytes(setup),
        **mem.lora_state_bytes(setup, lora),
        "activations": both[f"checkpointing {'on' if checkpointing else 'off'}"],
        "logits": mem.logits_bytes(setup, tokens, fused=fused),
    }
    return parts, both


def train_parts(
    setup: mem.Setup, settings: Settings, rule: str, tokens: int, seq: int
) -> tuple[dict[str, int], dict[str, int]]:
    targets, rank, dropout, _ = lora_of(settings, rule, setup.arch)
    checkpointing = bool(settings.of(rule).gradient_checkpointing)
    return train_breakdown(setup, targets, rank, dropout, tokens, seq, checkpointing)


def sft(settings: Settings, arch: Arch, gpu: Gpu | None) -> Estimate:
    setup = setup_for(settings, arch, "sft", gpu)
    stage = settings.sft
    cap = min(stage.max_length, settings.format.max_length)
    fmt = train_format("sft", settings.format.sft_target)
    longest, median, p90 = lengths(settings.model.name, fmt, "train", cap)
    batch = stage.per_device_train_batch_size
    parts, both = train_parts(setup, settings, "sft", batch * longest, longest)
    seq = median if batch == 1 else p90
    _, _, _, lora = lora_of(settings, "sft", arch)
    tokens = batch * stage.gradient_accumulation_steps * seq
    flops = timing.train_flops(setup, tokens, seq, lora, bool(stage.gradient_checkpointing))
    micro_batches = stage.gradient_accumulation_steps
    seconds = timing.train_seconds(setup, gpu, flops, micro_batches) if gpu else None
    context = gpu is not None
    return Estimate(
        mem.with_allowance(parts, context),
        seconds,
        {"sequence": longest, "timed_sequence": seq, "tokens_per_step": tokens * setup.processes},
        activations=both,
        seconds_by_kind={"sft": seconds} if seconds is not None else {},
    )


def grpo(settings: Settings, arch: Arch, gpu: Gpu | None) -> Estimate:
    setup = setup_for(settings, arch, "grpo", gpu)
    stage = settings.grpo
    prompt, median, _ = lengths(settings.model.name, "grpo", "train", stage_cap(settings))
    completion = stage.max_completion_length
    batch = stage.per_device_train_batch_size
    rollouts = batch * stage.gradient_accumulation_steps  # one generation batch per process
    seq = prompt + completion
    parts, both = train_parts(setup, settings, "grpo", batch * seq, seq)
    _, _, _, lora = lora_of(settings, "grpo", arch)
    notes = []
    if stage.use_vllm and gpu:
        # grpo.vllm_gpu_memory_utilization when set (the job passes it to GRPOConfig), and the
        # job's vllm_max_model_length: the longest prompt + the completion (grpo.vllm_options)
        fraction = stage.vllm_gpu_memory_utilization or TRL_VLLM_FRACTION
        parts["vllm"] = round(fraction * gpu.memory_gib * mem.GIB)
        notes.append(
            f"vLLM colocated: {fraction:.0%} of the GPU reserved, "
            f"max_model_len {prompt + completion}"
        )
    else:
        rollout = {
            "base_weights": mem.base_weight_bytes(setup, gathered=True),
            **{k: parts[k] for k in ("lora_params", "lora_grads", "optimizer")},
            "kv_cache": mem.kv_cache_bytes(setup, rollouts, prompt + completion),
            "activations": mem.prefill_bytes(setup, rollouts, prompt),
        }
        if sum(rollout.values()) > sum(parts.values()):
            parts = rollout
            notes.append(f"peak in the rollout: {rollouts} sequences of {prompt + completion}")
    seconds = None
    by_kind: dict[str, float] = {}
    if gpu:
        tokens = rollouts * (median + completion)
        ck = bool(stage.gradient_checkpointing)
        flops = timing.train_flops(setup, tokens, median, lora, ck)
        update = timing.train_seconds(setup, gpu, flops, stage.gradient_accumulation_steps)
        gen = timing.generation_seconds(
            setup, gpu, rollouts, median, completion, lora, rollout=True
        )
        seconds = gen + update
        by_kind = {"rollout": gen, "update": update}
        notes.append(f"rollout {gen:.0f} s + update {update:.0f} s per step")
    sizes = {"prompt": prompt, "completion": completion, "rollouts_per_gpu": rollouts}
    sizes["tokens_per_step"] = rollouts * (median + completion) * setup.processes
    estimate = Estimate(
        mem.with_allowance(parts, gpu is not None), seconds, sizes, notes, both, by_kind
    )
    if stage.prepass_samples:
        batch = sizes["prepass_batch"] = max(budget.PREPASS_MIN_BATCH, rollouts)
        if gpu:
            estimate.prepass_batch_s = timing.generation_seconds(
                setup, gpu, batch, median, completion, lora, rollout=True
            )
    return estimate


def prepass_completions(
    settings: Settings, steps: int | None, rows: int | None, processes: int
) -> int | None:
    """Completions GRPO's pre-pass samples (``grpo.prepass_samples`` per prompt visited,
    ``rlcausality.training.prepass``): it visits prompts until the steps' prompts are kept,
    planned at ``PREPASS_DISAGREEING`` of them kept; None without a pre-pass or rows."""
    stage = settings.grpo
    if not stage.prepass_samples or rows is None:
        return None
    per_step = max(1, budget.grpo_prompts_per_step(stage, processes))
    needed = min(rows, steps * per_step) if steps and stage.max_steps > 0 else rows
    visited = min(rows, math.ceil(needed / PREPASS_DISAGREEING))
    return visited * int(stage.prepass_samples)


def prepass_seconds(estimate: Estimate, factors: Any, completions: int) -> float | None:
    """The pre-pass's time: its completions in batches of ``budget.PREPASS_MIN_BATCH`` or the
    rollouts' size, whichever is larger, each timed as a rollout of that many sequences
    (calibrated as rollouts are); None when generation is not timed (no GPU)."""
    batch_s = estimate.prepass_batch_s
    if batch_s is None:
        return None
    if factors is not None:
        batch_s *= factors.of("rollout")
    return math.ceil(completions / estimate.lengths["prepass_batch"]) * batch_s


def stage_cap(settings: Settings) -> int:
    return int(settings.format.max_length)


def evaluation(
    settings: Settings, arch: Arch, gpu: Gpu | None, stage: str, test_set: str, items: int
) -> Estimate:
    """One evaluation job: the stage's model on ``items`` items of ``test_set``."""
    setup = setup_for(settings, arch, "evaluate", gpu)
    ev = settings.evaluate
    fmt = ev.prompt.of(stage)
    prompt, median, p90 = lengths(settings.model.name, fmt, test_set, stage_cap(settings))
    new, batch = int(ev.max_new_tokens.of(fmt)), int(ev.batch_size)
    merged = stage == "sft" and settings.sft.merge and not setup.quantized
    lora = 0 if stage == "base" or merged else lora_of(settings, stage, arch)[3]
    parts = {"base_weights": mem.base_weight_bytes(setup), "lora_params": 4 * lora}
    if ev.use_vllm and gpu:
        parts = {"vllm": round(VLLM_FRACTION * gpu.memory_gib * mem.GIB)}
    else:
        parts["kv_cache"] = mem.kv_cache_bytes(setup, batch, prompt + new)
        parts["activations"] = mem.prefill_bytes(setup, batch, prompt)
    seconds = None
    if gpu:
        seq = median if batch == 1 else p90
        batches = math.ceil(items / batch)
        seconds = batches * timing.generation_seconds(setup, gpu, batch, seq, new, lora)
    sizes = {"prompt": prompt, "new_tokens": new, "items": items, "batch": batch}
    by_kind = {"eval": seconds} if seconds is not None else {}
    return Estimate(
        mem.with_allowance(parts, gpu is not None), seconds, sizes, seconds_by_kind=by_kind
    )
