"""Generation with vLLM, for evaluation on a CUDA device (``evaluate.use_vllm: true``).

The same contract as ``rlcausality.evaluation.generation.generate_transformers``: every sampling
parameter from ``GenerationSettings`` (never the hub's ``generation_config``), the tokenizer's stop
tokens, chunks handed to a callback as they finish, and ``Generations`` in the prompts' order with
the parameters vLLM was given. vLLM computes a prefix that prompts share once (prefix caching).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from rlcausality import launch
from rlcausality.evaluation.generation import (
    PROGRESS_INTERVAL_S,
    ChunkCallback,
    Generations,
    GenerationSettings,
    joined,
    stop_token_ids,
)
from rlcausality.progress import ProgressLog


def vllm_usable(settings: GenerationSettings) -> bool:
    """True when vLLM was asked for; a loud error when it was asked for and cannot run.

    ``evaluate.use_vllm: true`` never falls back to ``generate`` silently: the backend used
    goes into metrics.json, and a different one would make stages incomparable.
    """
    if not settings.use_vllm:
        return False
    launch.require_vllm("evaluate")
    return True


def lora_rank_limit(adapter_path: str) -> int:
    """vLLM's ``max_lora_rank`` for an adapter: its rank rounded up to a power of two (≥ 8)."""
    config = json.loads((Path(adapter_path) / "adapter_config.json").read_text("utf-8"))
    rank = int(config.get("r", 8))
    limit = 8
    while limit < rank:
        limit *= 2
    return limit


def _vllm_generations(outputs: Sequence[Any]) -> Generations:
    """Texts, token counts and truncation (``finish_reason == "length"``) of vLLM outputs."""
    return Generations(
        texts=[out.outputs[0].text for out in outputs],
        token_counts=[len(out.outputs[0].token_ids) for out in outputs],
        backend="vllm",
        truncated=[out.outputs[0].finish_reason == "length" for out in outputs],
    )


def _vllm_engine(
    model_path: str,
    settings: GenerationSettings,
    longest_prompt: int,
    adapter_path: str | None,
    trust_remote_code: bool,
    dtype: str = "auto",
) -> Any:
    """A vLLM engine for the model folder, sized for ``longest_prompt`` plus the completion;
    ``dtype`` ``auto`` leaves the precision to vLLM (fp16 for an fp32 checkpoint)."""
    from vllm import LLM

    options: dict[str, Any] = {} if dtype == "auto" else {"dtype": dtype}
    if adapter_path is not None:
        options.update(enable_lora=True, max_lora_rank=lora_rank_limit(adapter_path))
    return LLM(
        model=model_path,
        seed=settings.seed,
        trust_remote_code=trust_remote_code,
        # KV cache for what is asked, not the model's whole context (Phi-3.5: 131k tokens).
        max_model_len=longest_prompt + settings.max_new_tokens,
        # Sampling defaults from our settings alone, not the hub's generation_config.
        generation_config="vllm",
        # A prefix that prompts share (an equivalence class's premise) is computed once; vLLM's
        # V1 engine does this by default, this says so.
        enable_prefix_caching=True,
        **options,
    )


def _sampling_params(settings: GenerationSettings, tokenizer: Any) -> Any:
    """vLLM's ``SamplingParams``, every one from ``settings`` and the tokenizer's stop tokens."""
    from vllm import SamplingParams

    return SamplingParams(
        max_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p if not settings.greedy else 1.0,
        top_k=-1,
        repetition_penalty=1.0,
        stop_token_ids=stop_token_ids(tokenizer),
        seed=settings.seed,
    )


def _lora_request(adapter_path: str | None) -> Any:
    if adapter_path is None:
        return None
    from vllm.lora.request import LoRARequest

    return LoRARequest("adapter", 1, adapter_path)


def generate_vllm(
    model_path: str,
    tokenizer: Any,
    prompts: Sequence[str],
    settings: GenerationSettings,
    adapter_path: str | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    *,
    chunk_size: int | None = None,
    on_chunk: ChunkCallback | None = None,
    progress: ProgressLog | None = None,
    done: Collection[int] = (),
) -> Generations:
    """Generate with vLLM from a model folder (plus an optional LoRA adapter).

    ``dtype``: ``evaluate.dtype``. ``chunk_size``, ``on_chunk``, ``progress`` and ``done`` as
    in ``generate_transformers``.
    """
    # Token ids, not text: the chat template already holds any BOS, which vLLM would add again.
    # vLLM batches and orders requests itself and returns them in the order given.
    requests = [
        {"prompt_token_ids": tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts
    ]
    skip = set(done)
    todo = [i for i in range(len(requests)) if i not in skip]
    longest = max((len(requests[i]["prompt_token_ids"]) for i in todo), default=1)
    llm = _vllm_engine(model_path, settings, longest, adapter_path, trust_remote_code, dtype)
    params = _sampling_params(settings, tokenizer)
    lora = _lora_request(adapter_path)
    log = progress or ProgressLog(
        "generate", len(prompts), "prompt", PROGRESS_INTERVAL_S, start=len(skip)
    )
    log.restart()

    step = chunk_size or max(1, len(todo))
    parts: list[tuple[list[int], Generations]] = []
    for start in range(0, len(todo), step):  # vLLM schedules each chunk itself
        indices = todo[start : start + step]
        outputs = llm.generate([requests[i] for i in indices], params, lora_request=lora,
                               use_tqdm=True)  # fmt: skip
        log.update(len(outputs))
        parts.append((indices, _vllm_generations(outputs)))
        if on_chunk is not None:
            on_chunk(*parts[-1])
    if progress is None:
        log.close()
    parameters = {key: getattr(params, key, None) for key in VLLM_PARAMETERS}
    return joined(parts, len(requests), "vllm", parameters)


VLLM_PARAMETERS = ("max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")
