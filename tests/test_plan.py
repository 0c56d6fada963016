"""The run plan's arithmetic: calibration against published measurements, fits and its lines.

Pure arithmetic (no torch): the byte counts against models that transformers and PEFT build are
in tests/models/test_plan_bytes.py, the dry-run lines in tests/workflow/test_plan_dag.py.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from rlcausality.plan import arch as archs
from rlcausality.plan import jobs as plan
from rlcausality.plan import memory as mem
from rlcausality.plan import stages
from rlcausality.settings.config import ConfigError, resolved_settings
from rlcausality.settings.validation import validate_config

REPO = Path(__file__).resolve().parents[1]
REAL = ["qwen2.5-1.5b", "phi-3.5-mini", "deepseek-r1-7b"]
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# LLaMA-Factory's published GPU memory of LLaMA-2-7B fine-tuning (github.com/hiyouga/LLaMA-Factory:
# README "Benchmark" (peak GPU memory of 4-bit QLoRA training, batch 1, cutoff_len 1024) and
# "Hardware Requirement" (7B: QLoRA 4-bit 6 GB, LoRA 16-bit 16 GB)). Their setup: LoRA rank 8 on
# every linear layer, gradient checkpointing, fp32 adapters, the transformers loss (full
# logits), bf16 embeddings (no prepare_model_for_kbit_training).
CALIBRATION = [
    # (case, quantization, batch, eager attention, published GB, tolerance)
    ("QLoRA 4-bit, batch 1, FlashAttention 2", "4bit", 1, False, 6.0, 0.20),
    ("QLoRA 4-bit, batch 4, no FlashAttention", "4bit", 4, True, 9.0, 0.20),
    ("LoRA 16-bit, batch 4", "none", 4, False, 17.0, 0.20),  # "about 16-18 GB"
]


def config(**plan_settings) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["run"] = list(REAL)
    cfg["plan"] = {**cfg.get("plan", {}), **plan_settings}
    return validate_config(cfg)


def by_name(jobs: list[plan.JobPlan]) -> dict[str, plan.JobPlan]:
    return {job.name: job for job in jobs}


@pytest.mark.parametrize(
    ("case", "quantization", "batch", "eager", "published", "tol"), CALIBRATION
)
def test_llama2_7b_calibration(case, quantization, batch, eager, published, tol) -> None:
    llama = archs.from_config(archs.shipped()["meta-llama/Llama-2-7b-hf"], "calibration")
    setup = mem.Setup(
        llama, quantization, compute_bytes=2, kbit_prepared=False, bf16_quantized_adapters=False
    )
    parts, _ = stages.train_breakdown(
        setup, ALL_LINEAR, 8, 0.0, batch * 1024, 1024, True, fused=False, eager=eager
    )
    estimate = sum(mem.with_allowance(parts).values()) / mem.GIB
    assert abs(estimate - published) / published <= tol, (case, round(estimate, 2))


def test_llama2_7b_counts_are_the_published_ones() -> None:
    llama = archs.from_config(archs.shipped()["meta-llama/Llama-2-7b-hf"], "calibration")
    assert llama.parameters == 6_738_415_616  # LlamaForCausalLM(Llama-2-7b-hf config)
    assert llama.lora_parameters("all-linear", 8) == 19_988_480  # PEFT's print_trainable


def test_nf4_bytes_per_weight() -> None:
    # 4 bits, one 8-bit absmax per 64 weights, one fp32 absmax per 256 of those blocks
    assert pytest.approx(0.5 + 1 / 64 + 1 / 4096) == mem.NF4_BYTES


def test_shipped_config_fits_an_a100_80gb_and_every_job_is_planned() -> None:
    jobs = plan.plan_jobs(config())
    assert len(jobs) == 2 + 3 + 24
    for job in jobs:
        assert job.fits, (job.name, job.reasons)
        assert job.est_gpu_mem_gb is not None and job.est_hours is not None, job.name
        assert job.runtime_h >= 1.2 * job.est_hours, job.name  # the margin config.yaml cites
        parts = sum(job.mem_breakdown_gb.values())
        assert parts == pytest.approx(job.est_gpu_mem_gb, abs=0.1), job.name
    keys = set(jobs[0].as_dict())
    assert {"rule", "model", "stage", "gpus", "gpu", "steps", "effective_batch",
            "est_gpu_mem_gb", "mem_breakdown_gb", "est_hours", "runtime_h", "fits",
            "reasons"} <= keys  # fmt: skip


def test_a_job_made_not_to_fit_by_memory_is_named() -> None:
    jobs = by_name(plan.plan_jobs(config(gpu="RTX-3090")))
    phi = jobs["grpo phi-3.5-mini"]
    assert not phi.fits
    assert phi.reasons[0].startswith("~30 GB/GPU > 24 GB of an RTX-3090")
    assert plan.misfit_line(phi).startswith("PLAN: grpo phi-3.5-mini: ~30 GB/GPU > 24 GB")
    # its KV cache is most of it: 16 rollouts x 3,072 tokens x 32 layers x 2 x 3,072 x 2 bytes
    assert phi.mem_breakdown_gb["kv_cache"] == pytest.approx(16 * 3072 * 393_216 / 2**30, 0.01)


def test_a_job_made_not_to_fit_by_time_is_named() -> None:
    cfg = config()
    cfg["models"]["deepseek-r1-7b"]["grpo"]["max_steps"] = 2000
    job = by_name(plan.plan_jobs(cfg))["grpo deepseek-r1-7b"]
    assert not job.fits and len(job.reasons) == 1
    hours = 2000 * job.seconds_per_step / 3600
    assert job.reasons[0] == (
        f"~{job.est_hours:.1f} h at ~{job.seconds_per_step:.3g} s/step × 2,000 steps > runtime "
        f"{job.runtime_h:g} h"
    )
    assert job.est_hours == pytest.approx(hours + 300 / 3600, abs=0.01)
    assert "DOES NOT FIT" in plan.train_line(job)


def test_a_measured_seconds_per_step_replaces_the_estimate() -> None:
    cfg = config()
    cfg["models"]["qwen2.5-1.5b"]["resources"]["grpo"]["seconds_per_step"] = 100
    job = by_name(plan.plan_jobs(cfg))["grpo qwen2.5-1.5b"]
    assert job.seconds_per_step == 100 and job.seconds_per_step_source == "config (measured)"
    assert job.est_hours == pytest.approx((600 * 100 + 300) / 3600, abs=0.01)


def test_a_grpo_prepass_is_planned_once_before_the_steps() -> None:
    """grpo.prepass_samples adds its completions, in rollout-sized batches each a rollout's
    time, once to the job: the steps' prompts over the planned kept share, k each."""
    cfg = config()
    before = by_name(plan.plan_jobs(cfg))["grpo qwen2.5-1.5b"]
    grpo = cfg["models"]["qwen2.5-1.5b"]["grpo"]
    grpo["prepass_samples"] = 4
    after = by_name(plan.plan_jobs(cfg))["grpo qwen2.5-1.5b"]
    settings = resolved_settings(cfg, "qwen2.5-1.5b")
    stage = settings.grpo
    per_step = stage.per_device_train_batch_size * stage.gradient_accumulation_steps
    per_step //= stage.num_generations
    needed = min(after.rows, after.steps * per_step)
    completions = min(after.rows, math.ceil(needed / stages.PREPASS_DISAGREEING)) * 4
    assert stages.prepass_completions(settings, after.steps, after.rows, 1) == completions
    (note,) = [n for n in after.notes if n.startswith("pre-pass:")]
    assert note.startswith(f"pre-pass: {completions:,} completions, ~")
    assert after.seconds_per_step == before.seconds_per_step and after.steps == before.steps
    assert after.est_hours > before.est_hours
    assert not [n for n in before.notes if n.startswith("pre-pass:")]
    assert f"s + {note} = {after.est_hours:.1f} h of runtime" in plan.train_line(after)


