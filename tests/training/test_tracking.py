"""How a training run is watched (rlcausality.training.tracking), on real training steps of the tiny
model: TensorBoard curves read back with TensorBoard's own reader, a resumed run's curve
continuing, GRPO's logged completions kept with the stage, and a backend that cannot run."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlcausality.reporting.examples import completion_blocks, load_completions
from rlcausality.training import grpo, sft, tracking


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a TensorBoard run folder as (step, value), as TensorBoard reads them
    (orphaned steps of a crashed session purged)."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def _main(module: Any, settings: dict, train: Path, out: Path, *extra: str) -> dict:
    argv = ["--settings", json.dumps(settings), "--train", str(train)]
    argv += ["--output-dir", str(out), "--manifest", str(out / "manifest.json"), *extra]
    module.main(argv)
    return json.loads((out / "manifest.json").read_text())


def test_grpo_writes_tensorboard_curves_and_keeps_its_completions(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv(tracking.ENV_VAR, raising=False)  # the schema's defaults
    settings = make_settings(tiny_model, "grpo", init="base")
    manifest = _main(grpo, settings, formatted["train.grpo"], tmp_path)

    curves = scalars(tmp_path / "tensorboard")
    for tag in ("train/reward", "train/loss", "train/rewards/correctness/mean"):
        assert [step for step, _ in curves[tag]] == [1, 2, 3, 4], (tag, curves.get(tag))
    history = json.loads(Path(manifest["log_history_path"]).read_text())
    rewards = [entry["reward"] for entry in history if "reward" in entry]
    assert [value for _, value in curves["train/reward"]] == pytest.approx(rewards)

    facts = json.loads(Path(manifest["training_run_path"]).read_text())
    kept = Path(facts["completions_path"])
    assert kept == tmp_path / "completions"
    files = sorted(p.name for p in kept.glob("*.parquet"))
    assert files == [f"completions_{step:05d}.parquet" for step in (1, 2, 3, 4)]
    table = pd.read_parquet(kept / files[-1])
    # one generation batch: 4 prompts' rows x 4 generations, each with every reward
    assert len(table) == 4
    assert {"step", "prompt", "completion", "correctness", "format", "advantage"} <= set(table)
    assert set(table["step"]) == {4}

    # The GRPO report's section: per step range, highest then lowest advantage, every reward.
    frame = load_completions(kept)
    assert len(frame) == 16
    [_, _, section] = completion_blocks(frame)
    assert section.headers == [
        "steps", "step", "advantage", "correctness", "format", "hypothesis", "completion",
    ]  # fmt: skip
    ranges = {row[0] for row in section.rows}
    assert ranges == {"1–1", "2–3", "4–4"}
    for label in ranges:
        rows = [(row, kind) for row, kind in zip(section.rows, section.row_classes, strict=True)
                if row[0] == label]  # fmt: skip
        high = [row[2] for row, kind in rows if kind == "good"]
        low = [row[2] for row, kind in rows if kind == "bad"]
        assert len(high) == len(low) == 2 and min(high) >= max(low)
    assert all(row[5] for row in section.rows)  # the hypothesis, read from the logged prompt


def test_a_resumed_run_continues_its_curve(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    """A session killed after step 6 whose newest checkpoint is step 4 trains 5 and 6 again:
    TensorBoard shows steps 1-6 once each, 5 and 6 from the resumed session."""
    monkeypatch.setenv(tracking.ENV_VAR, json.dumps({"report_to": "tensorboard"}))
    settings = make_settings(
        tiny_model, "sft", max_steps=6, save_steps=2, logging_steps=1, merge=False
    )
    _main(sft, settings, formatted["train.sft"], tmp_path)
    first = scalars(tmp_path / "tensorboard")["train/loss"]
    assert [step for step, _ in first] == [1, 2, 3, 4, 5, 6]
    # What a kill after step 6, before its checkpoint was complete, leaves behind.
    shutil.rmtree(tmp_path / "checkpoints" / "checkpoint-6")
    (tmp_path / "manifest.json").unlink()

    manifest = _main(sft, settings, formatted["train.sft"], tmp_path)
    facts = json.loads(Path(manifest["training_run_path"]).read_text())
    assert facts["resumed_from"].endswith("checkpoint-4")
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    resumed = scalars(tmp_path / "tensorboard")["train/loss"]
    assert [step for step, _ in resumed] == [1, 2, 3, 4, 5, 6]
    assert resumed[:4] == first[:4]
    history = json.loads(Path(manifest["log_history_path"]).read_text())
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert [value for _, value in resumed] == pytest.approx(losses)


def test_stale_checkpoints_take_their_curves_along(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(tracking.ENV_VAR, json.dumps({"report_to": "tensorboard"}))
    settings = make_settings(tiny_model, "sft", max_steps=2, save_steps=2, merge=False)
    _main(sft, settings, formatted["train.sft"], tmp_path)
    changed = make_settings(
        tiny_model, "sft", max_steps=3, save_steps=2, logging_steps=1, merge=False
    )
    _main(sft, changed, formatted["train.sft"], tmp_path)
    assert [s for s, _ in scalars(tmp_path / "tensorboard")["train/loss"]] == [1, 2, 3]
    old = scalars(tmp_path / "checkpoints.stale-1" / "tensorboard")
    assert [s for s, _ in old["train/train_loss"]] == [2]


def test_report_to_none_writes_no_curves_and_no_completions(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    off = {"report_to": "none", "log_completions": False}
    monkeypatch.setenv(tracking.ENV_VAR, json.dumps(off))
    settings = make_settings(tiny_model, "grpo", init="base", max_steps=1)
    manifest = _main(grpo, settings, formatted["train.grpo"], tmp_path)
    facts = json.loads(Path(manifest["training_run_path"]).read_text())
    assert facts["completions_path"] is None and "completions_path" not in manifest
    assert not (tmp_path / "tensorboard").exists()
    assert not (tmp_path / "checkpoints" / "completions").exists()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_without_the_package_stops_with_the_reason(monkeypatch) -> None:
    monkeypatch.setenv(tracking.ENV_VAR, json.dumps({"report_to": "wandb"}))
    watched = tracking.from_env()
    assert watched.report_to == "wandb" and watched.log_completions is True
    with pytest.raises(RuntimeError, match=r"report_to: wandb, but the wandb package"):
        tracking.require(watched)


def test_a_bad_tracking_block_names_the_key(monkeypatch) -> None:
    monkeypatch.setenv(tracking.ENV_VAR, json.dumps({"report_to": "tensorboard", "every": 3}))
    with pytest.raises(tracking.ConfigError, match=r"tracking\.every: unknown key"):
        tracking.from_env()
