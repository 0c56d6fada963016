"""Two ranks under torchrun on the CPU, started by the workflow's own rules.

The embedded model asks for two "GPUs" for SFT and GRPO, so the rules launch
``torchrun --standalone --nproc_per_node=2 -m rlcausality.training.{sft,grpo}``, exactly as on a
cluster; without CUDA the ranks train as a gloo process group. The DeepSpeed tests add the
test-only device detection in ``deepspeed_cpu/`` (DeepSpeed's CPU accelerator, gloo), which
changes what the processes believe about their device and nothing in the code under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from process_tree import kill_tree

from rlcausality.settings import config as rlconfig
from rlcausality.settings import validation as rlvalidation

from .helpers import SNAKEMAKE, complete_checkpoints, copy_workflow, run_snakemake

HERE = Path(__file__).parent
TWO_RANKS = """
models:
  tiny:
    sft: {max_steps: %(sft_steps)d, save_steps: 3, logging_steps: 1, progress_interval_s: 1,
          deepspeed: %(sft_ds)s}
    grpo: {max_steps: 3, save_steps: 3, logging_steps: 1, progress_interval_s: 1,
           deepspeed: %(grpo_ds)s}
    resources:
      sft: {gpus: 2}
      grpo: {gpus: 2}
"""
DEEPSPEED_ENV = {
    "RLCAUSALITY_TEST_DEEPSPEED_CPU": "1",
    "PYTHONPATH": str(HERE / "deepspeed_cpu"),
}


def _workdir(root: Path, sft_steps: int = 6, sft_ds: str = "null", grpo_ds: str = "null") -> Path:
    workdir = copy_workflow(root)
    overrides = TWO_RANKS % {"sft_steps": sft_steps, "sft_ds": sft_ds, "grpo_ds": grpo_ds}
    (workdir / "ranks.yaml").write_text(overrides)
    return workdir


def _config_args() -> tuple[str, ...]:
    return ("--configfile", "config.yaml", "profiles/local/embedded.yaml", "ranks.yaml")


def _build(workdir: Path, target: str, env: dict[str, str] | None = None) -> str:
    proc = run_snakemake(
        workdir, target, "--profile", "profiles/local", *_config_args(), extra_env=env
    )
    return proc.stdout + proc.stderr


def _log_tail(workdir: Path, stage: str = "sft", chars: int = 3000) -> str:
    log = workdir / f"results/logs/{stage}/tiny.log"
    return log.read_text(errors="replace")[-chars:] if log.is_file() else f"({log}: none)"


def _manifest(workdir: Path, stage: str) -> dict:
    return json.loads((workdir / f"results/models/tiny/{stage}/manifest.json").read_text())


def test_sft_and_grpo_train_as_two_ranks(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    output = _build(workdir, "results/models/tiny/grpo/manifest.json")
    for stage in ("sft", "grpo"):
        assert f"torchrun --standalone --nproc_per_node=2 -m rlcausality.training.{stage}" in output
        manifest = _manifest(workdir, stage)
        assert manifest["world_size"] == 2
        assert manifest["global_step"] == manifest["max_steps"]
        assert manifest["deepspeed"] is None
        # Outputs are written once, by rank 0: one adapter, no staging left behind.
        out = workdir / f"results/models/tiny/{stage}"
        assert (out / "adapter" / "adapter_config.json").is_file()
        assert not list(out.glob(".*staging*"))
        log = (workdir / f"results/logs/{stage}/tiny.log").read_text()
        steps = manifest["max_steps"]
        final = [line for line in log.splitlines() if f"progress {stage}: step {steps}/" in line]
        assert final, log[-2000:]
        # rank 1 prints nothing: the final progress line appears exactly as often as rank 0
        # prints it (once at the last step's update, once at close)
        assert len(final) <= 2, final
    # GRPO's generation batch spans both ranks: 4 completions a rank x 2 ranks x 1 accumulation
    assert _manifest(workdir, "grpo")["generation_batch_size"] == 8


def test_two_ranks_killed_with_sigkill_resume(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path, sft_steps=12)
    target = "results/models/tiny/sft/manifest.json"
    run_snakemake(workdir, "results/data/tiny/sft/train.jsonl", "--profile", "profiles/local",
                  *_config_args())  # fmt: skip
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen(
        [SNAKEMAKE, target, "--profile", "profiles/local", "--cores", "2", *_config_args()],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    checkpoints = workdir / "results/models/tiny/sft/checkpoints"
    deadline = time.monotonic() + 600
    try:
        while not complete_checkpoints(checkpoints):
            assert proc.poll() is None, (
                "the job ended before a checkpoint was written; its log ends:\n"
                + _log_tail(workdir)
            )
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            time.sleep(0.05)
    finally:
        kill_tree(proc)  # Snakemake, torchrun and both ranks
    killed_at = max(complete_checkpoints(checkpoints))
    assert killed_at < 12
    assert not (workdir / target).exists()
    run_snakemake(workdir, "--unlock", *_config_args())
    _build(workdir, target)
    manifest = _manifest(workdir, "sft")
    assert manifest["world_size"] == 2 and manifest["global_step"] == 12
    resumed_from = json.loads((workdir / manifest["training_run_path"]).read_text())["resumed_from"]
    assert resumed_from is not None
    assert int(Path(resumed_from).name.split("-")[1]) >= killed_at
    history = json.loads((workdir / "results/models/tiny/sft/log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == list(range(1, 13))


@pytest.fixture(scope="module")
def deepspeed_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("deepspeed")
    return _workdir(tmp_path_factory.mktemp("ds"), sft_steps=4, sft_ds="zero3", grpo_ds="zero3")


def test_deepspeed_zero3_sft_with_merge_and_zero3_grpo(deepspeed_workdir: Path) -> None:
    workdir = deepspeed_workdir
    output = _build(workdir, "results/models/tiny/grpo/manifest.json", DEEPSPEED_ENV)
    assert "torchrun --standalone --nproc_per_node=2 -m rlcausality.training.sft" in output
    sft = _manifest(workdir, "sft")
    assert sft["deepspeed"] == "zero3" and sft["world_size"] == 2
    # the merge reloads the base unsharded (the HF DeepSpeed config unset first)
    assert (Path(workdir / sft["merged_path"]) / "config.json").is_file()
    grpo = _manifest(workdir, "grpo")
    assert grpo["deepspeed"] == "zero3" and grpo["world_size"] == 2
    assert grpo["global_step"] == 3 and grpo["generation_batch_size"] == 8


def test_deepspeed_zero2_sft(deepspeed_workdir: Path) -> None:
    workdir = deepspeed_workdir
    ranks = (workdir / "ranks.yaml").read_text()
    (workdir / "ranks.yaml").write_text(ranks.replace("deepspeed: zero3}", "deepspeed: zero2}", 1))
    (workdir / "results/models/tiny/sft/manifest.json").unlink(missing_ok=True)
    for checkpoint in (workdir / "results/models/tiny/sft/checkpoints").glob("checkpoint-*"):
        subprocess.run(["rm", "-rf", str(checkpoint)], check=True)  # ZeRO-3 states
    _build(workdir, "results/models/tiny/sft/manifest.json", DEEPSPEED_ENV)
    sft = _manifest(workdir, "sft")
    assert sft["deepspeed"] == "zero2" and sft["world_size"] == 2
    assert sft["global_step"] == 4


def test_deepspeed_without_a_launcher_names_the_fix(
    deepspeed_workdir: Path, tmp_path: Path
) -> None:
    """One process started as `python -m` with DeepSpeed on: our message, not mpi4py's."""
    workdir = deepspeed_workdir
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    for extra in ("profiles/local/embedded.yaml", "ranks.yaml"):
        config = rlconfig.deep_merge(config, yaml.safe_load((workdir / extra).read_text()))
    rlvalidation.validate_config(config)
    settings = rlconfig.stage_settings(config, "tiny", "sft")
    settings["sft"]["deepspeed"] = "zero2"
    env = dict(os.environ, **DEEPSPEED_ENV)
    env["PYTHONPATH"] += os.pathsep + str(workdir / "workflow_scripts")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "rlcausality.training.sft", "--settings", json.dumps(settings),
         "--train", "results/data/tiny/sft/train.jsonl", "--output-dir", str(tmp_path),
         "--manifest", str(tmp_path / "manifest.json")],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "needs a distributed launcher" in proc.stderr, proc.stderr[-3000:]
    assert "mpi4py" not in proc.stderr
    assert not (tmp_path / "manifest.json").exists()
