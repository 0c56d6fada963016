"""Attention that reads each shared prefix once per step, not once per row (cascade attention).

With ``rlcausality.evaluation.prefix_cache`` a batch's rows share a few group prefixes, but a
plain KV cache holds a copy of its prefix for every row, and every decoding step reads every
copy: at 32 rows of ~400 prompt tokens that is most of the bytes a step moves on the CPU, and
``DynamicLayer`` copies all of it again to append one token. Here a batch's cache
(``SharedPrefixLayer``, one per decoder layer) keeps each group's prefix once (batch size one)
and only the rows' own tokens (their suffixes: the hypothesis, the closing line and what is
generated) per row, in buffers with room reserved ahead so a step writes one position in place.
``attention`` computes each row's softmax over its group's prefix and its own suffix together,
in float32 whatever the model's dtype: one matrix product per group for the prefix (the
group's rows and heads stacked as one query matrix), one per row for the suffix. It is the same
attention (the scores of prefix and suffix share one softmax), in a different order of
summation than ``scaled_dot_product_attention``.

The function is registered with transformers' ``AttentionInterface`` (and ``sdpa``'s mask
function) as ``ATTENTION``. ``sharing(model, cache)`` switches a model to it for one
``generate`` call; a layer of any other cache, or a call outside ``sharing``, goes to ``sdpa``.
The attention mask transformers builds covers ``width`` prefix columns (the batch's longest
prefix, rows left-padded) and then the suffix; this function reads its suffix columns only, as
a row's prefix has no padding in its group's cache.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import AttentionInterface, DynamicCache, PreTrainedConfig
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "rlcausality_shared_prefix"
DTYPE = torch.float32  # keys, values and scores: float32 whatever the model computes in

_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("shared_prefix_cache", default=None)


class SharedPrefixLayer(DynamicLayer):
    """One decoder layer's cache of a batch whose rows share group prefixes.

    ``prefixes``: each group's keys and values (1, kv heads, length, dim); ``rows``: each
    group's row indices in the batch; ``width``: the prefix columns of the attention mask (the
    longest prefix). The rows' own keys and values go to buffers of ``capacity`` positions;
    ``keys`` and ``values`` are views of their filled part (the suffixes).
    """

    def __init__(
        self,
        prefixes: Sequence[tuple[torch.Tensor, torch.Tensor]],
        rows: Sequence[Sequence[int]],
        width: int,
        capacity: int,
    ) -> None:
        super().__init__()
        first = prefixes[0][0]
        self.prefixes = [(k.to(DTYPE), v.to(DTYPE)) for k, v in prefixes]
        self.members = [list(group) for group in rows]
        self.rows = [_selector(group, first.device) for group in self.members]
        self.width = width
        batch = sum(len(group) for group in rows)
        shape = (batch, first.shape[1], capacity, first.shape[3])
        self._buffers = (
            torch.empty(shape, dtype=DTYPE, device=first.device),
            torch.empty(shape, dtype=DTYPE, device=first.device),
        )
        self.device = first.device
        self.keys = self._buffers[0][..., :0, :]
        self.values = self._buffers[1][..., :0, :]
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions in place and return the rows' suffix keys and values (a
        buffer that runs out of room doubles)."""
        length = self.keys.shape[-2]
        end = length + key_states.shape[-2]
        if end > self._buffers[0].shape[-2]:
            grown = []
            for buffer in self._buffers:
                shape = (*buffer.shape[:-2], max(end, 2 * buffer.shape[-2]), buffer.shape[-1])
                bigger = torch.empty(shape, dtype=DTYPE, device=buffer.device)
                bigger[..., :length, :].copy_(buffer[..., :length, :])
                grown.append(bigger)
            self._buffers = (grown[0], grown[1])
        self._buffers[0][..., length:end, :].copy_(key_states)
        self._buffers[1][..., length:end, :].copy_(value_states)
        self.keys = self._buffers[0][..., :end, :]
        self.values = self._buffers[1][..., :end, :]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        """The mask's columns so far: the prefix width, then the suffix."""
        return self.width + self.keys.shape[-2]

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a shared-prefix cache is for one greedy or sampled pass")

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("a shared-prefix cache is for one greedy or sampled pass")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices`` (in that order): their suffixes, and the prefixes of the
        groups that still have a row."""
        kept = [int(i) for i in indices]
        position = {row: new for new, row in enumerate(kept)}
        length = self.keys.shape[-2]
        index = torch.tensor(kept, device=self.device)
        self._buffers = (self._buffers[0][index], self._buffers[1][index])
        groups = [
            ([position[row] for row in members if row in position], prefix)
            for members, prefix in zip(self.members, self.prefixes, strict=True)
        ]
        groups = [(members, prefix) for members, prefix in groups if members]
        self.members = [members for members, _ in groups]
        self.prefixes = [prefix for _, prefix in groups]
        self.rows = [_selector(members, self.device) for members in self.members]
        self.keys = self._buffers[0][..., :length, :]
        self.values = self._buffers[1][..., :length, :]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("a shared-prefix cache is for one greedy or sampled pass")


def _selector(rows: Sequence[int], device: Any) -> slice | torch.Tensor:
    """Rows as a slice when consecutive (a view, no copy), else as an index tensor."""
    first = rows[0]
    if list(rows) == list(range(first, first + len(rows))):
        return slice(first, first + len(rows))
    return torch.tensor(list(rows), device=device)


def shared_cache(layers: Sequence[SharedPrefixLayer], config: Any) -> Any:
    """A ``DynamicCache`` of ``layers`` (one per decoder layer)."""
    cache = DynamicCache(config=config)
    cache.layers = list(layers)
    return cache


def _suffix_mask(
    mask: torch.Tensor | None, width: int, queries: int, length: int, device: Any
) -> Any:
    """The attention mask's suffix columns, (batch or 1, 1, queries, length) booleans: True
    where a query may attend. No mask: causal within the suffix."""
    if mask is not None:
        part = mask[..., width:]
        return part if part.dtype == torch.bool else part == 0
    if queries == 1:
        return None
    key_positions = torch.arange(length, device=device)
    query_positions = torch.arange(length - queries, length, device=device)
    return (key_positions[None, :] <= query_positions[:, None])[None, None]


def _layer_of(module: Any, key: torch.Tensor) -> SharedPrefixLayer | None:
    """The active cache's layer whose suffix keys ``key`` are (None for any other call)."""
    cache = _ACTIVE.get()
    if cache is None or not 0 <= module.layer_idx < len(cache.layers):
        return None
    layer = cache.layers[module.layer_idx]
    return layer if isinstance(layer, SharedPrefixLayer) and layer.keys is key else None


def attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention over each row's group prefix and its own suffix; ``key``/``value``: the rows'
    suffixes (``SharedPrefixLayer.update``). Returns (batch, queries, heads, dim) as ``sdpa``."""
    layer = _layer_of(module, key)
    if layer is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    batch, heads, queries, dim = query.shape
    kv_heads, length = key.shape[1], key.shape[2]
    rep = heads // kv_heads
    scale = dim**-0.5 if scaling is None else scaling
    # query heads h = g * rep + r read kv head g (transformers' repeat_kv)
    q = (query.to(DTYPE) * scale).reshape(batch, kv_heads, rep * queries, dim)
    own = torch.matmul(q, key.transpose(-1, -2)).view(batch, kv_heads, rep, queries, length)
    allowed = _suffix_mask(attention_mask, layer.width, queries, length, query.device)
    if allowed is not None:
        own = own.masked_fill(~allowed[:, :, None], float("-inf"))
    out = torch.empty(batch, kv_heads, rep, queries, dim, dtype=DTYPE, device=query.device)
    for rows, (prefix_keys, prefix_values) in zip(layer.rows, layer.prefixes, strict=True):
        size = prefix_keys.shape[2]
        n = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
        stacked = q[rows].transpose(0, 1).reshape(kv_heads, n * rep * queries, dim)
        shared = torch.matmul(stacked, prefix_keys[0].transpose(-1, -2))
        shared = shared.view(kv_heads, n, rep, queries, size).transpose(0, 1)
        probs = torch.softmax(torch.cat([shared, own[rows]], dim=-1), dim=-1)
        from_prefix = probs[..., :size].transpose(0, 1).reshape(kv_heads, n * rep * queries, size)
        part = torch.matmul(from_prefix, prefix_values[0]).view(kv_heads, n, rep, queries, dim)
        part = part.transpose(0, 1) + torch.matmul(probs[..., size:], value[rows].unsqueeze(2))
        out[rows] = part
    result = out.view(batch, heads, queries, dim).transpose(1, 2).to(query.dtype)
    return result, None


AttentionInterface.register(ATTENTION, attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


@contextlib.contextmanager
def sharing(model: Any, cache: Any) -> Iterator[None]:
    """``model`` computes attention with ``attention`` reading ``cache`` while in the block
    (every config its modules hold switched to ``ATTENTION``, then restored)."""
    held = (getattr(module, "config", None) for module in model.modules())
    configs = {id(c): c for c in held if isinstance(c, PreTrainedConfig)}
    saved = {key: config._attn_implementation for key, config in configs.items()}
    token = _ACTIVE.set(cache)
    try:
        for config in configs.values():
            config._attn_implementation = ATTENTION
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = saved[key]
        _ACTIVE.reset(token)
