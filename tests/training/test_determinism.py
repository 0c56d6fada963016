"""One seed, one machine: a rerun trains the same weights (issue: runs of one seed differed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parents[2] / "workflow_scripts"


def _train(settings: dict, train: Path, out: Path, threads: int, hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "PYTHONHASHSEED": hash_seed,
           "OMP_NUM_THREADS": str(threads)}  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "rlcausality.training.sft", "--settings", json.dumps(settings),
         "--train", str(train), "--output-dir", str(out), "--manifest", str(out / "manifest.json"),
         "--threads", str(threads)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize(("threads", "dtype"), [(1, "auto"), (2, "auto"), (2, "bfloat16")])
def test_a_rerun_of_one_seed_trains_the_same_weights(
    tiny_model: dict,
    make_settings,
    formatted: dict[str, Path],
    tmp_path: Path,
    threads: int,
    dtype: str,
) -> None:
    """``bfloat16``: on the CPU, bf16 autocast over fp32 weights (models.loading)."""
    model = {**tiny_model, "dtype": dtype}
    settings = make_settings(
        model, "sft", max_steps=6, save_steps=100, logging_steps=1, merge=False
    )
    first = _train(settings, formatted["train.sft"], tmp_path / "a", threads, "1")
    second = _train(settings, formatted["train.sft"], tmp_path / "b", threads, "2")
    losses = [
        [e["loss"] for e in json.loads(Path(m["log_history_path"]).read_text()) if "loss" in e]
        for m in (first, second)
    ]
    assert losses[0] == losses[1]
    assert first["adapter_sha256"] == second["adapter_sha256"]


def test_a_rerun_of_one_seed_runs_the_same_grpo(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    """GRPO from the base: the same fresh adapter, the same sampled completions, the same
    update, in two processes of one seed."""
    settings = make_settings(tiny_model, "grpo", init="base", max_steps=2, save_steps=100)
    runs = []
    for name, hash_seed in (("a", "1"), ("b", "2")):
        out = tmp_path / name
        env = {**os.environ, "PYTHONPATH": str(SOURCES), "PYTHONHASHSEED": hash_seed,
               "OMP_NUM_THREADS": "1"}  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "rlcausality.training.grpo", "--settings", json.dumps(settings),
             "--train", str(formatted["train.grpo"]), "--output-dir", str(out),
             "--manifest", str(out / "manifest.json"), "--threads", "1"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        runs.append(json.loads((out / "manifest.json").read_text()))
    histories = [json.loads(Path(m["log_history_path"]).read_text()) for m in runs]
    assert [h.get("reward") for h in histories[0]] == [h.get("reward") for h in histories[1]]
    assert runs[0]["adapter_sha256"] == runs[1]["adapter_sha256"]
