"""A training job killed with SIGKILL mid-run resumes from its newest complete checkpoint.

Runs the real workflow: Snakemake starts the job, the test kills Snakemake and the job (every
process, SIGKILL) once a checkpoint is complete, checks that no declared output exists, then
reruns Snakemake and checks that training continued to the configured number of steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_tree import kill_tree

from .helpers import SNAKEMAKE, complete_checkpoints, copy_workflow, run_snakemake

OVERRIDES = """
models:
  tiny:
    sft: {max_steps: 30, save_steps: 5, logging_steps: 1}
    grpo: {max_steps: 20, save_steps: 5, logging_steps: 1}
"""
CONFIG_ARGS = ("--configfile", "config.yaml", "profiles/local/embedded.yaml", "resume.yaml")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("resume"))
    (workdir / "resume.yaml").write_text(OVERRIDES)
    return workdir


def _start(workdir: Path, target: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.Popen(
        [SNAKEMAKE, target, "--profile", "profiles/local", "--cores", "1", *CONFIG_ARGS],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_after_first_checkpoint(workdir: Path, stage: str, max_steps: int) -> int:
    manifest = workdir / f"results/models/tiny/{stage}/manifest.json"
    checkpoints = workdir / f"results/models/tiny/{stage}/checkpoints"
    proc = _start(workdir, str(manifest.relative_to(workdir)))
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if complete_checkpoints(checkpoints):
                break
            assert proc.poll() is None, "the job ended before a checkpoint was written"
            time.sleep(0.05)
        else:
            pytest.fail(f"no {stage} checkpoint within 600 s")
    finally:
        kill_tree(proc)
    done = complete_checkpoints(checkpoints)
    assert done and max(done) < max_steps, f"killed too late: {done}"
    # Nothing that looks finished: no manifest, no adapter.
    assert not manifest.exists()
    assert not (manifest.parent / "adapter").exists()
    return max(done)


@pytest.mark.parametrize(("stage", "max_steps"), [("sft", 30), ("grpo", 20)])
def test_killed_training_resumes(workdir: Path, stage: str, max_steps: int) -> None:
    if stage == "grpo":  # GRPO starts from the SFT adapter: finish SFT first
        run_snakemake(
            workdir,
            "--profile",
            "profiles/local",
            *CONFIG_ARGS,
            "--",
            "results/models/tiny/sft/manifest.json",
        )
    killed_at = _kill_after_first_checkpoint(workdir, stage, max_steps)
    run_snakemake(workdir, "--unlock", *CONFIG_ARGS)
    run_snakemake(
        workdir,
        "--profile",
        "profiles/local",
        *CONFIG_ARGS,
        "--",
        f"results/models/tiny/{stage}/manifest.json",
    )
    manifest = json.loads((workdir / f"results/models/tiny/{stage}/manifest.json").read_text())
    assert manifest["global_step"] == max_steps
    resumed_from = json.loads((workdir / manifest["training_run_path"]).read_text())["resumed_from"]
    assert resumed_from is not None
    resumed_step = int(Path(resumed_from).name.split("-")[1])
    assert resumed_step >= killed_at
    history = json.loads((workdir / f"results/models/tiny/{stage}/log_history.json").read_text())
    steps = [entry["step"] for entry in history if "loss" in entry]
    # one loss entry per step, 1..max_steps, none repeated or skipped across the restart
    assert steps == list(range(1, max_steps + 1)), steps
    log = (workdir / f"results/logs/{stage}/tiny.log").read_text()
    assert f"resuming from {resumed_from}" in log
