"""vLLM is used exactly when configured: never a silent fallback, and a bounded model length."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlcausality import generation, grpo
from rlcausality.config import deep_merge, load_settings, recipe_defaults
from rlcausality.models.loading import choose_precision
from rlcausality.settings import Settings

MODEL = {"name": "m", "source": "path", "family": "qwen2", "path": "m", "stages": ["base", "grpo"]}


def _grpo_settings(use_vllm: bool) -> Settings:
    stage = deep_merge(recipe_defaults()["grpo"], {"use_vllm": use_vllm})
    return load_settings({"model": {**MODEL, "quantization": "none"}, "grpo": stage})


def test_grpo_vllm_asked_for_without_a_gpu_fails_loudly() -> None:
    assert grpo.use_vllm(_grpo_settings(False)) is False
    with pytest.raises(RuntimeError, match=r"grpo\.use_vllm: true, but no GPU"):
        grpo.use_vllm(_grpo_settings(True))


def test_evaluation_vllm_asked_for_without_a_gpu_fails_loudly() -> None:
    assert generation.vllm_usable(generation.GenerationSettings(max_new_tokens=4)) is False
    with pytest.raises(RuntimeError, match=r"evaluate\.use_vllm: true, but no GPU"):
        generation.vllm_usable(generation.GenerationSettings(max_new_tokens=4, use_vllm=True))


def test_vllm_rollouts_get_the_prompt_limit_plus_completion_as_model_length(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Where vLLM can run (a GPU and the package), TRL must pass vLLM a max_model_len; without
    # one vLLM sizes its KV cache for the model's whole context (Phi-3.5: 131k tokens).
    monkeypatch.setattr(grpo, "use_vllm", lambda settings: True)
    args = grpo.grpo_config(_grpo_settings(True), str(tmp_path), choose_precision(), 1024)
    assert args.use_vllm is True and args.vllm_mode == "colocate"
    assert args.vllm_max_model_length == 1024 + 2048
