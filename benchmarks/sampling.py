"""What a model's sampled completions of GRPO prompts carry, at one or more temperatures.

For each temperature it samples ``--samples`` completions of ``--prompts`` train prompts (a
seeded draw, of one relation when ``--relation`` is given) with the project's generation
(``rlcausality.evaluation.generation``), scores them with GRPO's rewards and prints: the share
answering No, right (correctness), consistent (the answer its own lists imply), the trace
reward's mean, and the share of groups of ``--group`` completions (GRPO's ``num_generations``)
whose answers disagree, i.e. groups that carry an answer signal. Sampling at a higher
temperature reaches answers the policy seldom gives, at the price of its reading.

    python benchmarks/sampling.py --model results/models/smollm2-135m/sft/merged \\
        --rows results/data/smollm2-135m/grpo/train.jsonl --relation collider \\
        --temperatures 1.0 1.3 --prompts 16 --samples 8 --threads 2
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Sequence
from pathlib import Path

from rlcausality.evaluation.generation import (
    GenerationSettings,
    generate_transformers,
    render_prompts,
)
from rlcausality.io import read_jsonl
from rlcausality.training.prepass import disagrees
from rlcausality.training.rewards import consistency, correctness, trace


def chosen_rows(path: Path, relation: str | None, count: int, seed: int) -> list[dict]:
    rows = [row for row in read_jsonl(path) if relation in (None, row["relation"])]
    if not rows:
        raise SystemExit(f"{path}: no row of relation {relation!r}")
    return random.Random(seed).sample(rows, min(count, len(rows)))


def scores(rows: Sequence[dict], texts: Sequence[str], samples: int, group: int) -> dict:
    prompts = [row["prompt"] for row in rows for _ in range(samples)]
    completions = [[{"role": "assistant", "content": text}] for text in texts]
    labels = [row["label"] for row in rows for _ in range(samples)]
    right = correctness(prompts, completions, label=labels)
    oracle = [row["trace"] for row in rows for _ in range(samples)]
    sizes = [row["num_variables"] for row in rows for _ in range(samples)]
    groups = [right[i : i + group] for i in range(0, len(right), group)]
    return {
        "No": statistics.fmean(text.rstrip().endswith("No") for text in texts),
        "right": statistics.fmean(right),
        "consistent": statistics.fmean(consistency(prompts, completions)),
        "trace": statistics.fmean(trace(prompts, completions, trace=oracle, num_variables=sizes)),
        "groups disagreeing": statistics.fmean(disagrees(g) for g in groups),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="a merged model folder")
    parser.add_argument("--rows", required=True, type=Path, help="GRPO-formatted rows (JSONL)")
    parser.add_argument("--relation", default=None)
    parser.add_argument("--temperatures", nargs="+", type=float, default=[1.0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--group", type=int, default=4, help="GRPO's num_generations")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.samples % args.group:
        parser.error("--samples must be a multiple of --group")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    rows = chosen_rows(args.rows, args.relation, args.prompts, args.seed)
    prompts = render_prompts(
        tokenizer, [row["prompt"] for row in rows for _ in range(args.samples)]
    )
    print(f"{len(rows)} prompts x {args.samples} samples, relation {args.relation or 'any'}")
    for temperature in args.temperatures:
        settings = GenerationSettings(
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            temperature=temperature,
            seed=args.seed,
        )
        texts = generate_transformers(model, tokenizer, prompts, settings).texts
        found = scores(rows, texts, args.samples, args.group)
        cells = ", ".join(f"{name} {value:.2f}" for name, value in found.items())
        print(f"temperature {temperature:g}: {cells}", flush=True)


if __name__ == "__main__":
    main()
