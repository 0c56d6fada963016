"""Batched generation with the model's own chat template.

Prompts are rendered with ``apply_chat_template(..., add_generation_prompt=True)``. With
transformers, a prefix that prompts share (the premise of an equivalence class's items) is
computed once and its KV cache read by every prompt of the group
(``rlcausality.evaluation.prefix_cache``): the prompts are ordered once, each group's together, and
generated in batches of consecutive prompts of that order; a batch's rows are padded on the left of
their prefix and of their own tokens. A model whose cache cannot be shared that way (a sliding
window, a static cache) gets the prompts sorted by length (longest first, ties in the order given),
each computed whole with left padding. A chunk (``chunk_size`` prompts, rounded up to whole batches)
is what a caller saves at a time. The order and the batches, hence every completion, are the same
whatever the chunk size (it decides only how often results are saved: an operational key) and
in a resumed run (the prompts done before keep their place). Results come back in the original
order. Greedy decoding when ``temperature == 0``, otherwise sampling with ``temperature`` and
``top_p``.

Every generation parameter comes from ``GenerationSettings``, never from the model folder's
``generation_config.json`` (a hub model's may set a repetition penalty, ``top_k`` or extra end
tokens): transformers fills any parameter left unset from the model's config, so ``generate``
gets a complete ``GenerationConfig`` and the model's own is replaced by it while generating.
Generation stops at the tokenizer's end-of-sequence token or a known end-of-turn token
(``END_OF_TURN_TOKENS``) the tokenizer has. A completion that reached ``max_new_tokens``
without stopping is *truncated*.

This module generates with transformers' ``generate``; ``rlcausality.evaluation.vllm_generation``
with vLLM, when asked for and a CUDA device is present. Both return ``Generations``. Progress goes
to the job log as ``rlcausality.progress`` lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcausality.evaluation import decoding, prefix_cache, shared_attention
from rlcausality.progress import ProgressLog

Conversation = Sequence[dict[str, str]]
# Tokens that end an assistant turn in the supported chat templates (ChatML, Phi-3, Llama 3,
# Gemma, DeepSeek-R1-Distill); those the tokenizer knows stop generation beside its EOS.
END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<｜end▁of▁sentence｜>",
)
PROGRESS_INTERVAL_S = 60.0
# Greedy decoding from shared prefixes drops a batch's finished rows every so many new tokens.
SEGMENT_TOKENS = 16


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int
    batch_size: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    use_vllm: bool = False
    seed: int = 0
    top_k: int = 0  # 0: no top-k filtering
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class Generations:
    texts: list[str]
    token_counts: list[int]
    backend: str  # "transformers" or "vllm"
    truncated: list[bool] = field(default_factory=list)  # reached max_new_tokens, no stop
    parameters: dict[str, Any] = field(default_factory=dict)  # what generation was given


# Called after each chunk with the indices (in ``prompts``) of its prompts and their generations.
ChunkCallback = Callable[[list[int], Generations], None]


def render_prompts(tokenizer: Any, conversations: Sequence[Conversation]) -> list[str]:
    """Each conversation as the model's chat template renders it, opening the assistant turn."""
    return [
        tokenizer.apply_chat_template(list(conv), tokenize=False, add_generation_prompt=True)
        for conv in conversations
    ]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's EOS and every end-of-turn token it knows (not the model's config)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    ids.update(int(vocab[token]) for token in END_OF_TURN_TOKENS if token in vocab)
    return sorted(ids)


def generation_config(settings: GenerationSettings, tokenizer: Any, stop_ids: Sequence[int]) -> Any:
    """A complete ``GenerationConfig`` from ``settings`` and the tokenizer alone."""
    from transformers import GenerationConfig

    sampling = not settings.greedy
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        min_new_tokens=0,
        do_sample=sampling,
        num_beams=1,
        # greedy: the sampling knobs stay unset (transformers' neutral defaults apply)
        temperature=settings.temperature if sampling else None,
        top_p=settings.top_p if sampling else None,
        top_k=settings.top_k if sampling else None,
        repetition_penalty=settings.repetition_penalty,
        no_repeat_ngram_size=0,
        length_penalty=1.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=list(stop_ids),
    )


PARAMETER_KEYS = (
    "do_sample", "temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty",
    "no_repeat_ngram_size", "num_beams", "max_new_tokens", "min_new_tokens", "length_penalty",
    "pad_token_id", "bos_token_id", "eos_token_id", "bad_words_ids", "suppress_tokens",
    "forced_eos_token_id",
)  # fmt: skip


def config_parameters(config: Any, tokenizer: Any, settings: GenerationSettings) -> dict[str, Any]:
    """Every parameter ``generate`` was given, for metrics.json."""
    values = {key: getattr(config, key, None) for key in PARAMETER_KEYS}
    values["stop_tokens"] = tokenizer.convert_ids_to_tokens(list(config.eos_token_id))
    values.update({"seed": settings.seed, "batch_size": settings.batch_size})
    return values


