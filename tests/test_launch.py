"""How a job is launched and which precision it trains in: the decisions, case by case."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rlcausality import launch
from rlcausality.models.loading import choose_precision, inference_precision
from rlcausality.settings.blocks import Model
from rlcausality.settings.config import load_settings


@pytest.mark.parametrize(
    ("gpus", "deepspeed", "expected"),
    [
        (0, None, "python -m"),
        (0, "zero2", "python -m"),  # the CPU trains without DeepSpeed
        (1, None, "python -m"),
        (1, "zero2", "torchrun --standalone --nproc_per_node=1 -m"),  # DeepSpeed needs a launcher
        (1, "zero3", "torchrun --standalone --nproc_per_node=1 -m"),
        (2, None, "torchrun --standalone --nproc_per_node=2 -m"),
        (4, "zero3", "torchrun --standalone --nproc_per_node=4 -m"),
    ],
)
def test_launcher_rule(gpus: int, deepspeed: str | None, expected: str) -> None:
    assert launch.launcher(gpus, deepspeed) == expected


def test_a_quantised_base_runs_zero2() -> None:
    assert launch.deepspeed_stage("zero3", quantized=True) == "zero2"
    assert launch.deepspeed_stage("zero3", quantized=False) == "zero3"
    assert launch.describe(2, "zero2") == "torchrun, 2 GPUs, DeepSpeed zero2"
    assert launch.describe(1, None) == "python, 1 GPU"
    assert launch.describe(0, "zero2") == "python, CPU"


def test_deepspeed_outside_a_launcher_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in launch.LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --standalone --nproc_per_node=N"):
        launch.require_launcher("deepspeed: zero2")
    for name, value in zip(launch.LAUNCHER_ENV, ("0", "1", "0", "127.0.0.1"), strict=True):
        monkeypatch.setenv(name, value)
    launch.require_launcher("deepspeed: zero2")  # under torchrun: nothing to say


@pytest.mark.parametrize(
    ("capability", "requested", "dtype"),
    [
        (None, "auto", torch.float32),  # CPU
        ((7, 5), "auto", torch.float16),  # RTX 2080 Ti: bf16 only emulated
        ((7, 0), "auto", torch.float16),  # V100
        ((8, 0), "auto", torch.bfloat16),  # A100
        ((9, 0), "auto", torch.bfloat16),  # H100 / H200
        ((8, 6), "float16", torch.float16),
        ((9, 0), "float32", torch.float32),
    ],
)
def test_precision_follows_the_compute_capability(
    capability: tuple[int, int] | None, requested: str, dtype: torch.dtype
) -> None:
    precision = choose_precision(requested, capability)
    assert precision.dtype == dtype
    assert precision.bf16 == (dtype == torch.bfloat16)
    assert precision.fp16 == (dtype == torch.float16)


def test_bf16_asked_for_on_a_cpu_is_autocast_over_fp32_weights() -> None:
    precision = choose_precision("bfloat16", None)
    assert precision.dtype == torch.float32 and precision.bf16 and not precision.fp16
    assert precision.name == "bf16-autocast"
    # evaluation's `auto` loads the weights training kept: fp32
    model = dataclasses.replace(tiny_model_settings(), dtype="bfloat16")
    assert inference_precision(model, "auto", None) == choose_precision("float32", None)


def test_bf16_asked_for_on_a_pre_ampere_gpu_is_refused() -> None:
    with pytest.raises(ValueError, match=r"compute capability 7\.5"):
        choose_precision("bfloat16", (7, 5))


def tiny_model_settings() -> Model:
    model = {
        "name": "m", "source": "tiny", "path": "p", "family": "qwen2", "system_prompt": None,
        "quantization": "none", "dtype": "auto", "trust_remote_code": False, "revision": None,
        "stages": ["base"],
    }  # fmt: skip
    return load_settings({"model": model}).model


@pytest.mark.parametrize(
    ("capability", "requested", "dtype"),
    [
        (None, "auto", torch.float32),  # CPU: the training precision
        (None, "bfloat16", torch.bfloat16),  # CPU: asked for, given (decoding is memory-bound)
        ((9, 0), "auto", torch.bfloat16),
        ((9, 0), "float32", torch.float32),
        ((8, 0), "bfloat16", torch.bfloat16),
    ],
)
def test_inference_precision(
    capability: tuple[int, int] | None, requested: str, dtype: torch.dtype
) -> None:
    model = tiny_model_settings()
    precision = inference_precision(model, requested, capability)
    assert precision.dtype == dtype and precision.bf16 == (dtype == torch.bfloat16)


def test_inference_in_bf16_on_a_pre_ampere_gpu_is_refused() -> None:
    model = tiny_model_settings()
    with pytest.raises(ValueError, match=r"compute capability 7\.0"):
        inference_precision(model, "bfloat16", (7, 0))


def test_this_machine_is_detected_as_a_cpu() -> None:
    assert launch.cuda_capability() is None
    assert choose_precision().name == "fp32"