def test_zero3_shards_an_unquantised_base_but_gathers_it_for_rollouts() -> None:
    cfg = config()
    cfg["models"]["phi-3.5-mini"]["grpo"]["deepspeed"] = "zero3"
    settings = resolved_settings(cfg, "phi-3.5-mini")
    phi = archs.for_model(cfg, settings.model)
    setup = stages.setup_for(settings, phi, "grpo", plan.gpu("A100-80GB"))
    assert setup.deepspeed == "zero3"
    full = phi.parameters * 2
    assert mem.base_weight_bytes(setup) == full // 2
    assert mem.base_weight_bytes(setup, gathered=True) == full


def test_evaluation_precision_sets_the_planned_weight_bytes() -> None:
    gpu = plan.gpu("A100-80GB")
    widths = {}
    for dtype in ("auto", "float32", "bfloat16"):
        cfg = config()
        cfg["models"]["qwen2.5-1.5b"].setdefault("evaluate", {})["dtype"] = dtype
        settings = resolved_settings(cfg, "qwen2.5-1.5b")
        qwen = archs.for_model(cfg, settings.model)
        widths[dtype] = stages.setup_for(settings, qwen, "evaluate", gpu).compute_bytes
    assert widths == {"auto": 2, "float32": 4, "bfloat16": 2}  # auto: bf16 on an A100