@contextlib.contextmanager
def own_generation_config(model: Any, config: Any) -> Iterator[None]:
    """Swap in ``config`` as the model's ``generation_config`` (what ``generate`` falls back on)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = inner.generation_config
    inner.generation_config = config
    try:
        yield
    finally:
        inner.generation_config = saved


def _prepare_tokenizer(tokenizer: Any) -> None:
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def length_order(encoded: Sequence[Sequence[int]]) -> list[int]:
    """Prompt indices, longest first; ties in the order given (a stable sort)."""
    return sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))


def batches_of(
    order: Sequence[int], batch_size: int, done: Collection[int] = ()
) -> list[list[int]]:
    """``order`` cut into batches of ``batch_size`` consecutive prompts, less the ``done`` ones
    (a batch left empty is dropped): the batches of a resumed run are those of a whole one."""
    skip = set(done)
    cut = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    kept = [[i for i in batch if i not in skip] for batch in cut]
    return [batch for batch in kept if batch]


def chunks_of(
    batches: Sequence[list[int]], chunk_size: int | None, batch_size: int
) -> list[list[list[int]]]:
    """``batches`` in chunks of ``chunk_size`` prompts rounded up to whole batches (all of them
    when None)."""
    if not batches:
        return []
    per_chunk = len(batches) if not chunk_size else -(-int(chunk_size) // batch_size)
    return [list(batches[i : i + per_chunk]) for i in range(0, len(batches), per_chunk)]


class _PlainBatches:
    """Each prompt computed whole: the batch left-padded to its longest prompt."""

    def __init__(self, model: Any, tokenizer: Any, encoded: Sequence[list[int]]) -> None:
        self.tokenizer = tokenizer
        self.encoded = encoded
        self.device = next(model.parameters()).device

    def inputs(self, batch: Sequence[int]) -> dict[str, Any]:
        rows = {"input_ids": [self.encoded[i] for i in batch]}
        padded = self.tokenizer.pad(rows, padding=True, return_tensors="pt").to(self.device)
        return dict(padded)

    def attention(self, inputs: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
        """The model's own attention."""
        return contextlib.nullcontext()

    def decode(self, model: Any, inputs: dict[str, Any], config: Any) -> list[list[int]]:
        """Each row's generated tokens: one ``generate`` call."""
        return decoding.generated(model, inputs, config)


class _SharedPrefixes:
    """Each group's prefix computed once (``rlcausality.evaluation.prefix_cache``); a batch reads
    the caches of its groups. A group's prompts are consecutive in ``prefix_cache.group_order``,
    so a cache is dropped after the last batch that holds one of them. A batch's cache reserves
    room for ``new_tokens`` generated tokens (``shared_attention.SharedPrefixLayer``)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        encoded: Sequence[list[int]],
        groups: Sequence[Any],
        new_tokens: int,
    ) -> None:
        self.model = model
        self.new_tokens = new_tokens
        self.pad_id = int(tokenizer.pad_token_id)
        self.encoded = encoded
        self.group_of = {index: group for group in groups for index in group.members}
        self.live: dict[Any, Any] = {}

    def _cache(self, group: Any) -> Any:
        if group not in self.live:
            ids = self.encoded[group.members[0]][: group.length]
            self.live[group] = prefix_cache.prefix_cache(self.model, ids)
        return self.live[group]

    def inputs(self, batch: Sequence[int]) -> dict[str, Any]:
        needed = {self.group_of[i] for i in batch}
        self.live = {group: cache for group, cache in self.live.items() if group in needed}
        rows = [
            (self.encoded[i], self.group_of[i].length, self._cache(self.group_of[i])) for i in batch
        ]
        config = self.model.config
        inputs = prefix_cache.batch_inputs(rows, self.pad_id, config, self.new_tokens)
        return inputs.generate_kwargs()

    def attention(self, inputs: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
        """Attention that reads each group's prefix once (``shared_attention``)."""
        return shared_attention.sharing(self.model, inputs["cache"])

    def decode(self, model: Any, inputs: dict[str, Any], config: Any) -> list[list[int]]:
        """Each row's generated tokens; greedy decoding drops the rows that stopped every
        ``SEGMENT_TOKENS`` tokens (``decoding.in_segments``)."""
        if config.do_sample:  # one call: the sampler draws for the same rows at every step
            return decoding.generated(model, inputs, config)
        return decoding.in_segments(model, inputs, config, SEGMENT_TOKENS)


BatchSource = _PlainBatches | _SharedPrefixes


