"""The embedded pipeline through the user's SLURM profile on the local test cluster.

profiles/slurm (what users run) is layered with a test-only workflow profile
(tests/slurm/pipeline/config.yaml: fast polling, the test account) and config overrides that
give tiny's training and evaluation jobs one placeholder GPU each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from workflow.helpers import copy_workflow

from rlcausality.settings.config import deep_merge, resolve_model
from rlcausality.settings.validation import validate_config

from .test_cluster import mem_mb, poll_sacct, run_uuid, sacct_rows, timed_run

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SNAKEMAKE = REPO / ".venv" / "bin" / "snakemake"
OVERRIDES = HERE / "pipeline" / "tiny-on-gpus.yaml"
GPU_RULES = ("sft", "grpo", "evaluate")  # rule name = the stage of its resources

pytestmark = pytest.mark.slurm


def _snakemake(cluster, workdir: Path, *extra: str, timeout: float = 900):
    cmd = [
        str(SNAKEMAKE),
        *extra,
        "--profile",
        "profiles/slurm",
        "--workflow-profile",
        str(HERE / "pipeline"),
        "--configfile",
        "config.yaml",
        str(OVERRIDES),
    ]
    return timed_run(cmd, workdir, cluster.env, timeout)


def _expected_settings() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    overrides = yaml.safe_load(OVERRIDES.read_text())
    config = deep_merge(config, overrides)
    validate_config(config)
    return resolve_model(config, "tiny")


@pytest.fixture(scope="module")
def pipeline_run(slurm_cluster, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-pipeline"))
    proc = _snakemake(slurm_cluster, workdir)
    print(f"embedded pipeline through SLURM took {proc.elapsed:.1f} s")
    return workdir, proc


def test_pipeline_completes(pipeline_run):
    workdir, proc = pipeline_run
    assert proc.returncode == 0, proc.log[-8000:]
    assert (workdir / "results/reports/summary.html").is_file()
    for stage in ("base", "sft", "grpo"):
        metrics = json.loads((workdir / f"results/eval/tiny/{stage}/test/metrics.json").read_text())
        assert metrics["n"] > 0


def test_every_cluster_job_got_what_config_asked_for(slurm_cluster, pipeline_run):
    _, proc = pipeline_run
    assert proc.returncode == 0, proc.log[-8000:]
    settings = _expected_settings()
    submitted = len(re.findall(r"has been submitted with SLURM jobid", proc.log))
    rows = poll_sacct(slurm_cluster, run_uuid(proc.log), n=submitted, final={"COMPLETED"})
    assert len(rows) == submitted
    by_rule: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        rule = row["Comment"].removeprefix("rule_").split("_wildcards_")[0]
        by_rule.setdefault(rule, []).append(row)
    # local rules (corpus, base_model, report_stage, summary, baselines) never reach SLURM
    assert set(by_rule) == {"format", "sft", "grpo", "evaluate"}, set(by_rule)
    assert len(by_rule["evaluate"]) == 9 and len(by_rule["format"]) == 8
    for rule, job_rows in by_rule.items():
        stage = rule if rule in GPU_RULES else "data"
        res = settings["resources"][stage]
        for row in job_rows:
            assert row["Partition"] == ("gpu" if rule in GPU_RULES else "cpu"), row
            assert int(row["TimelimitRaw"]) == res["runtime"], row
            assert mem_mb(row["ReqMem"]) == res["mem_mb"], row
            tres = row["AllocTRES"].split(",")
            if res["gpus"]:
                assert f"gres/gpu={res['gpus']}" in tres, row
            else:
                assert not any(t.startswith("gres/gpu") for t in tres), row
            # the GPU type reaches sbatch (--gpus=h200:1) only where config names one
            typed = f"gres/gpu:h200={res['gpus']}"
            assert (typed in row["ReqTRES"].split(",")) == bool(res.get("gpu_model")), row


def test_the_gpu_type_is_shown_beside_the_plans_gpu(pipeline_run):
    _, proc = pipeline_run
    assert "GPU grpo tiny: sbatch --gpus=h200:1; plan: H200 (same GPU)" in proc.log, proc.log
    assert not re.search(r"^GPU (sft|evaluate) tiny", proc.log, re.M)


def test_second_invocation_submits_nothing(slurm_cluster, pipeline_run):
    workdir, first = pipeline_run
    assert first.returncode == 0, first.log[-8000:]
    proc = _snakemake(slurm_cluster, workdir, timeout=120)
    assert proc.returncode == 0, proc.log
    assert "Nothing to be done" in proc.log, proc.log
    assert "has been submitted" not in proc.log


def test_a_failing_job_is_reported_with_its_error(slurm_cluster, pipeline_run):
    workdir, first = pipeline_run
    assert first.returncode == 0, first.log[-8000:]
    corpus = workdir / "results/data/corr2cause/test_refactored.jsonl"
    lines = corpus.read_text().splitlines()
    lines[4] = lines[4].replace('"label": ', '"label": 7, "was": ')
    corpus.write_text("\n".join(lines) + "\n")
    proc = _snakemake(
        slurm_cluster, workdir, "results/data/tiny/sft/test_refactored.jsonl", timeout=300
    )
    assert proc.returncode != 0, proc.log
    rows = poll_sacct(slurm_cluster, run_uuid(proc.log), n=1, final={"FAILED"})
    assert rows[0]["Comment"].startswith("rule_format_wildcards_tiny_sft"), rows
    log = (workdir / "results/logs/format/tiny/sft/test_refactored.log").read_text()
    assert "test_refactored.jsonl:5:" in log, log
    assert not (workdir / "results/data/tiny/sft/test_refactored.jsonl").exists()
    assert sacct_rows(slurm_cluster, run_uuid(proc.log))


def test_gpu_check_launches_one_process_per_gpu(slurm_cluster, pipeline_run):
    workdir, first = pipeline_run
    assert first.returncode == 0, first.log[-8000:]
    # phi-3.5-mini trains on 2 GPUs: gpu_check asks for 2 and starts torchrun with 2 processes
    proc = _snakemake(
        slurm_cluster,
        workdir,
        "results/cluster/gpu_check.json",
        "--config",
        "run=[phi-3.5-mini]",
        timeout=300,
    )
    assert proc.returncode == 0, proc.log[-8000:]
    report = json.loads((workdir / "results/cluster/gpu_check.json").read_text())
    assert report["world_size"] == 2
    assert [p["rank"] for p in report["processes"]] == [0, 1]
    for process in report["processes"]:
        assert process["cuda_visible_devices"] == "0,1"
        assert process["slurm"]["SLURM_JOB_PARTITION"] == "gpu"
        assert process["slurm"]["SLURM_NTASKS"] == "1"  # one launcher task, not one per GPU
    (row,) = poll_sacct(slurm_cluster, run_uuid(proc.log), n=1, final={"COMPLETED"})
    assert "gres/gpu=2" in row["AllocTRES"].split(","), row
