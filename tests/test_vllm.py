"""vLLM is used exactly when configured: never a silent fallback, and a bounded model length."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rlcausality import launch
from rlcausality.evaluation import generation, vllm_generation
from rlcausality.models.loading import choose_precision
from rlcausality.plan.jobs import plan_jobs
from rlcausality.plan.stages import TRL_VLLM_FRACTION
from rlcausality.settings.blocks import Settings
from rlcausality.settings.config import (
    deep_merge,
    load_settings,
    read_config_files,
    recipe_defaults,
)
from rlcausality.settings.validation import validate_config
from rlcausality.training import grpo

REPO = Path(__file__).resolve().parents[1]
MODEL = {"name": "m", "source": "path", "family": "qwen2", "path": "m", "stages": ["base", "grpo"]}


def _grpo_settings(use_vllm: bool) -> Settings:
    stage = deep_merge(recipe_defaults()["grpo"], {"use_vllm": use_vllm})
    return load_settings({"model": {**MODEL, "quantization": "none"}, "grpo": stage})


def test_grpo_vllm_asked_for_without_a_gpu_fails_loudly() -> None:
    assert grpo.use_vllm(_grpo_settings(False)) is False
    with pytest.raises(RuntimeError, match=r"grpo\.use_vllm: true, but no GPU"):
        grpo.use_vllm(_grpo_settings(True))


def test_evaluation_vllm_asked_for_without_a_gpu_fails_loudly() -> None:
    assert vllm_generation.vllm_usable(generation.GenerationSettings(max_new_tokens=4)) is False
    with pytest.raises(RuntimeError, match=r"evaluate\.use_vllm: true, but no GPU"):
        vllm_generation.vllm_usable(generation.GenerationSettings(max_new_tokens=4, use_vllm=True))


def test_vllm_rollouts_get_the_prompt_limit_plus_completion_as_model_length(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Where vLLM can run (a GPU and the package), TRL must pass vLLM a max_model_len; without
    # one vLLM sizes its KV cache for the model's whole context (Phi-3.5: 131k tokens).
    monkeypatch.setattr(grpo, "use_vllm", lambda settings: True)
    args = grpo.grpo_config(_grpo_settings(True), str(tmp_path), choose_precision(), 1024)
    assert args.use_vllm is True and args.vllm_mode == "colocate"
    assert args.vllm_max_model_length == 1024 + 2048


def test_vllm_rollouts_take_the_configured_gpu_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(grpo, "use_vllm", lambda settings: True)
    stage = deep_merge(
        recipe_defaults()["grpo"], {"use_vllm": True, "vllm_gpu_memory_utilization": 0.45}
    )
    settings = load_settings({"model": {**MODEL, "quantization": "none"}, "grpo": stage})
    args = grpo.grpo_config(settings, str(tmp_path), choose_precision(), 300)
    assert args.vllm_gpu_memory_utilization == 0.45
    assert args.vllm_max_model_length == 300 + 2048
    # left out: TRL's own default, which the run plan assumes too
    default = grpo.grpo_config(_grpo_settings(True), str(tmp_path), choose_precision(), 300)
    assert default.vllm_gpu_memory_utilization == TRL_VLLM_FRACTION


def test_vllm_asked_for_on_a_gpu_without_the_package_names_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    monkeypatch.setattr(launch, "accelerator_present", lambda: True)  # as on a GPU node
    with pytest.raises(RuntimeError, match=r"vllm package is not installed.*rlcausality-vllm"):
        grpo.use_vllm(_grpo_settings(True))


def test_the_plan_prices_vllm_at_the_configured_share() -> None:
    config = read_config_files([str(REPO / "config.yaml")])
    config["run"] = ["qwen2.5-1.5b"]
    config["models"]["qwen2.5-1.5b"]["grpo"].update(
        {"use_vllm": True, "vllm_gpu_memory_utilization": 0.5}
    )
    validate_config(config)
    [job] = [j for j in plan_jobs(config) if j.rule == "grpo"]
    assert job.mem_breakdown_gb["vllm"] == pytest.approx(0.5 * 80)  # GiB of an A100-80GB
