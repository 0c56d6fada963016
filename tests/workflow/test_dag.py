"""The DAG the workflow derives from config.yaml, asserted with real dry-runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rlcausality.settings.config import resolve_model
from rlcausality.settings.validation import validate_config

from .helpers import copy_workflow, dry_run, job_counts, run_snakemake

REAL = "run=[qwen2.5-1.5b,phi-3.5-mini,deepseek-r1-7b]"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("dag"))


def test_full_dag_of_the_three_real_models(workflow: Path) -> None:
    counts = dry_run(workflow, "--config", REAL)
    # Qwen and Phi: base, SFT, GRPO; DeepSeek: base and GRPO (GRPO starts from the base model).
    assert counts["sft"] == 2
    assert counts["grpo"] == 3
    assert counts["evaluate"] == (3 + 3 + 2) * 3  # stages x three test sets
    assert counts["report_stage"] == 8
    # Qwen and Phi: trace/train (SFT on the oracle trace), grpo/train and the three grpo test
    # sets (every stage is asked the reasoning prompt); DeepSeek: grpo/train and test sets.
    assert counts["format"] == 5 + 5 + 4
    assert counts["summary"] == 1
    assert counts["corpus"] == 1
    assert "base_model" not in counts  # hub models are not built locally


def test_deepseek_grpo_report_has_no_sft_job(workflow: Path) -> None:
    counts = dry_run(workflow, "results/reports/deepseek-r1-7b/grpo.html")
    assert "sft" not in counts
    assert counts["grpo"] == 1
    assert counts["evaluate"] == 3
    # the plan's lines are those of this target's jobs, not of every configured model
    proc = run_snakemake(workflow, "-n", "results/reports/deepseek-r1-7b/grpo.html")
    train = [line for line in proc.stderr.splitlines() if line.startswith("TRAIN ")]
    assert len(train) == 1 and train[0].startswith("TRAIN grpo deepseek-r1-7b:"), train
    assert "PLAN: all 4 training and evaluation jobs fit" in proc.stderr


def test_flipping_deepseek_init_to_sft_adds_the_sft_job(workflow: Path) -> None:
    config = (workflow / "config.yaml").read_text()
    flipped = workflow.parent / "flipped"
    copy_workflow(flipped)
    needle = "init: base # R1-Distill already reasons: GRPO straight from the base model"
    assert needle in config
    (flipped / "config.yaml").write_text(config.replace(needle, "init: sft"))
    counts = dry_run(flipped, "results/reports/deepseek-r1-7b/grpo.html")
    assert counts["sft"] == 1
    assert counts["grpo"] == 1


def test_local_profile_builds_only_the_embedded_model(workflow: Path) -> None:
    counts = dry_run(workflow, "--profile", "profiles/local")
    assert counts["base_model"] == 1
    assert counts["sft"] == 1
    assert counts["grpo"] == 1
    assert counts["evaluate"] == 9


def test_demo_profile_builds_smollm2_alone(workflow: Path) -> None:
    proc = run_snakemake(workflow, "-n", "-p", "--profile", "profiles/demo")
    out = proc.stdout + proc.stderr
    counts = job_counts(out)
    assert counts["base_model"] == 1  # the GGUF conversion; no tiny build
    assert counts["sft"] == 1 and counts["grpo"] == 1
    assert counts["evaluate"] == 2  # SFT and GRPO on test
    # GRPO's prompts are drawn from the train rows SFT's sample leaves out.
    assert "--exclude results/data/smollm2-135m/trace/train.jsonl" in out


def test_learn_profile_is_the_demo_chain_with_a_lookup_check_and_five_times_the_grpo_steps(
    workflow: Path,
) -> None:
    demo = run_snakemake(workflow, "-n", "-p", "--profile", "profiles/demo")
    proc = run_snakemake(workflow, "-n", "-p", "--profile", "profiles/learn")
    out = proc.stdout + proc.stderr
    counts = job_counts(out)
    assert counts["base_model"] == 1  # SmolLM2 alone: no tiny
    assert counts["sft"] == 1 and counts["grpo"] == 1
    assert counts["evaluate"] == 2
    grpo = [line for line in out.splitlines() if "training.grpo " in line]
    assert len(grpo) == 1
    assert '"max_steps": 50' in grpo[0]  # GRPO: 50 steps x 2 prompts x 4 completions
    assert '"learning_rate": 1e-05' in grpo[0]  # a fifth of the demo's 5e-5 (docs/demo.md)
    assert '"rewards": ["correctness", "format", "trace", "consistency"]' in grpo[0]
    # SFT's trace rows spell the collider and confounder check as a lookup; the rest of the
    # trace format's settings are the demo's (docs/demo.md, "GRPO on a Check ...")
    lookup = '"trace_lookup": ["collider", "confounder"]'
    trace_formats = [
        [
            line
            for line in (p.stdout + p.stderr).splitlines()
            if "data.formatting " in line and "--output results/data/smollm2-135m/trace/" in line
        ]
        for p in (demo, proc)
    ]
    assert len(trace_formats[0]) == len(trace_formats[1]) == 1
    assert lookup in trace_formats[1][0] and lookup not in trace_formats[0][0]
    assert trace_formats[1][0].replace(", " + lookup, "") == trace_formats[0][0]


def test_lint_is_clean(workflow: Path) -> None:
    proc = run_snakemake(workflow, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_bad_config_fails_the_dry_run_with_the_key_named(workflow: Path) -> None:
    proc = run_snakemake(workflow, "-n", "--config", "run=[tiny,nonexistent-model]", check=False)
    assert proc.returncode != 0
    assert "run: 'nonexistent-model' is not a key of models" in proc.stderr + proc.stdout
    assert "config.yaml + --config: 1 problem(s)" in proc.stderr + proc.stdout


def test_bad_config_error_names_every_file_merged(workflow: Path) -> None:
    """A key may come from any --configfile: the error lists them in Snakemake's merge order."""
    overlay = workflow / "sft-only.yaml"
    overlay.write_text("models: {smollm2-135m: {stages: [sft]}}\n")
    proc = run_snakemake(
        workflow, "-n", "--configfile", "config.yaml", "profiles/demo/demo.yaml", str(overlay),
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    out = proc.stderr + proc.stdout
    assert "config.yaml + profiles/demo/demo.yaml + sft-only.yaml: 1 problem(s)" in out, out
    assert "models.smollm2-135m.format.grpo_prompts: unseen" in out


def _job_blocks(output: str) -> list[dict[str, str]]:
    """rule name, wildcards and resources of every job a dry-run prints."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        job = {"rule": head.group(1)}
        for key in ("wildcards", "resources"):
            found = re.search(rf"^\s+{key}: (.*)$", block, re.MULTILINE)
            job[key] = found.group(1) if found else ""
        jobs.append(job)
    return jobs


def test_slurm_dry_run_requests_the_configured_resources(workflow: Path) -> None:
    proc = run_snakemake(workflow, "-n", "-p", "--profile", "profiles/slurm", "--config", REAL)
    config = yaml.safe_load((workflow / "config.yaml").read_text())
    validate_config(config)
    gpu_jobs = [j for j in _job_blocks(proc.stdout) if j["rule"] in ("sft", "grpo", "evaluate")]
    assert len(gpu_jobs) == 2 + 3 + 24
    for job in gpu_jobs:
        model = re.search(r"model=([^,]+)", job["wildcards"]).group(1)
        expected = resolve_model(config, model)["resources"][job["rule"]]
        resources = dict(item.split("=", 1) for item in job["resources"].split(", "))
        assert resources["slurm_partition"] == "gpu", job
        assert int(resources["gpu"]) == expected["gpus"], job
        assert int(resources["mem_mb"]) == expected["mem_mb"], job
        assert int(resources["runtime"]) == expected["runtime"], job
        assert int(resources["cpus_per_task"]) == expected["cpus"], job
        # No `tasks`: for GPU jobs the SLURM plugin turns it into --ntasks-per-gpu, which would
        # start one task per GPU; left out, the job is one task that runs the launcher.
        assert "tasks" not in resources, job
    # multi-GPU jobs launch one torchrun process group over their GPUs
    phi_sft = resolve_model(config, "phi-3.5-mini")["resources"]["sft"]["gpus"]
    launcher = f"torchrun --standalone --nproc_per_node={phi_sft} -m rlcausality.training.sft"
    assert launcher in proc.stdout


def test_dry_run_prints_every_training_jobs_launcher_and_steps(workflow: Path) -> None:
    proc = run_snakemake(workflow, "-n", "--config", REAL)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("TRAIN ")]
    jobs = {tuple(line.split(":")[0].split()[1:3]) for line in lines}
    assert jobs == {
        ("sft", "qwen2.5-1.5b"),
        ("grpo", "qwen2.5-1.5b"),
        ("sft", "phi-3.5-mini"),
        ("grpo", "phi-3.5-mini"),
        ("grpo", "deepseek-r1-7b"),
    }
    for line in lines:  # steps x the plan's seconds per step fit runtime and GPU memory
        assert re.search(
            r"[\d,]+ steps × ~[\d.]+ s = [\d.]+ h of runtime [\d.]+ h, ~\d+ GB/GPU of \d+ "
            r"\(A100-80GB\): fits$",
            line,
        ), line
    # qwen's SFT runs without DeepSpeed: ZeRO-2 on one GPU shards nothing and was slower
    assert "TRAIN sft qwen2.5-1.5b: python, 1 GPU, 5,186 steps" in proc.stderr
    assert "PLAN: all 29 training and evaluation jobs fit (A100-80GB" in proc.stderr
    assert "PLAN: times from the plan's constants (fitted on an H200;" in proc.stderr
    # DeepSpeed on one GPU still starts under torchrun (else it dies importing mpi4py)
    (workflow / "zero2.yaml").write_text(
        "models:\n  qwen2.5-1.5b:\n    sft: {deepspeed: zero2}\n", "utf-8"
    )
    target = "results/models/qwen2.5-1.5b/sft/manifest.json"
    files = ("--configfile", "config.yaml", "zero2.yaml")
    proc = run_snakemake(workflow, "-n", "-p", *files, "--config", REAL, "--", target)
    assert "torchrun --standalone --nproc_per_node=1 -m rlcausality.training.sft" in proc.stdout
    assert "TRAIN sft qwen2.5-1.5b: torchrun, 1 GPU, DeepSpeed zero2" in proc.stderr


def test_a_job_that_cannot_finish_in_its_runtime_is_named(workflow: Path) -> None:
    short = workflow.parent / "short"
    copy_workflow(short)
    (short / "short.yaml").write_text(
        "models:\n  qwen2.5-1.5b:\n    resources:\n      grpo: {runtime: 120}\n"
    )
    proc = run_snakemake(short, "-n", "--configfile", "config.yaml", "short.yaml", "--config", REAL)
    assert re.search(
        r"^TRAIN grpo qwen2\.5-1\.5b: python, 1 GPU, 600 steps × ~[\d.]+ s = [\d.]+ h of runtime "
        r"2\.0 h, .*: DOES NOT FIT$",
        proc.stderr,
        re.MULTILINE,
    ), proc.stderr
    assert re.search(
        r"^PLAN: grpo qwen2\.5-1\.5b: ~[\d.]+ h at ~[\d.]+ s/step × 600 steps > runtime 2 h$",
        proc.stderr,
        re.MULTILINE,
    ), proc.stderr
    assert "PLAN: 1 of 29 jobs do not fit" in proc.stderr
