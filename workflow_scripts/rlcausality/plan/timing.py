"""Time of a training step and of generation, from FLOPs, memory traffic and the host's
per-kernel overhead, on a named GPU.

* Training: ``(4 + 2·checkpointing) · N · T`` FLOPs for a frozen base (forward 2NT, activation
  gradients 2NT, the checkpoint recompute 2NT; no weight gradients), N the matmul parameters
  (every Linear and the output projection), T the tokens; plus LoRA's ``6 · r(in+out)`` per token
  and causal attention's ``2 · layers · S · q`` per token (times 3, or 4 with the recompute). At
  ``TRAIN_MFU`` of the GPU's dense bf16 (fp16 before Ampere) peak; a 4-bit or 8-bit base
  dequantises every weight for every matmul, so it runs at ``QUANT_SPEED`` of that. On top, each
  micro-batch (one forward and backward) costs ``MICROBATCH_S`` of host time: the Trainer, PEFT's
  LoRA modules and the optimizer launch thousands of small kernels one by one, and at these model
  sizes that, not the matmuls, is most of a step (docs/performance.md: 2–9 % MFU measured);
  DeepSpeed adds ``DEEPSPEED_MICROBATCH_S``.
* Generation: a decode step reads every weight once (a quantised weight is read, dequantised to
  bf16 and read again when more than one sequence is decoded) and the KV cache written so far, at
  ``BANDWIDTH_EFFICIENCY`` of the GPU's memory bandwidth; transformers' ``generate`` launches its
  kernels one by one, which costs ``LAYER_LAUNCH_S`` per decoder layer and step (plus, for a
  4/8-bit layer's dequantisation, ``QUANT_LAUNCH_S`` in evaluation and ``QUANT_ROLLOUT_LAUNCH_S``
  in GRPO's rollout, measured apart) when that is longer, as it is for every model here. The
  prompt is one forward (prefill).

The host-time constants are fitted to one H200 machine (``python -m benchmarks.gpu_bench.fit``
on docs/gpu-runs/h200-2026-12-04: every benchmarked figure within 25 %); a cluster's GPUs and
host CPUs differ, so ``results/cluster/gpu_bench.json`` (``plan.calibration``) rescales them to
the user's own machine, and ``resources.<stage>.seconds_per_step`` in config.yaml, a measured
value from a job log, replaces the estimated step time of that job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlcausality.plan.memory import NF4_BYTES, Setup

# Stated (the H200 measurements are host-bound and cannot separate them from MICROBATCH_S):
TRAIN_MFU = 0.35  # of the dense peak, for the matmul FLOPs alone
QUANT_SPEED = 0.55  # bitsandbytes dequantisation before every bf16 matmul
BANDWIDTH_EFFICIENCY = 0.7  # achieved / datasheet bandwidth for weight and KV reads
# Fitted on an H200 (benchmarks/gpu_bench/fit.py; docs/performance.md, "The plan fitted"):
MICROBATCH_S = 0.375  # host time of one forward + backward (HF Trainer, PEFT LoRA, AdamW)
DEEPSPEED_MICROBATCH_S = 0.27  # DeepSpeed ZeRO-2's extra per micro-batch (one bf16 run: n = 1)
LAYER_LAUNCH_S = 2.2e-3  # generate, per decoder layer and decode step (rollout and evaluation)
QUANT_LAUNCH_S = 1.0e-3  # a 4-bit layer's extra per decode step in evaluation's generate
QUANT_ROLLOUT_LAUNCH_S = 3.1e-3  # the same in TRL's rollout (3x evaluation's; cause unmeasured)
JOB_START_S = 300  # loading the model and data, the first checkpoint, saving and merging


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float
    bf16_tflops: float | None
    fp16_tflops: float
    bandwidth_gbs: float
    capability: tuple[int, int]
    source: str

    @property
    def bf16(self) -> bool:
        return tuple(self.capability) >= (8, 0)

    def peak_flops(self, compute_bytes: int) -> float:
        peak = (self.bf16_tflops if self.bf16 else self.fp16_tflops) * 1e12
        return peak / 2 if compute_bytes == 4 else peak  # fp32 (TF32) at half the rate

    @classmethod
    def from_entry(cls, name: str, entry: dict[str, Any]) -> Gpu:
        return cls(
            name=name,
            memory_gib=float(entry["memory_gib"]),
            bf16_tflops=entry.get("bf16_tflops"),
            fp16_tflops=float(entry["fp16_tflops"]),
            bandwidth_gbs=float(entry["bandwidth_gbs"]),
            capability=tuple(entry["capability"]),
            source=entry["source"],
        )


def train_flops(
    setup: Setup, tokens: int, seq_len: int, lora_params: int, checkpointing: bool
) -> float:
    """FLOPs of forward and backward over ``tokens`` tokens of sequences of ``seq_len``."""
    arch = setup.arch
    passes = 2 + (1 if checkpointing else 0)  # forward-equivalents of the frozen base
    base = 2 * passes * arch.matmul_parameters * tokens
    attention = 2 * arch.layers * seq_len * arch.heads * arch.head_dim * tokens * (passes + 1)
    return base + attention + 6 * lora_params * tokens


def compute_seconds(setup: Setup, gpu: Gpu, flops: float) -> float:
    """The matmuls alone: ``flops`` at ``TRAIN_MFU`` (× ``QUANT_SPEED``) of the GPU's peak."""
    speed = TRAIN_MFU * (QUANT_SPEED if setup.quantized else 1.0)
    return flops / (gpu.peak_flops(setup.compute_bytes) * speed)


