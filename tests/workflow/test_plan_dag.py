"""The run plan where the user sees it: dry-run lines, `plan: strict`, results/plan.{md,json}."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import copy_workflow, run_snakemake

REAL = "run=[qwen2.5-1.5b,phi-3.5-mini,deepseek-r1-7b]"
KEYS = {
    "rule", "model", "stage", "gpus", "gpu", "steps", "effective_batch", "est_gpu_mem_gb",
    "mem_breakdown_gb", "est_hours", "runtime_h", "fits", "reasons",
}  # fmt: skip


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("plan"))


def test_a_job_that_does_not_fit_its_gpu_memory_is_named(workflow: Path) -> None:
    proc = run_snakemake(workflow, "-n", "--config", REAL, "plan={gpu: RTX-3090}")
    assert re.search(
        r"^PLAN: grpo phi-3\.5-mini: ~30 GB/GPU > 24 GB of an RTX-3090(;|$)", proc.stderr, re.M
    ), proc.stderr
    assert re.search(r"^TRAIN grpo phi-3\.5-mini: .*\(RTX-3090\): DOES NOT FIT$", proc.stderr, re.M)
    assert re.search(r"^PLAN: \d+ of 29 jobs do not fit \(RTX-3090\)", proc.stderr, re.M)
    assert "Job stats:" in proc.stdout  # only a warning: the dry-run goes on


def test_plan_strict_turns_a_misfit_into_a_dry_run_error(workflow: Path) -> None:
    # --config parses nested values as strings: a boolean goes into a config file
    (workflow / "strict.yaml").write_text("plan: {gpu: RTX-3090, strict: true}\n")
    args = ("-n", "--configfile", "config.yaml", "strict.yaml", "--config", REAL)
    proc = run_snakemake(workflow, *args, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "plan: strict, and these jobs do not fit what they ask for:" in out
    assert "PLAN: grpo phi-3.5-mini: ~30 GB/GPU > 24 GB of an RTX-3090" in out
    (workflow / "strict.yaml").write_text("plan: {gpu: H100-80GB, strict: true}\n")
    ok = run_snakemake(workflow, *args)
    assert "PLAN: all 29 training and evaluation jobs fit (H100-80GB" in ok.stderr


def test_results_plan_md_and_json(workflow: Path) -> None:
    run_snakemake(workflow, "-c1", "--config", REAL, "--", "results/plan.md")
    doc = json.loads((workflow / "results/plan.json").read_text())
    jobs = doc["jobs"]
    assert len(jobs) == 29 and all(set(job) >= KEYS for job in jobs)
    r1 = next(j for j in jobs if j["rule"] == "grpo" and j["model"] == "deepseek-r1-7b")
    assert r1["gpus"] == 2 and r1["gpu"] == "A100-80GB" and r1["fits"] is True
    assert r1["steps"] == 450 and r1["effective_batch"] == 32
    assert set(r1["mem_breakdown_gb"]) >= {"base_weights", "optimizer", "kv_cache", "cuda_context"}
    assert sum(r1["mem_breakdown_gb"].values()) == pytest.approx(r1["est_gpu_mem_gb"], abs=0.1)
    assert doc["gpus"]["A100-80GB"]["source"].startswith("NVIDIA A100")
    table = (workflow / "results/plan.md").read_text()
    assert "## Memory per GPU (GB)" in table
    assert "| grpo deepseek-r1-7b | 2 × A100-80GB | 450 | 32 |" in table
