"""Batched generation with the model's own chat template.

Prompts are rendered with ``apply_chat_template(..., add_generation_prompt=True)``, sorted by
length (longest first, so little padding is wasted and memory trouble shows at once), generated
in batches with left padding, and returned in the original order. Greedy decoding when
``temperature == 0``, otherwise sampling with ``temperature`` and ``top_p``. vLLM is used when
asked for, importable and a CUDA device is present; transformers' ``generate`` otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Conversation = Sequence[dict[str, str]]


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int
    batch_size: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    use_vllm: bool = False
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class Generations:
    texts: list[str]
    token_counts: list[int]
    backend: str  # "transformers" or "vllm"


def vllm_usable(settings: GenerationSettings) -> bool:
    """True when vLLM was asked for, is installed and a CUDA device is present."""
    if not settings.use_vllm or importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def render_prompts(tokenizer: Any, conversations: Sequence[Conversation]) -> list[str]:
    """Each conversation as the model's chat template renders it, opening the assistant turn."""
    return [
        tokenizer.apply_chat_template(list(conv), tokenize=False, add_generation_prompt=True)
        for conv in conversations
    ]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def count_generated(token_ids: Sequence[int], stop_ids: set[int]) -> int:
    """Tokens generated up to and including the first end-of-sequence token (padding excluded)."""
    for index, token in enumerate(token_ids):
        if token in stop_ids:
            return index + 1
    return len(token_ids)


def _progress(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="generate", unit="prompt", file=sys.stderr, dynamic_ncols=True)


def generate_transformers(
    model: Any, tokenizer: Any, prompts: Sequence[str], settings: GenerationSettings
) -> Generations:
    """Generate with ``model.generate``; ``prompts`` are already rendered by the chat template."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    stop_ids = _eos_ids(model, tokenizer)
    sampling: dict[str, Any] = {"do_sample": False}
    if not settings.greedy:
        sampling = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p}
        torch.manual_seed(settings.seed)
    else:  # unset sampling defaults a generation_config may carry, so greedy stays quiet
        sampling.update({"temperature": None, "top_p": None, "top_k": None})
    texts: list[str] = [""] * len(prompts)
    counts: list[int] = [0] * len(prompts)
    model.eval()
    device = next(model.parameters()).device
    with _progress(len(prompts)) as bar, torch.inference_mode():
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            inputs = tokenizer.pad(
                {"input_ids": [encoded[i] for i in batch]}, padding=True, return_tensors="pt"
            ).to(device)
            output = model.generate(
                **inputs,
                max_new_tokens=settings.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
            new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
            for index, tokens in zip(batch, new_tokens, strict=True):
                n = count_generated(tokens, stop_ids)
                counts[index] = n
                texts[index] = tokenizer.decode(tokens[:n], skip_special_tokens=True)
            bar.update(len(batch))
    return Generations(texts=texts, token_counts=counts, backend="transformers")


def lora_rank_limit(adapter_path: str) -> int:
    """vLLM's ``max_lora_rank`` for an adapter: its rank rounded up to a power of two (≥ 8)."""
    config = json.loads((Path(adapter_path) / "adapter_config.json").read_text("utf-8"))
    rank = int(config.get("r", 8))
    limit = 8
    while limit < rank:
        limit *= 2
    return limit


def generate_vllm(
    model_path: str,
    tokenizer: Any,
    prompts: Sequence[str],
    settings: GenerationSettings,
    adapter_path: str | None = None,
    trust_remote_code: bool = False,
) -> Generations:
    """Generate with vLLM from a model folder (plus an optional LoRA adapter)."""
    from vllm import LLM, SamplingParams

    lora_options: dict[str, Any] = {}
    if adapter_path is not None:
        lora_options = {"enable_lora": True, "max_lora_rank": lora_rank_limit(adapter_path)}
    llm = LLM(
        model=model_path, seed=settings.seed, trust_remote_code=trust_remote_code, **lora_options
    )
    params = SamplingParams(
        max_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p if not settings.greedy else 1.0,
        seed=settings.seed,
    )
    lora = None
    if adapter_path is not None:
        from vllm.lora.request import LoRARequest

        lora = LoRARequest("adapter", 1, adapter_path)
    # Token ids, not text: the chat template already holds any BOS, which vLLM would add again.
    # vLLM batches and orders requests itself and returns them in the order given.
    requests = [
        {"prompt_token_ids": tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts
    ]
    outputs = llm.generate(requests, params, lora_request=lora, use_tqdm=True)
    texts = [out.outputs[0].text for out in outputs]
    counts = [len(out.outputs[0].token_ids) for out in outputs]
    return Generations(texts=texts, token_counts=counts, backend="vllm")
