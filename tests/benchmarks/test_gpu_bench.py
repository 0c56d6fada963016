"""benchmarks/gpu_bench.py in --smoke mode on the CPU: the script runs and its JSON is complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_bench.py"
FAMILIES = ("qwen2.5-1.5b", "phi-3.5-mini", "deepseek-r1-7b")

TOP_KEYS = {
    "benchmark",
    "smoke",
    "environment",
    "peak_bf16_tflops",
    "flops_formula",
    "options",
    "families",
    "wall_s",
}
ENV_KEYS = {"gpu", "cuda", "versions", "command", "created"}
VERSION_KEYS = {"torch", "transformers", "trl", "peft", "bitsandbytes"}
FAMILY_KEYS = {
    "model",
    "dims",
    "parameters",
    "matmul_parameters",
    "trainable_parameters",
    "quantization",
    "configured_quantization",
    "precision",
    "family",
    "lora_targets",
    "sft",
    "generation",
    "vllm",
    "errors",
}
SFT_KEYS = {
    "mean_step_s",
    "tokens_per_s",
    "tokens_per_step",
    "step_times_s",
    "peak_allocated_gib",
    "peak_reserved_gib",
    "tflops_achieved",
    "mfu",
    "mfu_8n",
    "gradient_checkpointing",
    "seq_len",
}
GENERATION_KEYS = {
    "kind",
    "backend",
    "sequences",
    "new_tokens",
    "generated_tokens",
    "full_length",
    "batch_s",
    "tokens_per_s",
    "ms_per_decode_step",
}


def run_smoke(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "bench.json"
    table = tmp_path / "bench.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--smoke",
            "--out",
            str(out),
            "--markdown",
            str(table),
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(out.read_text("utf-8")), table.read_text("utf-8")


def check_family(family: dict[str, Any]) -> None:
    assert not family["errors"], family["errors"]
    assert not FAMILY_KEYS - family.keys()
    assert family["parameters"] > 0
    assert family["matmul_parameters"] > 0
    assert family["trainable_parameters"] > 0
    assert family["precision"] == "fp32"  # the CPU
    sft = family["sft"]
    assert not SFT_KEYS - sft.keys()
    assert sft["gradient_checkpointing"] is True
    assert sft["seq_len"] == 64
    assert sft["tokens_per_step"] == 64
    assert sft["mean_step_s"] > 0
    assert sft["tokens_per_s"] > 0
    assert sft["peak_rss_mib"] > 0
    assert sft["timed_steps"] >= 1
    kinds = {g["kind"] for g in family["generation"]}
    assert kinds == {"rollout", "eval"}
    for gen in family["generation"]:
        assert not GENERATION_KEYS - gen.keys()
        assert gen["new_tokens"] == 16
        assert gen["full_length"] is True
        assert gen["generated_tokens"] == gen["sequences"] * 16
        assert gen["tokens_per_s"] > 0
        assert gen["batch_s"] > 0
    rollout = next(g for g in family["generation"] if g["kind"] == "rollout")
    assert rollout["completions_per_prompt"] == 4
    assert rollout["sequences"] == rollout["prompts"] * 4
    assert "skipped" in family["vllm"]


def test_smoke_all_families(tmp_path: Path) -> None:
    results, table = run_smoke(tmp_path)
    assert not TOP_KEYS - results.keys()
    assert results["smoke"] is True
    env = results["environment"]
    assert not ENV_KEYS - env.keys()
    assert not VERSION_KEYS - env["versions"].keys()
    assert all(env["versions"][name] for name in ("torch", "transformers", "trl", "peft"))
    assert "--smoke" in env["command"]
    assert "6 * N * T" in results["flops_formula"]
    assert [f["model"] for f in results["families"]] == list(FAMILIES)
    for family in results["families"]:
        check_family(family)
        assert family["quantization"] == "none"  # no CUDA: bitsandbytes 4-bit is not used
    by_model = {f["model"]: f for f in results["families"]}
    assert by_model["phi-3.5-mini"]["lora_targets"] == sorted(
        ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    )
    assert by_model["deepseek-r1-7b"]["configured_quantization"] == "4bit"
    assert "measured unquantised" in by_model["deepseek-r1-7b"]["quantization_note"]
    for name in FAMILIES:
        assert f"| {name} |" in table
    assert "MFU" in table
    # the plan's estimate of each measured shape stands beside it (an A100-80GB without a GPU)
    for family in results["families"]:
        plan = family["plan"]
        assert plan["sft"]["gpu"] == "A100-80GB" and plan["sft"]["peak_gib"] > 0
        assert len(plan["generation"]) == len(family["generation"])
    assert "| measured peak reserved (GiB) | plan (GiB) |" in table


def test_smoke_quantized_reload(tmp_path: Path) -> None:
    """The QLoRA path (save, reload 4-bit through load_model, k-bit preparation) on the CPU."""
    pytest.importorskip("bitsandbytes")
    results, _ = run_smoke(tmp_path, "--families", "deepseek-r1-7b", "--quantize", "4bit")
    (family,) = results["families"]
    check_family(family)
    assert family["quantization"].startswith("4bit-nf4")
    assert family["stored_parameters"] < family["parameters"]  # packed 4-bit weights
