"""The dry-run's step counts equal what the trainers really do (max_steps -1, one epoch)."""

from __future__ import annotations

import json
from pathlib import Path

from rlcausality.io import read_jsonl, write_jsonl
from rlcausality.settings.config import load_settings
from rlcausality.training import budget, grpo, sft


def _rows(path: Path) -> list[dict]:
    return list(read_jsonl(path))


def test_sft_steps_equal_the_trainers(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    train = tmp_path / "train.jsonl"
    write_jsonl(train, _rows(formatted["train.sft"])[:100])
    settings = make_settings(
        tiny_model, "sft", max_steps=-1, per_device_train_batch_size=8,
        gradient_accumulation_steps=3, save_steps=100, merge=False,
    )  # fmt: skip
    expected = budget.sft_steps(load_settings(settings).sft, 100, processes=1)
    assert expected == 5  # ceil(ceil(100 / 8) / 3)
    out = tmp_path / "sft"
    sft.main(["--settings", json.dumps(settings), "--train", str(train),
              "--output-dir", str(out), "--manifest", str(out / "manifest.json")])  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["global_step"] == manifest["max_steps"] == expected


def test_grpo_steps_equal_the_trainers(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    train = tmp_path / "train.jsonl"
    write_jsonl(train, _rows(formatted["train.grpo"])[:11])
    settings = make_settings(
        tiny_model, "grpo", init="base", max_steps=-1, per_device_train_batch_size=4,
        gradient_accumulation_steps=2, max_completion_length=8, save_steps=100,
    )  # fmt: skip
    expected = budget.grpo_steps(load_settings(settings).grpo, 11, processes=1)
    assert expected == 5  # 4 x 2 completions / 4 generations = 2 prompts a step; 11 // 2
    out = tmp_path / "grpo"
    grpo.main(["--settings", json.dumps(settings), "--train", str(train),
               "--output-dir", str(out), "--manifest", str(out / "manifest.json")])  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["global_step"] == manifest["max_steps"] == expected
    assert manifest["generation_batch_size"] == 8
    assert manifest["generator"] == "transformers"
