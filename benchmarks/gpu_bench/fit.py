"""Fit the run plan's host-time constants to GPU benchmark results, and compare the plan with
every measured figure.

    python -m benchmarks.gpu_bench.fit docs/gpu-runs/h200-2026-12-04/gpu_bench-*.json

The fit (``rlcausality.plan.timing``), each from the benchmark's own shapes:

* ``LAYER_LAUNCH_S``: per decoder layer and decode step, the mean over the unquantised models'
  generation runs (the GRPO rollout and evaluation) of (batch seconds − the plan's prefill) /
  new tokens / layers: at these sizes a decode step is bound by kernel launches, not bandwidth;
* ``QUANT_LAUNCH_S`` / ``QUANT_ROLLOUT_LAUNCH_S``: the same for the 4-bit models' evaluation
  and rollout runs apart (they differ 1.6x on the H200), less ``LAYER_LAUNCH_S``;
* ``MICROBATCH_S``: the mean, over every SFT step (one micro-batch) and GRPO update (one
  micro-batch per completion), of (seconds − the plan's matmul time) per micro-batch.

``TRAIN_MFU`` and ``QUANT_SPEED`` stay stated: the matmuls are 2–9 % of these steps, too little
to fit them. The second table is measured / planned with the constants now in
``rlcausality.plan.timing`` (``plan.calibration.model_ratios``, what a calibration file applies).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from rlcausality.plan import arch as archs
from rlcausality.plan import bench, calibration, timing
from rlcausality.plan import jobs as rlplan
from rlcausality.plan import memory as mem


def setup_of(entry: dict[str, Any]) -> mem.Setup:
    facts = archs.from_config({"model_type": entry["model_type"], **entry["dims"]}, "bench")
    quant = "4bit" if str(entry.get("quantization", "")).startswith("4bit") else "none"
    return mem.Setup(facts, quant, compute_bytes=2)


def generations(entry: dict[str, Any]) -> list[tuple[str, int, int, int, float]]:
    """(kind, sequences, prompt, new tokens, seconds) of every timed generation of the entry."""
    runs = []
    grpo = entry.get("grpo") or {}
    if "rollout_s" in grpo:
        runs.append(("rollout", grpo["sequences"], grpo["prompt_len"], grpo["new_tokens"],
                     grpo["rollout_s"]))  # fmt: skip
    for gen in entry.get("generation") or []:
        if "batch_s" in gen:
            runs.append((gen["kind"], gen["sequences"], gen["prompt_len"], gen["new_tokens"],
                         gen["batch_s"]))  # fmt: skip
    return runs


def per_layer_decode(entry: dict[str, Any], gpu: timing.Gpu) -> list[tuple[str, float]]:
    """(kind, seconds per decoder layer and decode step) of each generation run, prefill
    removed."""
    setup = setup_of(entry)
    out = []
    for kind, sequences, prompt, new_tokens, seconds in generations(entry):
        flops = 2 * setup.arch.matmul_parameters * sequences * prompt
        prefill = timing.compute_seconds(setup, gpu, flops)
        out.append((kind, (seconds - prefill) / new_tokens / setup.arch.layers))
    return out


def microbatch_residuals(entry: dict[str, Any], gpu: timing.Gpu) -> list[float]:
    """Per micro-batch, the measured seconds less the plan's matmul time (SFT step, update)."""
    setup = setup_of(entry)
    targets, rank = entry["lora_targets"], int(entry["lora_r"])
    lora = setup.arch.lora_parameters(targets, rank)
    out = []
    sft = entry.get("sft") or {}
    if "mean_step_s" in sft:
        tokens = sft["batch_size"] * sft["seq_len"]
        flops = timing.train_flops(setup, tokens, sft["seq_len"], lora, True)
        out.append(sft["mean_step_s"] - timing.compute_seconds(setup, gpu, flops))
    grpo = entry.get("grpo") or {}
    if "update_s" in grpo:
        seq = grpo["prompt_len"] + grpo["new_tokens"]
        flops = timing.train_flops(setup, grpo["sequences"] * seq, seq, lora, True)
        residual = grpo["update_s"] - timing.compute_seconds(setup, gpu, flops)
        out.append(residual / grpo["sequences"])
    return out


def fit(results: list[dict[str, Any]]) -> dict[str, float]:
    """The host-time constants that fit ``results`` (gpu_bench JSONs of one GPU)."""
    plain: list[float] = []
    quantized: dict[str, list[float]] = {"rollout": [], "eval": []}
    micro: list[float] = []
    for result in results:
        env = result["environment"]
        gpu = timing_gpu(env)
        for entry in result["models"]:
            for kind, seconds in per_layer_decode(entry, gpu):
                if setup_of(entry).quantized:
                    quantized[kind].append(seconds)
                else:
                    plain.append(seconds)
            micro.extend(microbatch_residuals(entry, gpu))
    layer = statistics.fmean(plain)

    def extra(values: list[float]) -> float:
        return statistics.fmean(values) - layer if values else float("nan")

    return {
        "LAYER_LAUNCH_S": layer,
        "QUANT_LAUNCH_S": extra(quantized["eval"]),
        "QUANT_ROLLOUT_LAUNCH_S": extra(quantized["rollout"]),
        "MICROBATCH_S": statistics.fmean(micro),
        "decode_points": len(plain) + sum(map(len, quantized.values())),
        "microbatch_points": len(micro),
    }


