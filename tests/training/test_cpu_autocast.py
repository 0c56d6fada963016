"""``model.dtype: bfloat16`` on a CPU: fp32 weights trained under bf16 autocast (the matmuls in
bf16), where it used to fall back to plain fp32 without a word."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from rlcausality.training import grpo, sft


def _train(module: Any, settings: dict, train: Path, out: Path) -> dict[str, Any]:
    module.main(
        ["--settings", json.dumps(settings), "--train", str(train), "--output-dir", str(out),
         "--manifest", str(out / "manifest.json"), "--threads", "1"]
    )  # fmt: skip
    return json.loads((out / "manifest.json").read_text())


def _losses(manifest: dict[str, Any], key: str = "loss") -> list[float]:
    history = json.loads(Path(manifest["log_history_path"]).read_text())
    return [entry[key] for entry in history if key in entry]


def test_sft_in_bf16_autocast_keeps_fp32_weights(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    runs = {}
    for dtype in ("auto", "bfloat16"):
        model = {**tiny_model, "dtype": dtype}
        settings = make_settings(model, "sft", max_steps=3, save_steps=100, logging_steps=1)
        runs[dtype] = _train(sft, settings, formatted["train.sft"], tmp_path / dtype)
    assert runs["auto"]["precision"] == "fp32"
    assert runs["bfloat16"]["precision"] == "bf16-autocast"
    # the same seed, data and weights: only the matmuls' precision differs, so the first loss
    # differs a little (the forward ran in bf16), and not by much
    fp32, bf16 = _losses(runs["auto"]), _losses(runs["bfloat16"])
    assert len(fp32) == len(bf16) == 3 and fp32[0] != bf16[0]
    assert abs(fp32[0] - bf16[0]) < 0.05 * abs(fp32[0])
    adapter = load_file(Path(runs["bfloat16"]["adapter_path"]) / "adapter_model.safetensors")
    assert {tensor.dtype for tensor in adapter.values()} == {torch.float32}
    merged = load_file(Path(runs["bfloat16"]["merged_path"]) / "model.safetensors")
    assert {tensor.dtype for tensor in merged.values()} == {torch.float32}


def test_grpo_in_bf16_autocast_samples_scores_and_updates(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    model = {**tiny_model, "dtype": "bfloat16"}
    settings = make_settings(model, "grpo", init="base", max_steps=2, save_steps=100)
    run = _train(grpo, settings, formatted["train.grpo"], tmp_path / "grpo")
    assert run["precision"] == "bf16-autocast" and run["global_step"] == 2
    assert all(torch.isfinite(torch.tensor(value)) for value in _losses(run))
    adapter = load_file(Path(run["adapter_path"]) / "adapter_model.safetensors")
    assert {tensor.dtype for tensor in adapter.values()} == {torch.float32}
