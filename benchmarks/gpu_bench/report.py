"""The results as Markdown: one row per model and generation run, then the plan beside them."""

from __future__ import annotations

from typing import Any

from benchmarks.gpu_bench.measure import FLOPS_FORMULA
from rlcausality.plan.render import cell

HEADER = [
    "| model | quantisation | params | trainable | SFT step (s) | SFT tok/s | "
    "SFT peak alloc / reserved (GiB) | MFU (6N) | generation | gen tok/s | batch (s) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
]
PLAN_HEADER = [
    "| model | shape | measured peak reserved (GiB) | plan (GiB) | measured s | plan s |",
    "|---|---|---:|---:|---:|---:|",
]


def environment_line(results: dict[str, Any]) -> str:
    env = results["environment"]
    versions = env["versions"]
    return (
        f"GPU: {env['gpu'] or 'none (CPU)'}; torch {versions['torch']}, "
        f"transformers {versions['transformers']}, trl {versions['trl']}, "
        f"peft {versions['peft']}, bitsandbytes {versions['bitsandbytes']}, "
        f"CUDA {env['cuda']}; smoke: {results['smoke']}"
    )


def measured_generations(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's timed generation runs, vLLM's last; one empty run when none was timed."""
    gens = [g for g in entry.get("generation", []) if "tokens_per_s" in g]
    vllm = entry.get("vllm") or {}
    if "tokens_per_s" in vllm:
        gens.append({**vllm, "kind": "vllm"})
    return gens or [{}]


def model_cells(entry: dict[str, Any]) -> list[str]:
    """The model's own columns (its first row): quantisation, sizes and the SFT step."""
    sft = entry.get("sft") or {}
    mfu = sft.get("mfu")
    return [
        entry["model"],
        entry.get("quantization", "–").split(" ")[0],
        cell(entry.get("parameters")),
        cell(entry.get("trainable_parameters")),
        cell(sft.get("mean_step_s"), 3),
        cell(sft.get("tokens_per_s")),
        f"{cell(sft.get('peak_allocated_gib'), 2)} / {cell(sft.get('peak_reserved_gib'), 2)}",
        f"{100 * mfu:.1f} %" if mfu is not None else "–",
    ]


def model_rows(entry: dict[str, Any]) -> list[str]:
    """One row per generation run; the model's own columns only on the first."""
    first = model_cells(entry)
    rows = []
    for index, gen in enumerate(measured_generations(entry)):
        label = (
            f"{gen['kind']} {gen['sequences']}×{gen['new_tokens']}"
            if gen
            else "; ".join(f"{k}: {v}" for k, v in entry["errors"].items()) or "–"
        )
        own = first if index == 0 else [""] * len(first)
        cells = [*own, label, cell(gen.get("tokens_per_s")), cell(gen.get("batch_s"), 2)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [environment_line(results), "", *HEADER]
    for entry in results["models"]:
        lines += model_rows(entry)
    lines += ["", FLOPS_FORMULA, "", *plan_table(results)]
    return "\n".join(lines) + "\n"


def plan_table(results: dict[str, Any]) -> list[str]:
    """Measured beside rlcausality.plan's estimate, per model and shape."""
    lines = list(PLAN_HEADER)
    for entry in results["models"]:
        plan = entry.get("plan") or {}
        sft = entry.get("sft") or {}
        if "sft" in plan:
            lines.append(
                f"| {entry['model']} | SFT step ({plan['sft']['gpu']}) | "
                f"{cell(sft.get('peak_reserved_gib'), 2)} | {cell(plan['sft']['peak_gib'], 2)} | "
                f"{cell(sft.get('mean_step_s'), 3)} | {cell(plan['sft']['step_s'], 3)} |"
            )
        grpo, est = entry.get("grpo") or {}, plan.get("grpo")
        if est and "mean_step_s" in grpo:
            shape = f"GRPO step {grpo['sequences']}×{grpo['new_tokens']}"
            for part, key in (("rollout", "rollout_s"), ("update", "update_s")):
                lines.append(
                    f"| {entry['model']} | {shape}: {part} | "
                    f"{cell(grpo.get('peak_reserved_gib'), 2) if part == 'rollout' else ''} | "
                    f"{cell(est['peak_gib'], 2) if part == 'rollout' else ''} | "
                    f"{cell(grpo.get(key), 3)} | {cell(est[key], 3)} |"
                )
        measured = {(g["kind"], g.get("new_tokens")): g for g in entry.get("generation", [])}
        for est in plan.get("generation", []):
            got = measured.get((est["kind"], est["new_tokens"]), {})
            lines.append(
                f"| {entry['model']} | {est['kind']} {got.get('sequences', '?')}×"
                f"{est['new_tokens']} | {cell(got.get('peak_reserved_gib'), 2)} | "
                f"{cell(est['peak_gib'], 2)} | {cell(got.get('batch_s'), 2)} | "
                f"{cell(est['batch_s'], 2)} |"
            )
    return lines
