"""Prompts that share a prefix share its KV cache: the prefix is computed once, not per prompt.

The items of one Corr2Cause equivalence class share their premise, so most of each prompt is the
same token prefix (the demo's 340 test items come from 17 premises). ``prefix_groups`` finds
the groups from the token ids alone (exact: no text is re-tokenised): the prompts sorted by
their ids are cut into runs that save the most prompt tokens, the sum over groups of
``(size - 1) * prefix length`` (a dynamic programme over runs of at most ``MAX_GROUP``
prompts). A group's prefix is its prompts' longest common token prefix, one token short of its
shortest prompt at most (the model must read a prompt's last token to predict the next). A
prompt that shares with no other is a group of one, whose prefix is all but its last token.

``group_order`` puts each group's prompts together (groups by prefix length, longest first;
within a group, longest prompt first), so a batch of consecutive prompts holds one or a few
groups. ``BatchInputs`` assembles one ``generate`` call for a batch: every row's group prefix
cache (computed once per group at batch size one, ``prefix_cache``) is stacked into a
``DynamicCache``, shorter prefixes left-padded; after it come the rows' own tokens (the
suffixes), shorter suffixes padded on the left, between prefix and suffix. The attention mask
is zero on both paddings, and transformers derives position ids from the mask's cumulative
sum, so every real token has the position it has in its whole prompt (prefix ``0..P-1``, suffix
from ``P``). ``generate`` gets the full input ids and the mask; it runs only the uncached part.

Only models whose cache is plain full attention (every layer a ``DynamicLayer``) share
prefixes (``shares_prefixes``): a sliding window would count the padding in its window, and a
linear-attention state has no positions to pad.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from rlcausality.evaluation import shared_attention

MAX_GROUP = 256  # prompts in one group at most (bounds the grouping's work: n * MAX_GROUP)


@dataclass(frozen=True)
class PrefixGroup:
    """Prompts (indices) that share their first ``length`` tokens."""

    members: tuple[int, ...]
    length: int


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _best_cuts(lengths: Sequence[int], common: Sequence[int], limit: int) -> list[int]:
    """Run boundaries of sorted prompts that maximise the tokens saved.

    ``lengths[k]``: prompt k's length; ``common[k]``: the common prefix of prompts k and k+1.
    Returns ``cuts`` with ``cuts[j]`` the start of the last run of the best split of the first
    ``j`` prompts (``j`` from 1).
    """
    n = len(lengths)
    best = [0] * (n + 1)
    cuts = [0] * (n + 1)
    for end in range(1, n + 1):
        shared, shortest = None, lengths[end - 1]
        best[end], cuts[end] = best[end - 1], end - 1  # the last prompt alone
        for start in range(end - 2, max(-1, end - 1 - limit), -1):
            step = common[start]
            shared = step if shared is None else min(shared, step)
            shortest = min(shortest, lengths[start])
            saved = best[start] + (end - start - 1) * min(shared, shortest - 1)
            if saved > best[end]:
                best[end], cuts[end] = saved, start
    return cuts


def prefix_groups(encoded: Sequence[Sequence[int]], limit: int = MAX_GROUP) -> list[PrefixGroup]:
    """The prompts cut into groups that share a prefix, each prompt in one group.

    Groups in the order of their prompts' ids; members in the order given. Deterministic: a
    function of the token ids alone.
    """
    ranked = sorted(range(len(encoded)), key=lambda i: (list(encoded[i]), i))
    lengths = [len(encoded[i]) for i in ranked]
    common = [common_length(encoded[a], encoded[b]) for a, b in itertools.pairwise(ranked)]
    cuts = _best_cuts(lengths, common, limit)
    groups: list[PrefixGroup] = []
    end = len(ranked)
    while end > 0:
        start = cuts[end]
        members = tuple(sorted(ranked[start:end]))
        shared = min(common[start : end - 1], default=lengths[start])
        shortest = min(lengths[start:end])
        groups.append(PrefixGroup(members, max(0, min(shared, shortest - 1))))
        end = start
    return groups[::-1]


def group_order(encoded: Sequence[Sequence[int]], groups: Sequence[PrefixGroup]) -> list[int]:
    """Prompt indices, each group's together: groups by prefix length, longest first (ties:
    the group of the earliest prompt); within a group longest prompt first (ties in the order
    given)."""
    ranked = sorted(groups, key=lambda g: (-g.length, g.members[0]))
    return [i for g in ranked for i in sorted(g.members, key=lambda i: -len(encoded[i]))]


def shares_prefixes(model_config: Any) -> bool:
    """True when every layer of the model's ``DynamicCache`` is plain full attention."""
    layers = DynamicCache(config=model_config).layers
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def prefix_cache(model: Any, ids: Sequence[int]) -> Any:
    """The KV cache of ``ids`` (one prompt prefix, batch size one)."""
    device = next(model.parameters()).device
    options = {"logits_to_keep": 1} if _keeps_logits(model) else {}
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(ids)], device=device), use_cache=True, **options)
    return out.cache


def _keeps_logits(model: Any) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    supports = getattr(inner, "_supports_logits_to_keep", None)
    return bool(supports()) if callable(supports) else False


@dataclass
class BatchInputs:
    """One ``generate`` call's inputs for a batch of prompts with cached prefixes."""

    input_ids: torch.Tensor  # [batch, prefix + suffix]: the full ids, paddings included
    attention_mask: torch.Tensor  # zero on the paddings
    cache: Any  # DynamicCache of the prefix part (left-padded rows)

    def generate_kwargs(self) -> dict[str, Any]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "cache": self.cache}  # fmt: skip


def batch_inputs(
    rows: Sequence[tuple[Sequence[int], int, Any]], pad_id: int, config: Any, new_tokens: int = 0
) -> BatchInputs:
    """The inputs of one batch; ``rows``: each prompt's ids, prefix length and prefix cache.

    ``config``: the model's config (the cache's layer layout). The cache holds each group's
    prefix once and reserves room for the rows' own tokens and ``new_tokens`` generated ones
    (``shared_attention.SharedPrefixLayer``); generate with ``shared_attention.sharing``.
    """
    width = max(length for _, length, _ in rows)
    tail = max(len(ids) - length for ids, length, _ in rows)
    device = rows[0][2].layers[0].keys.device
    ids_rows, mask_rows = [], []
    for ids, length, _ in rows:
        head_pad, tail_pad = width - length, tail - (len(ids) - length)
        ids_rows.append([pad_id] * head_pad + list(ids[:length]) + [pad_id] * tail_pad
                        + list(ids[length:]))  # fmt: skip
        mask_rows.append([0] * head_pad + [1] * length + [0] * tail_pad + [1] * (len(ids) - length))
    members: dict[int, list[int]] = {}
    caches: dict[int, Any] = {}
    for row, (_, _, cache) in enumerate(rows):
        members.setdefault(id(cache), []).append(row)
        caches[id(cache)] = cache
    groups = list(members)
    layers = [
        shared_attention.SharedPrefixLayer(
            [(caches[g].layers[layer].keys, caches[g].layers[layer].values) for g in groups],
            [members[g] for g in groups],
            width,
            tail + new_tokens,
        )
        for layer in range(len(caches[groups[0]].layers))
    ]
    return BatchInputs(
        input_ids=torch.tensor(ids_rows, device=device),
        attention_mask=torch.tensor(mask_rows, device=device),
        cache=shared_attention.shared_cache(layers, config),
    )
