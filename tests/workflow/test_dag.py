"""The DAG the workflow derives from config.yaml, asserted with real dry-runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import copy_workflow, dry_run, run_snakemake

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
    assert counts["format"] == 8 + 8 + 4
    assert counts["summary"] == 1
    assert counts["corpus"] == 1
    assert "base_model" not in counts  # hub models are not built locally


def test_deepseek_grpo_report_has_no_sft_job(workflow: Path) -> None:
    counts = dry_run(workflow, "results/reports/deepseek-r1-7b/grpo.html")
    assert "sft" not in counts
    assert counts["grpo"] == 1
    assert counts["evaluate"] == 3


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


def test_lint_is_clean(workflow: Path) -> None:
    proc = run_snakemake(workflow, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_bad_config_fails_the_dry_run_with_the_key_named(workflow: Path) -> None:
    proc = run_snakemake(workflow, "-n", "--config", "run=[tiny,nonexistent-model]", check=False)
    assert proc.returncode != 0
    assert "run: 'nonexistent-model' is not a key of models" in proc.stderr + proc.stdout
