"""The plan calibrated on the user's own GPU: ``results/cluster/gpu_bench.json``.

``snakemake --profile slurm results/cluster/gpu_bench.json`` runs the GPU benchmark
(``python -m benchmarks.gpu_bench``) for the configured models on the partition's GPU. When that
file exists, the plan reads it at parse time: for each benchmarked model it prices the very
shapes the benchmark measured (``plan.bench``: the SFT step, the GRPO step's rollout and update,
evaluation generation) and keeps the ratio measured / planned of each. A job's estimate of that
model, on that GPU, is then multiplied by its ratio: SFT steps by the SFT ratio, a GRPO step's
rollout and update by theirs, evaluation by the evaluation ratio. Without the file, or for a
model it lacks, or when the plan prices a job on another GPU than the one measured, the plan's
own constants stand (``plan.timing``), and the dry-run says which it used.

Memory is not scaled: the plan's breakdown is exact in bytes (tests/models/test_plan_bytes.py)
and its allowances are fitted (docs/performance.md); the file's peaks are reported beside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcausality.plan import arch as archs
from rlcausality.plan import bench

DEFAULT_PATH = "results/cluster/gpu_bench.json"
KINDS = ("sft", "rollout", "update", "eval")


@dataclass(frozen=True)
class ModelFactors:
    """measured / planned seconds of each benchmarked shape of one model (None: not measured)."""

    model: str
    ratios: dict[str, float]
    dims: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> float:
        return self.ratios.get(kind, 1.0)


@dataclass(frozen=True)
class Calibration:
    path: str
    gpu: str | None  # the gpus.yaml name of the GPU measured (None: not in the table)
    device: str | None  # its name as torch reports it
    created: str | None
    models: dict[str, ModelFactors]
    problems: list[str] = field(default_factory=list)

    def factors(self, model: str, gpu: str) -> ModelFactors | None:
        """The model's ratios when the plan prices it on the GPU that was measured."""
        if self.gpu != gpu:
            return None
        return self.models.get(model)


def ratio(measured: Any, planned: Any) -> float | None:
    try:
        value = float(measured) / float(planned)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def model_ratios(entry: dict[str, Any], options: dict[str, Any], gpu: str) -> dict[str, float]:
    """The ratios measured / planned of one model's benchmark entry, priced now (so a change of
    the plan's constants is accounted for) on ``gpu``."""
    dims = entry["dims"]
    facts = archs.from_config({"model_type": entry["model_type"], **dims}, entry["model"])
    if facts is None:
        return {}
    quant = "4bit" if str(entry.get("quantization", "")).startswith("4bit") else "none"
    targets, rank = entry["lora_targets"], int(entry.get("lora_r") or options["lora_r"])
    dropout = float(entry.get("lora_dropout", 0.0))
    out: dict[str, float | None] = {}
    sft = entry.get("sft") or {}
    if "mean_step_s" in sft:
        est = bench.sft_step(
            facts, quant, gpu, targets, rank, dropout, sft["batch_size"], sft["seq_len"]
        )
        out["sft"] = ratio(sft["mean_step_s"], est["step_s"])
    grpo = entry.get("grpo") or {}
    if "rollout_s" in grpo:
        est = bench.grpo_step(
            facts, quant, gpu, targets, rank, dropout,
            grpo["sequences"], grpo["prompt_len"], grpo["new_tokens"],
        )  # fmt: skip
        out["rollout"] = ratio(grpo["rollout_s"], est["rollout_s"])
        out["update"] = ratio(grpo["update_s"], est["update_s"])
    lora = facts.lora_parameters(targets, rank)
    for gen in entry.get("generation") or []:
        if gen.get("kind") == "eval" and "batch_s" in gen:
            est = bench.generation(
                facts, quant, gpu, lora, gen["sequences"], gen["prompt_len"], gen["new_tokens"]
            )
            out["eval"] = ratio(gen["batch_s"], est["batch_s"])
    return {kind: value for kind, value in out.items() if value is not None}


def load(path: str | Path = DEFAULT_PATH) -> Calibration | None:
    """The calibration in ``path``; None when the file does not exist. A file that cannot be
    used (not the benchmark's, cut short, a smoke run, no GPU) gives a Calibration with no
    models and the reason in ``problems``, so the dry-run says why it was not used."""
    path = Path(path)
    if not path.is_file():
        return None
    empty = Calibration(str(path), None, None, None, {})
    try:
        results = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        return Calibration(**{**empty.__dict__, "problems": [f"{path}: unreadable ({error})"]})
    env = results.get("environment") or {}
    problems = []
    if results.get("benchmark") != "rlcausality gpu_bench":
        problems.append(f"{path}: not a gpu_bench result")
    elif results.get("smoke") or not env.get("gpu"):
        problems.append(f"{path}: measured without a GPU: not used")
    elif not results.get("complete"):
        problems.append(f"{path}: the benchmark did not finish: not used")
    gpu = bench.match_gpu(env.get("gpu"), env.get("gpu_memory_gib"))
    if not problems and gpu is None:
        problems.append(f"{path}: {env.get('gpu')} is not in plan/gpus.yaml: not used")
    models: dict[str, ModelFactors] = {}
    if not problems:
        for entry in results.get("models", []):
            ratios = model_ratios(entry, results.get("options") or {}, gpu)
            if ratios:
                models[entry["model"]] = ModelFactors(entry["model"], ratios, entry["dims"])
    return Calibration(str(path), gpu, env.get("gpu"), env.get("created"), models, problems)


def describe(calibration: Calibration | None, gpus: list[str]) -> str:
    """The dry-run's line: which times the plan used, and how to calibrate it."""
    how = f"`snakemake --profile slurm {DEFAULT_PATH}` measures them on your GPU"
    if calibration is None:
        return f"PLAN: times from the plan's constants (fitted on an H200; {how})"
    if calibration.problems:
        return "PLAN: times from the plan's constants; " + "; ".join(calibration.problems)
    if calibration.gpu not in gpus:
        return (
            f"PLAN: times from the plan's constants: {calibration.path} measured "
            f"{calibration.gpu}, the plan prices jobs on {', '.join(gpus)}"
        )
    names = ", ".join(
        f"{name} (×{m.of('sft'):.2g} SFT, ×{m.of('rollout'):.2g} rollout, "
        f"×{m.of('update'):.2g} update, ×{m.of('eval'):.2g} eval)"
        for name, m in calibration.models.items()
    )
    return (
        f"PLAN: times calibrated by {calibration.path} ({calibration.gpu}, "
        f"{(calibration.created or '')[:10]}): {names or 'no model measured'}"
    )