def can_share_prefixes(model: Any, config: Any, encoded: Sequence[Sequence[int]]) -> bool:
    """True when prefixes can be cached for ``model``: a plain full-attention cache, no cache
    implementation asked for, every prompt at least two tokens long."""
    if getattr(config, "cache_implementation", None) is not None:
        return False
    if any(len(ids) < 2 for ids in encoded):
        return False
    return prefix_cache.shares_prefixes(model.config)


def _generate_batches(
    model: Any,
    tokenizer: Any,
    source: BatchSource,
    batches: Sequence[list[int]],
    config: Any,
    progress: ProgressLog,
) -> Generations:
    """Each batch in one ``generate`` call; results in the order of the batches' prompts."""
    import torch

    stop_ids = set(config.eos_token_id)
    texts, counts, truncated = [], [], []
    for batch in batches:
        inputs = source.inputs(batch)
        with torch.inference_mode(), source.attention(inputs):
            generated = source.decode(model, inputs, config)
        for tokens in generated:
            count, cut = decoding.generated_length(tokens, stop_ids)
            texts.append(tokenizer.decode(tokens[:count], skip_special_tokens=True))
            counts.append(count)
            truncated.append(cut)
        progress.update(len(batch))
    return Generations(texts, counts, "transformers", truncated)


def _batch_source(
    model: Any, tokenizer: Any, encoded: Sequence[list[int]], config: Any, share_prefix: bool
) -> tuple[BatchSource, list[int]]:
    """How batches are computed, and the order their prompts are taken in."""
    if share_prefix and can_share_prefixes(model, config, encoded):
        groups = prefix_cache.prefix_groups(encoded)
        order = prefix_cache.group_order(encoded, groups)
        source = _SharedPrefixes(model, tokenizer, encoded, groups, config.max_new_tokens)
        return source, order
    return _PlainBatches(model, tokenizer, encoded), length_order(encoded)


def generate_transformers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    settings: GenerationSettings,
    *,
    chunk_size: int | None = None,
    on_chunk: ChunkCallback | None = None,
    progress: ProgressLog | None = None,
    done: Collection[int] = (),
    share_prefix: bool = True,
) -> Generations:
    """Generate with ``model.generate``; ``prompts`` are already rendered by the chat template.

    ``chunk_size`` prompts at a time (all at once when None); ``on_chunk`` sees each chunk as
    soon as it is done. ``progress`` counts prompts (a new log line every minute when None).
    ``done``: indices of prompts generated before (a resumed run): they keep their place in
    the order and batches, and are not generated again (their texts are left empty).
    ``share_prefix``: compute a prefix that prompts share once
    (``rlcausality.evaluation.prefix_cache``); False computes every prompt whole, in batches of
    prompts sorted by length.
    """
    import torch

    _prepare_tokenizer(tokenizer)
    config = generation_config(settings, tokenizer, stop_token_ids(tokenizer))
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    log = progress or ProgressLog(
        "generate", len(prompts), "prompt", PROGRESS_INTERVAL_S, start=len(set(done))
    )
    if not settings.greedy:
        torch.manual_seed(settings.seed)
    model.eval()
    source, order = _batch_source(model, tokenizer, encoded, config, share_prefix)
    if not log.counted:  # the rate measures generation, not the model's loading; a log
        log.restart()  # that has counted a caller's earlier calls keeps its clock

    batches = batches_of(order, settings.batch_size, done)
    parts: list[tuple[list[int], Generations]] = []
    with own_generation_config(model, config):
        for chunk in chunks_of(batches, chunk_size, settings.batch_size):
            part = _generate_batches(model, tokenizer, source, chunk, config, log)
            parts.append(([i for batch in chunk for i in batch], part))
            if on_chunk is not None:
                on_chunk(*parts[-1])
    if progress is None:
        log.close()
    parameters = config_parameters(config, tokenizer, settings)
    parameters["prefix_cache"] = isinstance(source, _SharedPrefixes)
    return joined(parts, len(prompts), "transformers", parameters)


def joined(
    parts: Sequence[tuple[list[int], Generations]],
    count: int,
    backend: str,
    parameters: dict[str, Any],
) -> Generations:
    """The chunks' generations as one, in the prompts' order, with the ``parameters``
    generation was given."""
    texts, counts, truncated = [""] * count, [0] * count, [False] * count
    for indices, part in parts:
        for position, index in enumerate(indices):
            texts[index] = part.texts[position]
            counts[index] = part.token_counts[position]
            truncated[index] = part.truncated[position] if part.truncated else False
    return Generations(texts, counts, backend, truncated, parameters)


def no_generations(tokenizer: Any, settings: GenerationSettings) -> Generations:
    """The empty result of ``generate_transformers`` (nothing left to generate), parameters too."""
    _prepare_tokenizer(tokenizer)
    config = generation_config(settings, tokenizer, stop_token_ids(tokenizer))
    parameters = {**config_parameters(config, tokenizer, settings), "prefix_cache": None}
    return Generations([], [], "transformers", [], parameters)
