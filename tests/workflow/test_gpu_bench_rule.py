"""Rule gpu_bench, run by Snakemake on the CPU: it benchmarks the selected GPU models with
benchmarks.gpu_bench and writes results/cluster/gpu_bench.json; the next dry-run's plan reads
it and says whether its times are calibrated by it (a CPU measurement is refused, by name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workflow.helpers import copy_workflow, run_snakemake

# tiny stands in for a GPU model: its SFT job is declared a GPU job, so the rule measures it.
TINY_ON_A_GPU = """\
run: [tiny]
models:
  tiny:
    resources:
      sft: {gpus: 1}
"""


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_workflow(tmp_path_factory.mktemp("gpu_bench_rule"))
    (root / "gpu_tiny.yaml").write_text(TINY_ON_A_GPU, "utf-8")
    return root


def test_gpu_bench_rule_writes_the_file_the_plan_reads(workflow: Path) -> None:
    files = ("--configfile", "config.yaml", "gpu_tiny.yaml")
    before = run_snakemake(workflow, "-n", *files)
    assert "PLAN: times from the plan's constants (fitted on an H200;" in before.stderr
    run_snakemake(workflow, "--cores", "2", "results/cluster/gpu_bench.json", *files)
    result = json.loads((workflow / "results/cluster/gpu_bench.json").read_text("utf-8"))
    assert result["complete"] is True
    (tiny,) = result["models"]
    assert tiny["model"] == "tiny" and not tiny["errors"]
    assert tiny["sft"]["seq_len"] == 1024
    assert tiny["grpo"]["sequences"] == 16 and tiny["grpo"]["new_tokens"] == 256
    assert [g["kind"] for g in tiny["generation"]] == ["eval"]
    assert not (workflow / "results/cluster/gpu_bench.json.partial").exists()
    assert (workflow / "results/cluster/gpu_bench.md").is_file()
    after = run_snakemake(workflow, "-n", *files)
    assert (
        "PLAN: times from the plan's constants; results/cluster/gpu_bench.json: measured "
        "without a GPU: not used" in after.stderr
    )


def test_gpu_bench_without_gpu_models_names_the_fix(workflow: Path) -> None:
    proc = run_snakemake(
        workflow,
        "-n",
        "-f",
        "results/cluster/gpu_bench.json",
        "--config",
        "run=[tiny]",
        check=False,
    )
    assert proc.returncode != 0
    assert "no model of `run` uses a GPU (tiny)" in proc.stdout + proc.stderr
