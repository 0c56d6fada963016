"""QLoRA on an fp16 GPU: TRL casts the adapters to bf16; training puts them back to fp32."""

from __future__ import annotations

from pathlib import Path

import torch

from rlcausality.models.loading import Precision
from rlcausality.settings.config import load_settings
from rlcausality.training import lora

FP16 = Precision(torch.float16, bf16=False, fp16=True)
BF16 = Precision(torch.bfloat16, bf16=True, fp16=False)


def _trainable_dtypes(model) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters() if p.requires_grad}


def test_fp16_qlora_trains_fp32_adapters(
    tiny_model: dict, typed_model, make_settings, sft_trainer, tmp_path: Path
) -> None:
    quantized = {**tiny_model, "quantization": "4bit"}
    settings = load_settings(make_settings(quantized, "sft", max_steps=1))
    model = settings.model
    trainer = sft_trainer(settings, tmp_path)
    # What TRL does to a quantised model's adapters, whatever the precision of the run:
    assert _trainable_dtypes(trainer.model) == {torch.bfloat16}
    assert lora.fp32_adapters_for_fp16(trainer.model, BF16, model) == 0
    assert _trainable_dtypes(trainer.model) == {torch.bfloat16}  # bf16 GPUs: as TRL intends
    cast = lora.fp32_adapters_for_fp16(trainer.model, FP16, model)
    assert cast > 0 and _trainable_dtypes(trainer.model) == {torch.float32}
    # an unquantised model is left alone (its adapters are fp32 from PEFT already)
    assert lora.fp32_adapters_for_fp16(trainer.model, FP16, typed_model(tiny_model)) == 0
