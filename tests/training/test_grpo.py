"""GRPO on the tiny model: from the base and from the SFT adapter; R1 (think-opened) settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlcausality.models.families import LLAMA_STYLE_TARGETS
from rlcausality.training import grpo


def run_grpo(settings: dict[str, Any], train: Path, out: Path, *extra: str) -> dict[str, Any]:
    argv = ["--settings", json.dumps(settings), "--train", str(train)]
    argv += ["--output-dir", str(out), "--manifest", str(out / "manifest.json"), *extra]
    grpo.main(argv)
    return json.loads((out / "manifest.json").read_text())


def reward_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    history = json.loads(Path(manifest["log_history_path"]).read_text())
    return [entry for entry in history if "reward" in entry]


def test_grpo_from_base(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    settings = make_settings(tiny_model, "grpo", init="base")
    manifest = run_grpo(settings, formatted["train.grpo"], tmp_path)
    assert manifest["stage"] == "grpo" and manifest["init"] == "base"
    assert manifest["global_step"] == manifest["max_steps"] == 4
    assert manifest["adapted_modules"] == sorted(LLAMA_STYLE_TARGETS)
    assert manifest["merged_path"] is None
    entries = reward_entries(manifest)
    assert len(entries) == 4
    for entry in entries:
        assert "rewards/correctness/mean" in entry and "rewards/format/mean" in entry
    assert {p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")} == {
        "checkpoint-2",
        "checkpoint-4",
    }


def test_grpo_trace_reward_reads_each_rows_oracle_trace(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    """The trace reward gets each prompt's oracle trace and size from the rows (GRPO_COLUMNS),
    the consistency reward each prompt's item, and their curves are logged apart
    (rewards/trace/mean, rewards/consistency/mean)."""
    rewards = ["correctness", "trace", "consistency"]
    settings = make_settings(
        tiny_model,
        "grpo",
        init="base",
        max_steps=1,
        rewards=rewards,
        reward_weights=[1.0, 0.5, 1.0],
    )
    manifest = run_grpo(settings, formatted["train.grpo"], tmp_path)
    assert manifest["rewards"] == rewards
    (entry,) = reward_entries(manifest)
    for name in ("trace", "consistency"):  # an untrained model states no lists
        assert 0.0 <= entry[f"rewards/{name}/mean"] <= 1.0


def test_grpo_continues_the_sft_adapter(
    tiny_model: dict, make_settings, formatted: dict[str, Path], sft_run: dict, tmp_path: Path
) -> None:
    settings = make_settings(tiny_model, "grpo", init="sft", max_steps=2)
    manifest = run_grpo(
        settings,
        formatted["train.grpo"],
        tmp_path,
        "--init-manifest",
        str(Path(sft_run["adapter_path"]).parent / "manifest.json"),
    )
    assert manifest["init"] == "sft"
    assert manifest["lora_targets"] == sorted(sft_run["lora_targets"])
    assert len(reward_entries(manifest)) == 2
    config = json.loads((Path(manifest["adapter_path"]) / "adapter_config.json").read_text())
    assert config["r"] == sft_run["settings"]["sft"]["lora"]["r"]


def test_grpo_init_sft_needs_the_sft_manifest(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    settings = make_settings(tiny_model, "grpo", init="sft")
    with pytest.raises(ValueError, match="--init-manifest"):
        run_grpo(settings, formatted["train.grpo"], tmp_path)


def test_grpo_drops_long_prompts(
    tiny_model: dict, typed_model, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    from rlcausality.data.chat_format import token_lengths
    from rlcausality.io import read_jsonl
    from rlcausality.models.loading import load_tokenizer

    rows = list(read_jsonl(formatted["train.grpo"]))
    lengths = sorted(token_lengths(load_tokenizer(typed_model(tiny_model)), rows, "grpo"))
    limit = lengths[len(lengths) // 2]
    settings = make_settings(tiny_model, "grpo", init="base", max_steps=1)
    manifest = run_grpo(
        settings, formatted["train.grpo"], tmp_path, "--max-prompt-length", str(limit)
    )
    train = manifest["data"]["train"]
    assert train["max_prompt_length"] == limit
    assert train["dropped_too_long"] == sum(n > limit for n in lengths) > 0
    assert train["rows"] == len(rows) - train["dropped_too_long"]


def test_r1_family_rewards_completions_that_start_inside_think(
    model_factory, make_settings, tiny_base: Path, formatted: dict[str, Path], tmp_path: Path
) -> None:
    # Like deepseek-r1-7b in config.yaml: 4-bit base, GRPO straight from the base.
    model = model_factory(
        tiny_base, family="qwen2-r1", system_prompt="ignored", quantization="4bit"
    )
    settings = make_settings(model, "grpo", init="base", max_steps=1, temperature=0.6)
    manifest = run_grpo(settings, formatted["train.grpo"], tmp_path)
    assert manifest["think_opened"] is True
    assert manifest["family"] == "qwen2-r1"
    assert manifest["quantization"] == "4bit" and manifest["merged_path"] is None

    from rlcausality.models.families import get_family
    from rlcausality.training.rewards import get_reward_functions

    family = get_family("qwen2-r1")
    correctness, fmt = get_reward_functions(manifest["rewards"], family.opens_think)
    opened = [{"role": "assistant", "content": "A and B correlate.\n</think>\nTherefore: Yes"}]
    closed = [{"role": "assistant", "content": "<think>A and B.</think>\nTherefore: No"}]
    loose = [{"role": "assistant", "content": "Yes"}]
    completions = [opened, closed, loose]
    assert fmt([None] * 3, completions) == [1.0, 1.0, 0.0]
    # a bare "Yes" has no closed think block: no answer in the reasoning style
    assert correctness([None] * 3, completions, label=[1, 1, 1]) == [1.0, 0.0, 0.0]
    # Without think_opened (Qwen2.5 / Phi-3) the completion must open <think> itself.
    _, strict = get_reward_functions(["correctness", "format"], False)
    assert strict([None] * 3, completions) == [0.0, 1.0, 0.0]


def completion_length(completions: list, **kwargs: Any) -> list[float]:
    """A reward that differs between the completions of a group (the tiny model's are random)."""
    return [float(len(str(completion))) for completion in completions]


def test_accumulated_micro_batches_train_what_one_batch_trains(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    """A generation batch of 8 (2 prompts x 4 completions) trained as one batch of 8, or as two
    micro-batches of 4 with gradient accumulation: the same rollouts, rewards and losses (DAPO
    divides by the generation batch's completion tokens either way) and the same adapter, to
    float rounding. The demo takes two of 4: the loss's forward keeps half the activations for
    the backward (docs/demo.md, "GRPO step on the CPU")."""
    from safetensors.torch import load_file

    monkeypatch.setattr(grpo, "get_reward_functions", lambda *a: [completion_length])
    runs = {}
    for batch, accumulation in ((8, 1), (4, 2)):
        settings = make_settings(
            tiny_model, "grpo", init="base", max_steps=2, save_steps=2,
            per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
            rewards=["correctness"], reward_weights=[1.0],
        )  # fmt: skip
        out = tmp_path / f"batch{batch}"
        manifest = run_grpo(settings, formatted["train.grpo"], out)
        assert manifest["generation_batch_size"] == 8
        weights = load_file(str(Path(manifest["adapter_path"]) / "adapter_model.safetensors"))
        runs[batch] = (reward_entries(manifest), weights)
    (one, one_weights), (two, two_weights) = runs[8], runs[4]
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        assert a["reward_std"] > 0  # the groups carry an advantage, so the update is not zero
        for key in ("reward", "reward_std", "completions/mean_length"):
            assert a[key] == pytest.approx(b[key], rel=1e-6), key
        for key in ("loss", "grad_norm"):  # a loss scaled by the accumulation would differ
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    assert one_weights.keys() == two_weights.keys() and one_weights
    moved = 0
    for name, weight in one_weights.items():
        assert weight.shape == two_weights[name].shape
        assert (weight - two_weights[name]).abs().max() <= 1e-5, name
        moved += int(name.endswith("lora_B.weight") and bool(weight.abs().max() > 0))
    assert moved  # lora_B starts at zero: the steps trained it
