"""Decoding one batch with transformers' ``generate``, and where each completion ends.

``generated`` makes one call; ``in_segments`` makes one call per ``segment`` new tokens and
drops the rows that stopped between calls (greedy decoding from a shared-prefix cache,
``rlcausality.evaluation.shared_attention``). ``count_generated`` and ``generated_length`` read
a row's tokens up to its first stop token.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any


def count_generated(token_ids: Sequence[int], stop_ids: set[int]) -> int:
    """Tokens generated up to and including the first end-of-sequence token (padding excluded)."""
    for index, token in enumerate(token_ids):
        if token in stop_ids:
            return index + 1
    return len(token_ids)


def generated_length(token_ids: Sequence[int], stop_ids: set[int]) -> tuple[int, bool]:
    """``count_generated`` and whether the completion was truncated (it never stopped)."""
    n = count_generated(token_ids, stop_ids)
    return n, not (n and token_ids[n - 1] in stop_ids)


def generated(model: Any, inputs: dict[str, Any], config: Any) -> list[list[int]]:
    """Each row's new tokens from one ``generate`` call (padding after a stop included)."""
    output = model.generate(**inputs, generation_config=config)
    return output[:, inputs["input_ids"].shape[1] :].tolist()


def in_segments(model: Any, inputs: dict[str, Any], config: Any, segment: int) -> list[list[int]]:
    """Greedy decoding ``segment`` new tokens a ``generate`` call; between calls the rows that
    stopped leave the batch (``cache.batch_select_indices``), so a batch no longer decodes its
    finished rows until its longest completion ends. Each row's tokens up to its stop token.

    A call continues the last: it gets the rows' whole ids so far and the cache, which holds
    all but the last token generated, so its first step computes that token, as one call's
    next step would.
    """
    import torch

    stop_ids = set(config.eos_token_id)
    ids, mask, cache = inputs["input_ids"], inputs["attention_mask"], inputs["cache"]
    live = list(range(ids.shape[0]))
    tokens: list[list[int]] = [[] for _ in live]
    while live:
        part = copy.deepcopy(config)
        part.max_new_tokens = min(segment, config.max_new_tokens - len(tokens[live[0]]))
        output = model.generate(
            input_ids=ids, attention_mask=mask, cache=cache, generation_config=part
        )
        new = output[:, ids.shape[1] :]
        keep = []
        for position, row in enumerate(live):
            produced = new[position].tolist()
            count, cut = generated_length(produced, stop_ids)
            tokens[row].extend(produced[:count])
            if cut and len(tokens[row]) < config.max_new_tokens:
                keep.append(position)
        if len(keep) < len(live) and keep:
            index = torch.tensor(keep, device=ids.device)
            cache.batch_select_indices(index)
            output, mask = output[index], mask[index]
        live = [live[position] for position in keep]
        ids = output
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], new.shape[1])], dim=-1)
    return tokens
