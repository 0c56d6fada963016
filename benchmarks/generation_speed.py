"""Seconds per item of the evaluation's generation, by batch size, new tokens, dtype and cache.

Generation goes through ``rlcausality.evaluation.generation.generate_transformers`` exactly as the
evaluate job runs it (chat template, batches that read each shared prefix from its cache, greedy),
on the first or last ``--rows`` prompts of a formatted test split; ``--new-tokens 1`` times the
prefill alone. Generation stops at the end-of-turn token as in evaluation (the base model rarely
stops within 65 tokens, so its figures are of fixed-length completions). ``--caches static`` swaps
in transformers' static KV cache, with which every prompt is computed whole, in length-sorted
batches with left padding (the shared prefix against whole prompts:
``benchmarks/prefix_cache.py``). Run from a workflow directory where the model and the
formatted data exist (e.g. after the demo)::

    OMP_NUM_THREADS=2 python benchmarks/generation_speed.py \
        --model results/models/smollm2-135m/base \
        --data results/data/smollm2-135m/grpo/test.jsonl --rows 64 --last \
        --batch-sizes 16 32 --new-tokens 1 65 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rlcausality.evaluation import generation
from rlcausality.io import read_jsonl


@contextlib.contextmanager
def kv_cache(implementation: str) -> Iterator[None]:
    """Generation with transformers' ``cache_implementation`` (``dynamic``: its default)."""
    build = generation.generation_config
    if implementation == "dynamic":
        yield
        return

    def with_cache(*args: Any) -> Any:
        config = build(*args)
        config.cache_implementation = implementation
        return config

    generation.generation_config = with_cache
    try:
        yield
    finally:
        generation.generation_config = build


def per_item(model: Any, tokenizer: Any, prompts: Sequence[str], settings: Any) -> tuple:
    """Seconds per prompt and the number of tokens generated."""
    start = time.perf_counter()
    out = generation.generate_transformers(model, tokenizer, prompts, settings)
    return (time.perf_counter() - start) / len(prompts), sum(out.token_counts)


def main(argv: Sequence[str] | None = None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder (e.g. a base or merged)")
    parser.add_argument("--data", required=True, help="formatted rows with a 'prompt'")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--last", action="store_true", help="the last rows (larger N)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[1, 65])
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--caches", nargs="+", default=["dynamic"], choices=["dynamic", "static"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    rows = list(read_jsonl(args.data))
    rows = rows[-args.rows :] if args.last else rows[: args.rows]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    prompts = generation.render_prompts(tokenizer, [row["prompt"] for row in rows])
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    print(f"{len(prompts)} prompts, {sum(lengths) / len(lengths):.0f} tokens mean, "
          f"{max(lengths)} max; {args.threads} threads")  # fmt: skip
    print("| dtype | cache | batch | new tokens | s/item | generated tokens |")
    print("|---|---|---|---|---|---|")
    for dtype in args.dtypes:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, dtype))
        for cache, batch, new in itertools.product(args.caches, args.batch_sizes, args.new_tokens):
            settings = generation.GenerationSettings(max_new_tokens=new, batch_size=batch)
            with kv_cache(cache):
                seconds, tokens = per_item(model, tokenizer, prompts, settings)
            print(f"| {dtype} | {cache} | {batch} | {new} | {seconds:.3f} | {tokens} |", flush=True)


if __name__ == "__main__":
    main()
