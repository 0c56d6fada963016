"""The GPU type a job asks SLURM for, where the user sees it: the dry-run's GPU lines beside
the GPU the plan priced the job on, one setting serving both where the names agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rlcausality.cluster.gpu_request import plan_name
from rlcausality.plan.jobs import gpu_table

from .helpers import copy_workflow, run_snakemake

REAL = "run=[qwen2.5-1.5b,phi-3.5-mini,deepseek-r1-7b]"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("gpu_request"))


def _dry_run(workflow: Path, extra_config: str, *args: str) -> str:
    (workflow / "gpu.yaml").write_text(extra_config)
    proc = run_snakemake(
        workflow, "-n", "--configfile", "config.yaml", "gpu.yaml", "--config", REAL, *args
    )
    return proc.stderr


def test_site_names_that_agree_with_the_plan() -> None:
    known = list(gpu_table())
    assert plan_name("h200", known) == "H200"
    assert plan_name("h100_80gb", known) == "H100-80GB"
    assert plan_name("a100", known) is None  # 40 or 80 GB: the plan cannot tell
    assert plan_name(None, known) is None


def test_a_model_type_set_once_prices_the_plan_and_the_request(workflow: Path) -> None:
    err = _dry_run(workflow, "defaults:\n  resources:\n    grpo: {gpu_model: h200}\n")
    assert re.search(r"^TRAIN grpo phi-3\.5-mini: .*of 140 \(H200\): fits$", err, re.M), err
    assert re.search(r"^TRAIN sft phi-3\.5-mini: .*\(A100-80GB\): fits$", err, re.M), err
    assert "GPU grpo phi-3.5-mini: sbatch --gpus=h200:2; plan: H200 (same GPU)" in err
    assert "GPU grpo qwen2.5-1.5b: sbatch --gpus=h200:1; plan: H200 (same GPU)" in err
    assert not re.search(r"^GPU (sft|evaluate) ", err, re.M)  # no type asked: no line


def test_the_profiles_type_wins_and_an_unknown_name_is_flagged(workflow: Path) -> None:
    err = _dry_run(
        workflow,
        "defaults:\n  resources:\n    sft: {gpu_model: h200}\n",
        "--set-resources",
        "sft:gpu_model=tesla",
    )
    assert (
        "GPU sft phi-3.5-mini: sbatch --gpus=tesla:2; plan: A100-80GB "
        "(check that they are the same GPU)" in err
    ), err


def test_plan_rules_name_the_gpu_when_the_names_differ(workflow: Path) -> None:
    err = _dry_run(
        workflow,
        "plan: {rules: {grpo: H100-80GB}}\ndefaults:\n  resources:\n    grpo: {gpu_model: h200}\n",
    )
    assert "GPU grpo phi-3.5-mini: sbatch --gpus=h200:2; plan: H100-80GB (check" in err, err