def test_a_quantised_base_runs_zero2_and_its_lora_state_is_partitioned() -> None:
    cfg = config()
    settings = resolved_settings(cfg, "deepseek-r1-7b")
    r1 = archs.for_model(cfg, settings.model)
    setup = stages.setup_for(settings, r1, "grpo", plan.gpu("A100-80GB"))
    assert setup.deepspeed == "zero2" and setup.processes == 2
    lora = r1.lora_parameters(ALL_LINEAR, 64)
    state = mem.lora_state_bytes(setup, lora)
    assert state == {"lora_params": 2 * lora, "lora_grads": lora, "optimizer": 6 * lora}


def test_unknown_gpu_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"plan\.gpu: 'B200' is not a GPU the plan knows"):
        config(gpu="B200")


def test_the_plan_imports_no_torch_and_is_fast() -> None:
    import subprocess
    import sys

    code = (
        "import sys, time, yaml; from rlcausality.settings.validation import validate_config;"
        "from rlcausality.plan import jobs as plan;"
        f"c = validate_config(yaml.safe_load(open({str(REPO / 'config.yaml')!r})));"
        "t = time.perf_counter(); plan.plan_jobs(c); dt = time.perf_counter() - t;"
        "print('torch' in sys.modules, dt)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    torch_loaded, seconds = out.stdout.split()
    assert torch_loaded == "False"
    assert float(seconds) < 0.5


def test_cpu_jobs_are_checked_against_mem_mb_only() -> None:
    cfg = copy.deepcopy(config())
    cfg["run"] = ["tiny"]
    jobs = plan.plan_jobs(cfg)
    assert jobs and all(j.gpu == "CPU" and j.est_hours is None and j.fits for j in jobs)
    assert all(j.host_mem_gb is not None for j in jobs)
    assert "no CPU times" in plan.summary_line(jobs)


def test_benchmark_gpus_map_to_the_table() -> None:
    from rlcausality.plan.bench import match_gpu

    assert match_gpu("NVIDIA H200", 139.8) == "H200"
    assert match_gpu("NVIDIA H100 80GB HBM3", 79.2) == "H100-80GB"
    assert match_gpu("NVIDIA H100 PCIe", 79.6) == "H100-PCIe"
    assert match_gpu("NVIDIA H100 NVL", 93.1) == "H100-NVL"
    assert match_gpu("NVIDIA A100-SXM4-80GB", 79.2) == "A100-80GB"
    assert match_gpu("NVIDIA A100-SXM4-40GB", 39.4) == "A100-40GB"
    assert match_gpu("NVIDIA GeForce RTX 2080 Ti", 10.7) == "RTX-2080-Ti"
    assert match_gpu("NVIDIA B200", 180.0) is None


def test_the_plan_without_snakemake(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "rlcausality.plan", "--configfile", str(REPO / "config.yaml"),
         "--run", ",".join(REAL), "--json", str(tmp_path / "p.json"),
         "--md", str(tmp_path / "p.md")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.splitlines()[-1].startswith("PLAN: all 29 training and evaluation jobs fit")
    assert len(json.loads((tmp_path / "p.json").read_text())["jobs"]) == 29


def test_a_target_shows_the_plan_of_its_own_jobs_only() -> None:
    cfg = config()
    jobs = plan.plan_jobs(cfg)

    def names(*targets: str) -> set[str]:
        return {job.name for job in plan.for_targets(jobs, cfg, targets)}

    deepseek = names("results/reports/deepseek-r1-7b/grpo.html")  # init base: no SFT job
    assert deepseek == {"grpo deepseek-r1-7b"} | {
        f"evaluate deepseek-r1-7b grpo {t}" for t in ("test", "test_paraphrased", "test_refactored")
    }
    assert names("results/models/qwen2.5-1.5b/grpo/manifest.json") == {
        "sft qwen2.5-1.5b",  # init sft: GRPO needs it
        "grpo qwen2.5-1.5b",
    }
    assert names("results/eval/phi-3.5-mini/sft/test/metrics.json") == {
        "sft phi-3.5-mini",
        "evaluate phi-3.5-mini sft test",
    }
    assert names("results/data/qwen2.5-1.5b/sft/train.jsonl") == set()
    # a target of every model, or none at all: every job
    assert len(plan.for_targets(jobs, cfg, ["results/reports/summary.html"])) == len(jobs)
    assert len(plan.for_targets(jobs, cfg, [])) == len(jobs)