def microbatch_seconds(setup: Setup) -> float:
    """Host time of one micro-batch's forward and backward (and its share of the optimizer)."""
    return MICROBATCH_S + (DEEPSPEED_MICROBATCH_S if setup.deepspeed else 0.0)


def train_seconds(setup: Setup, gpu: Gpu, flops: float, micro_batches: int) -> float:
    """One optimizer step of ``micro_batches`` forward/backward passes totalling ``flops``."""
    return micro_batches * microbatch_seconds(setup) + compute_seconds(setup, gpu, flops)


def decode_step_seconds(
    setup: Setup, gpu: Gpu, sequences: int, context: int, lora: int, rollout: bool = False
) -> float:
    """One decode step of ``sequences`` sequences with ``context`` tokens cached each
    (``rollout``: in GRPO's rollout rather than evaluation's ``generate``)."""
    arch, c = setup.arch, setup.compute_bytes
    linear = arch.layer_linear_weights
    if setup.quantization == "4bit":
        per_weight = NF4_BYTES + (2 * c if sequences > 1 else 0)
    elif setup.quantization == "8bit":
        per_weight = 1 + (2 * c if sequences > 1 else 0)
    else:
        per_weight = c
    weights = linear * per_weight + arch.vocab * arch.hidden * c + 4 * lora  # + output layer
    kv = sequences * context * arch.kv_bytes_per_token(c)
    memory_s = (weights + kv) / (gpu.bandwidth_gbs * 1e9 * BANDWIDTH_EFFICIENCY)
    quant = QUANT_ROLLOUT_LAUNCH_S if rollout else QUANT_LAUNCH_S
    launch = arch.layers * (LAYER_LAUNCH_S + (quant if setup.quantized else 0.0))
    return max(memory_s, launch)


def generation_seconds(
    setup: Setup, gpu: Gpu, sequences: int, prompt: int, new_tokens: int, lora: int,
    rollout: bool = False,
) -> float:  # fmt: skip
    """Prefill of every prompt, then ``new_tokens`` decode steps (none stops early)."""
    prefill = compute_seconds(setup, gpu, 2 * setup.arch.matmul_parameters * sequences * prompt)
    mean_context = prompt + new_tokens / 2
    step = decode_step_seconds(setup, gpu, sequences, mean_context, lora, rollout)
    return prefill + new_tokens * step