def timing_gpu(env: dict[str, Any]) -> timing.Gpu:
    name = bench.match_gpu(env.get("gpu"), env.get("gpu_memory_gib"))
    if name is None:
        raise SystemExit(f"{env.get('gpu')} is not in rlcausality/plan/gpus.yaml")
    return rlplan.gpu(name)


def measured(entry: dict[str, Any]) -> dict[str, float]:
    """The measured seconds that ``plan.calibration.model_ratios`` compares, by kind."""
    out = {}
    if "mean_step_s" in (entry.get("sft") or {}):
        out["sft"] = entry["sft"]["mean_step_s"]
    grpo = entry.get("grpo") or {}
    if "rollout_s" in grpo:
        out["rollout"], out["update"] = grpo["rollout_s"], grpo["update_s"]
    for gen in entry.get("generation") or []:
        if gen.get("kind") == "eval" and "batch_s" in gen:
            out["eval"] = gen["batch_s"]
    return out


def comparison(results: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: each measured figure, the plan's, and measured / plan."""
    lines = [
        "| model | figure | measured s | plan s | measured / plan |",
        "|---|---|---:|---:|---:|",
    ]
    for result in results:
        env = result["environment"]
        gpu = timing_gpu(env).name
        for entry in result["models"]:
            ratios = calibration.model_ratios(entry, result.get("options") or {}, gpu)
            for kind, seconds in measured(entry).items():
                r = ratios.get(kind)
                plan_s = seconds / r if r else float("nan")
                lines.append(
                    f"| {entry['model']} | {kind} | {seconds:.3f} | {plan_s:.3f} | {r:.2f} |"
                )
    return lines


def peaks(results: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: each measured peak (torch's reserved memory, which leaves out the CUDA
    context) beside the plan's peak less its CUDA context allowance."""
    lines = [
        "| model | shape | measured reserved GiB | plan GiB (no context) | measured / plan |",
        "|---|---|---:|---:|---:|",
    ]
    context = mem.CUDA_CONTEXT_BYTES / mem.GIB
    for result in results:
        gpu = timing_gpu(result["environment"]).name
        for entry in result["models"]:
            setup = setup_of(entry)
            quant = setup.quantization
            targets, rank = entry["lora_targets"], int(entry["lora_r"])
            dropout = float(entry.get("lora_dropout", 0.0))
            lora = setup.arch.lora_parameters(targets, rank)
            rows = []
            sft = entry.get("sft") or {}
            if sft.get("peak_reserved_gib"):
                shape = (sft["batch_size"], sft["seq_len"])
                est = bench.sft_step(setup.arch, quant, gpu, targets, rank, dropout, *shape)
                rows.append(("SFT step", sft["peak_reserved_gib"], est["peak_gib"]))
            grpo = entry.get("grpo") or {}
            if grpo.get("peak_reserved_gib"):
                shape = (grpo["sequences"], grpo["prompt_len"], grpo["new_tokens"])
                est = bench.grpo_step(setup.arch, quant, gpu, targets, rank, dropout, *shape)
                rows.append(("GRPO step", grpo["peak_reserved_gib"], est["peak_gib"]))
            for gen in entry.get("generation") or []:
                if gen.get("peak_reserved_gib"):
                    shape = (gen["sequences"], gen["prompt_len"], gen["new_tokens"])
                    est = bench.generation(setup.arch, quant, gpu, lora, *shape)
                    name = f"{gen['kind']} {gen['sequences']}×{gen['new_tokens']}"
                    rows.append((name, gen["peak_reserved_gib"], est["peak_gib"]))
            for shape, got, planned in rows:
                net = planned - context
                lines.append(
                    f"| {entry['model']} | {shape} | {got:.2f} | {net:.2f} | {got / net:.2f} |"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        raise SystemExit(__doc__)
    results = [json.loads(Path(p).read_text("utf-8")) for p in paths]
    fitted = fit(results)
    print("fitted (constants now in rlcausality.plan.timing in brackets):")
    for key, value in fitted.items():
        now = getattr(timing, key, None)
        print(f"  {key} = {value:.4g}" + (f"  [{now}]" if now is not None else ""))
    print()
    print("\n".join(comparison(results)))
    print()
    print("\n".join(peaks(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
