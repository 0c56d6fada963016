"""One model's benchmark: build it, time its SFT steps and generation, vLLM, the plan's estimate.

Each part runs on its own: an error (an OOM, a missing package) is recorded under ``errors`` and
the other parts, and the other models, still run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.gpu_bench.architectures import Arch, benchmark_arch
from benchmarks.gpu_bench.build import SftSetup, build_base, lora_model, sft_setup
from benchmarks.gpu_bench.environment import (
    Budget,
    allocated_gib,
    cuda,
    free_memory,
    memory_gib,
    peak_tflops,
)
from benchmarks.gpu_bench.estimates import plan_estimates
from benchmarks.gpu_bench.grpo_step import measure_grpo
from benchmarks.gpu_bench.measure import measure_generate, measure_sft
from benchmarks.gpu_bench.vllm_worker import measure_vllm

BUDGET_SPENT = "time budget spent"


@dataclass
class ModelRun:
    """What one model's benchmark builds, the run's options, and the result it fills in."""

    arch: Arch
    dims: dict[str, Any]
    setup: SftSetup
    quantize: bool
    args: Any
    env: dict[str, Any]
    budget: Budget
    result: dict[str, Any]
    vllm_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def vocab(self) -> int:
        return self.dims["vocab_size"]


@contextlib.contextmanager
def recorded(result: dict[str, Any], part: str) -> Iterator[None]:
    """Run a part of the benchmark; its error goes to ``result["errors"][part]`` (and stderr)."""
    try:
        yield
    except Exception as error:
        result["errors"][part] = f"{type(error).__name__}: {error}"
        traceback.print_exc()


def quantize_choice(configured: str, option: str) -> tuple[bool, str | None]:
    """Whether a model configured ``configured`` is measured in 4 bits under ``--quantize
    option``, and the note when a 4-bit model is measured unquantised."""
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    if option == "auto":
        quantize = configured == "4bit" and bnb and cuda()
    else:
        quantize = option == "4bit" and configured == "4bit"
    if configured != "4bit" or quantize:
        return quantize, None
    why = "no CUDA" if not cuda() else "bitsandbytes missing"
    why = "--quantize none" if option == "none" else why
    return False, f"configured 4bit, measured unquantised ({why})"


def start_run(name: str, args: Any, env: dict[str, Any], budget: Budget) -> ModelRun:
    """The model's architecture and settings, and the head of its result."""
    arch = benchmark_arch(name)
    dims = arch.dims(args.smoke)
    setup = sft_setup(name, args)
    configured = setup.model.quantization
    quantize, note = quantize_choice(configured, args.quantize)
    result: dict[str, Any] = {
        "model": name,
        "stands_for": arch.stands_for,
        "architecture": arch.architecture,
        "model_type": arch.model_type,
        "architecture_source": arch.facts.source,
        "dims": dims,
        "configured_quantization": configured,
        "errors": {},
    }
    if note:
        result["quantization_note"] = note
    return ModelRun(arch, dims, setup, quantize, args, env, budget, result)


def wants_vllm(run: ModelRun) -> bool:
    args = run.args
    return run.arch.model in args.vllm_models and run.env["vllm_available"] and not args.smoke


def vllm_skip_reason(run: ModelRun) -> str:
    if run.args.smoke:
        return "smoke mode"
    if not run.env["vllm_available"]:
        return "vllm not installed (or no CUDA)"
    if run.arch.model not in run.args.vllm_models:
        return "model not in --vllm-models"
    return "the model was not built"


def keep_for_vllm(base: Any, run: ModelRun) -> tempfile.TemporaryDirectory[str] | None:
    """The bf16 base model saved for vLLM; none for a quantised model."""
    if run.quantize:  # the bf16 weights are gone; saving them twice would not fit the budget
        run.result["vllm"] = {"skipped": "quantised model: vLLM is measured on bf16 only"}
        return None
    vllm_dir = tempfile.TemporaryDirectory(prefix="gpu_bench_vllm_", dir=run.args.tmp_dir)
    base.save_pretrained(Path(vllm_dir.name) / "model")
    return vllm_dir


def build_trainable(run: ModelRun) -> Any:
    """The base model with the project's LoRA on it; None when the build failed."""
    model = None
    with recorded(run.result, "build"):
        free_memory()
        base, info = build_base(run.arch, run.dims, run.setup, run.quantize, run.args.tmp_dir)
        run.result.update(info)
        run.result["precision"] = run.setup.precision.name
        run.result["build_memory"] = memory_gib()
        run.result["weights_gib"] = allocated_gib()
        if wants_vllm(run):
            run.vllm_dir = keep_for_vllm(base, run)
        model, lora = lora_model(base, run.setup)
        del base
        run.result.update(lora)
    return model


def generation_runs(args: Any) -> list[tuple[str, int, int, float, int]]:
    """(kind, prompts, completions per prompt, temperature, new tokens) of every generation."""
    runs = [
        ("rollout", args.gen_prompts, args.num_generations, args.temperature, n)
        for n in args.gen_tokens
    ]
    return runs + [("eval", args.eval_batch, 1, 0.0, n) for n in args.eval_tokens]


def measure_trainable(run: ModelRun, model: Any) -> None:
    """The SFT steps, the GRPO steps, then every generation run while the time budget lasts."""
    args, result = run.args, run.result
    peak = peak_tflops(run.env, args.peak_tflops)
    with recorded(result, "sft"):
        matmul = result["matmul_parameters"]
        result["sft"] = measure_sft(model, run.setup, run.vocab, matmul, args, peak)
    free_memory()
    if args.grpo_steps > 0:
        if run.budget.left():
            with recorded(result, "grpo"):
                result["grpo"] = measure_grpo(model, run.setup, run.vocab, matmul, args, peak)
        else:
            result["grpo"] = {"skipped": BUDGET_SPENT}
        free_memory()
    result["generation"] = []
    for kind, prompts, repeats, temperature, new_tokens in generation_runs(args):
        if not run.budget.left():
            skipped = {"kind": kind, "new_tokens": new_tokens, "skipped": BUDGET_SPENT}
            result["generation"].append(skipped)
            continue
        with recorded(result, f"{kind}@{new_tokens}"):
            figures = measure_generate(
                model, run.vocab, prompts, repeats, args.prompt_len, new_tokens, temperature
            )
            result["generation"].append({"kind": kind, **figures})
        free_memory()


def finish_vllm(run: ModelRun) -> None:
    """vLLM on the saved base model (then the copy is removed), or why it was skipped."""
    if run.vllm_dir is None:
        run.result.setdefault("vllm", {"skipped": vllm_skip_reason(run)})
        return
    try:
        with recorded(run.result, "vllm"):
            if not run.budget.left():
                run.result["vllm"] = {"skipped": BUDGET_SPENT}
                return
            model_dir = Path(run.vllm_dir.name) / "model"
            new_tokens = max(run.args.gen_tokens)
            run.result["vllm"] = measure_vllm(model_dir, run.args, new_tokens, run.vocab)
    finally:
        run.vllm_dir.cleanup()


def run_model(name: str, args: Any, env: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """The benchmark of config.yaml's model ``name``: every figure, or why it is missing."""
    run = start_run(name, args, env, budget)
    model = build_trainable(run)
    if model is not None:
        measure_trainable(run, model)
    del model
    free_memory()
    finish_vllm(run)
    if "lora_targets" in run.result:
        with recorded(run.result, "plan"):
            run.result["plan"] = plan_estimates(run.arch, run.dims, run.result, args, env)
    run.result["wall_s"] = round(budget.elapsed(), 1)
    return run.result
