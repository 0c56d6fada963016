"""The command line: options, the per-model loop, and the JSON and Markdown it writes."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks import gpu_bench
from benchmarks.gpu_bench.architectures import default_models, unknown_models
from benchmarks.gpu_bench.environment import Budget, cuda, environment, peak_tflops
from benchmarks.gpu_bench.measure import FLOPS_FORMULA
from benchmarks.gpu_bench.report import markdown
from benchmarks.gpu_bench.run import run_model
from rlcausality.launch import configure_threads

MODULE = "benchmarks.gpu_bench"
# Options whose default depends on --smoke: the full run's, and the CPU smoke run's.
FULL = {
    "seq_len": 1024,
    "warmup_steps": 3,
    "steps": 5,
    "gen_prompts": 8,
    "prompt_len": 256,
    "gen_tokens": "2048",
    "eval_tokens": "256",
    "grpo_tokens": 512,
    "grpo_steps": 2,
    "budget_s": 540.0,
}
SMOKE = {
    "seq_len": 64,
    "warmup_steps": 1,
    "steps": 1,
    "gen_prompts": 2,
    "prompt_len": 16,
    "gen_tokens": "16",
    "eval_tokens": "16",
    "grpo_tokens": 16,
    "grpo_steps": 2,
    "budget_s": 300.0,
}
SMOKE_EVAL_BATCH = 4


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()] if text else []


def name_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        default=",".join(default_models()),
        help="comma list of config.yaml model names (default: its run list, %(default)s)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny dims on the CPU (< 60 s)")
    parser.add_argument(
        "--quantize",
        choices=("auto", "4bit", "none"),
        default="auto",
        help="for models configured 4bit: auto = 4bit when CUDA and bitsandbytes are present",
    )
    parser.add_argument("--dtype", default=None, help="model.dtype override (auto/bfloat16/...)")
    parser.add_argument("--tmp-dir", default=None, help="scratch for the 4-bit reload")


def add_sft_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seq-len", type=int, default=None, help="SFT tokens per sequence (1024)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed SFT steps (3)")
    parser.add_argument("--steps", type=int, default=None, help="timed SFT steps (5)")
    parser.add_argument("--lora-r", type=int, default=64)
    parser.add_argument("--completion-fraction", type=float, default=0.25)
    parser.add_argument(
        "--deepspeed",
        choices=("zero2",),
        default=None,
        help="train the SFT and GRPO steps under the project's DeepSpeed config (start the "
        "benchmark with torchrun, as the workflow starts a DeepSpeed job)",
    )


def add_grpo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grpo-steps", type=int, default=None, help="GRPO steps, the first a warm-up (2; 0: none)"
    )
    parser.add_argument(
        "--grpo-tokens", type=int, default=None, help="new tokens per GRPO completion (512)"
    )


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gen-prompts", type=int, default=None, help="rollout prompts (8)")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--prompt-len", type=int, default=None, help="prompt tokens (256)")
    parser.add_argument("--gen-tokens", default=None, help="rollout new tokens, list (2048)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--eval-batch", type=int, default=16)
    parser.add_argument("--eval-tokens", default=None, help="greedy eval new tokens, list (256)")
    parser.add_argument("--vllm-models", default="qwen2.5-1.5b", help="'' for none")
    parser.add_argument("--vllm-memory", type=float, default=0.6)
    parser.add_argument("--vllm-timeout", type=int, default=300)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="gpu_bench.json", help="results JSON")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the bf16 peak")
    parser.add_argument(
        "--plan-gpu", default=None, help="the plan's GPU for its estimates (default: this one)"
    )
    parser.add_argument(
        "--budget-s", type=float, default=None, help="skip later generation after this (540)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description=gpu_bench.__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for add in (
        add_model_options,
        add_sft_options,
        add_grpo_options,
        add_generation_options,
        add_run_options,
    ):
        add(parser)
    return parser


def complete(args: argparse.Namespace) -> argparse.Namespace:
    """The smoke or full defaults where an option was not given; lists split."""
    for key, value in (SMOKE if args.smoke else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.smoke:
        args.eval_batch = min(args.eval_batch, SMOKE_EVAL_BATCH)
    args.gen_tokens = int_list(args.gen_tokens)
    args.eval_tokens = int_list(args.eval_tokens)
    args.models = name_list(args.models)
    args.vllm_models = name_list(args.vllm_models)
    return args


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = complete(parser.parse_args(argv))
    problems = unknown_models(args.models)
    if problems:
        parser.error("--models: " + "; ".join(problems))
    return args


def prepare_process(smoke: bool) -> None:
    """Environment and threads, before anything initialises CUDA or the hub client."""
    if smoke:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    configure_threads(None)


def is_main_process() -> bool:
    """Rank 0 of a torchrun group (or a plain process): the one that writes the results."""
    return os.environ.get("RANK", "0") == "0"


def write_results(results: dict[str, Any], args: argparse.Namespace, final: bool = True) -> None:
    """The JSON (and Markdown) as they stand: after every model, so a run cut short keeps what
    it measured (``complete`` says whether every model has run)."""
    if not is_main_process():
        return
    results["complete"] = final
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    partial.replace(out)
    table = markdown(results)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table, "utf-8")
    if final:
        print(table)
        print(f"results: {out} ({results['wall_s']} s)")


def main(argv: list[str] | None = None) -> int:
    """Benchmark every model of ``--models``; exit code 1 when any recorded an error."""
    args = parse_args(argv)
    prepare_process(args.smoke)
    budget = Budget(args.budget_s)
    env = environment(["-m", MODULE, *(sys.argv[1:] if argv is None else argv)])
    env["vllm_available"] = importlib.util.find_spec("vllm") is not None and cuda()
    results: dict[str, Any] = {
        "benchmark": "rlcausality gpu_bench",
        "smoke": args.smoke,
        "environment": env,
        "peak_bf16_tflops": peak_tflops(env, args.peak_tflops),
        "flops_formula": FLOPS_FORMULA,
        "options": vars(args),
        "models": [],
        "complete": False,
    }
    if not cuda() and not args.smoke:
        print("warning: no CUDA device; timings are CPU timings", file=sys.stderr)
    for name in args.models:
        print(f"== {name}", file=sys.stderr, flush=True)
        results["models"].append(run_model(name, args, env, budget))
        results["wall_s"] = round(budget.elapsed(), 1)
        write_results(results, args, final=False)
    results["wall_s"] = round(budget.elapsed(), 1)
    write_results(results, args)
    return 1 if any(entry["errors"] for entry in results["models"]) else 0
