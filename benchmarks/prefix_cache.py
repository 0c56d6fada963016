"""Seconds per item of the evaluation's generation with and without the shared prefix cache.

The demo's test items (the stratified sample evaluation scores, ``--max-samples``) go through
``rlcausality.evaluation.generation.generate_transformers`` twice, as the evaluate job runs it:
computing every prompt whole (``share_prefix=False``: before), then reading each shared prefix from
its cache (after). Each batch is timed on its own (a chunk of one batch); the figures are the median
over batches of a batch's seconds per item, and the whole run's. The greedy completions of the
two runs are compared item by item (``--compare-batch-size``: and those of whole prompts in
batches of another size, for the change the batching alone makes). Defaults are the demo's
evaluation (profiles/demo: SmolLM2, reasoning prompts, bf16, batches of 32, 128 new tokens).
It also prints the share of decoding steps spent on rows that had already stopped (a batch
decodes until its longest completion ends), and with ``--continuous-batching`` times
transformers' continuous batching (``generate_batch``) on the same prompts. Run from a workflow
directory where the model and the formatted data exist
(``snakemake --profile profiles/demo results/models/smollm2-135m/base/manifest.json
results/data/smollm2-135m/grpo/test.jsonl``)::

    OMP_NUM_THREADS=1 python benchmarks/prefix_cache.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.generation.configuration_utils import ContinuousBatchingConfig

from rlcausality import task
from rlcausality.evaluation import generation
from rlcausality.evaluation.selection import select_rows
from rlcausality.io import read_jsonl


@dataclass(frozen=True)
class Timing:
    """One run: its generations, each batch's seconds per item, the whole run's, and its
    batches (prompt indices)."""

    output: Any
    per_batch: list[float]
    total: float
    batches: list[list[int]]

    @property
    def median(self) -> float:
        return statistics.median(self.per_batch)

    def idle_share(self) -> float:
        """The share of the batches' decoding steps spent on rows that had already stopped (a
        batch decodes until its longest completion ends)."""
        counts = self.output.token_counts
        spent = sum(max(counts[i] for i in batch) * len(batch) for batch in self.batches)
        return 1 - sum(counts) / spent if spent else 0.0


def timed_run(
    model: Any, tokenizer: Any, prompts: Sequence[str], settings: Any, share_prefix: bool
) -> Timing:
    """Generate every prompt, one batch per chunk, timing each batch."""
    per_batch: list[float] = []
    batches: list[list[int]] = []
    mark = [time.perf_counter()]

    def lap(indices: list[int], _: Any) -> None:
        now = time.perf_counter()
        per_batch.append((now - mark[0]) / len(indices))
        batches.append(list(indices))
        mark[0] = now

    start = mark[0]
    output = generation.generate_transformers(
        model, tokenizer, prompts, settings, chunk_size=settings.batch_size, on_chunk=lap,
        share_prefix=share_prefix,
    )  # fmt: skip
    return Timing(output, per_batch, (time.perf_counter() - start) / len(prompts), batches)


def continuous_batching(
    model: Any, tokenizer: Any, prompts: Sequence[str], settings: Any
) -> tuple[list[str], float]:
    """transformers' continuous batching (``generate_batch``: paged attention, finished rows
    replaced at once, shared prompt blocks cached): each completion's text and the seconds
    per item."""
    stop = generation.stop_token_ids(tokenizer)
    config = generation.generation_config(settings, tokenizer, stop)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    batching = ContinuousBatchingConfig(max_requests_per_batch=settings.batch_size)
    start = time.perf_counter()
    results = model.generate_batch(
        encoded, generation_config=config, continuous_batching_config=batching, warmup=False
    )
    seconds = (time.perf_counter() - start) / len(prompts)
    texts = [
        tokenizer.decode(r.generated_tokens, skip_special_tokens=True) for r in results.values()
    ]
    return texts, seconds


def demo_rows(path: str, max_samples: int | None, classes: int | None) -> list[dict[str, Any]]:
    """The items evaluation scores; with ``classes``, those of the first so many classes."""
    rows = select_rows(list(read_jsonl(path)), max_samples)
    if classes is None:
        return rows
    kept = sorted({row["class_id"] for row in rows})[:classes]
    return [row for row in rows if row["class_id"] in kept]


def differing(before: Any, after: Any) -> list[int]:
    """Items whose completion (text or token count) differs between two runs."""
    pairs = zip(before.texts, after.texts, before.token_counts, after.token_counts, strict=True)
    return [i for i, (a, b, m, n) in enumerate(pairs) if a != b or m != n]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="results/models/smollm2-135m/base")
    parser.add_argument("--data", default="results/data/smollm2-135m/grpo/test.jsonl")
    parser.add_argument("--max-samples", type=int, default=340, help="evaluate.max_samples")
    parser.add_argument("--classes", type=int, default=None, help="only the first K classes")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--shared-batch-size", type=int, default=None,
        help="batches of this size for the shared prefix (default: --batch-size)",
    )  # fmt: skip
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--compare-batch-size", type=int, default=None,
        help="also compute every prompt whole in batches of this size: how many completions "
        "the batch size alone changes",
    )  # fmt: skip
    parser.add_argument(
        "--continuous-batching", action="store_true",
        help="also time transformers' continuous batching (generate_batch) on the same prompts",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = demo_rows(args.data, args.max_samples, args.classes)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype))
    prompts = generation.render_prompts(tokenizer, [row["prompt"] for row in rows])
    settings = generation.GenerationSettings(
        max_new_tokens=args.new_tokens, batch_size=args.batch_size
    )
    shared = generation.GenerationSettings(
        max_new_tokens=args.new_tokens, batch_size=args.shared_batch_size or args.batch_size
    )
    before = timed_run(model, tokenizer, prompts, settings, share_prefix=False)
    after = timed_run(model, tokenizer, prompts, shared, share_prefix=True)
    changed = differing(before.output, after.output)
    classes = len({row["class_id"] for row in rows})
    print(f"{len(prompts)} items ({classes} classes), {args.dtype}, batches of "
          f"{args.batch_size} (shared prefix: {shared.batch_size}), {args.new_tokens} new "
          f"tokens, {args.threads} threads")  # fmt: skip
    print("| run | median s/item (per batch) | s/item (whole run) | tokens generated |")
    print("|---|---|---|---|")
    for name, run in (("whole prompts (before)", before), ("shared prefix (after)", after)):
        tokens = sum(run.output.token_counts)
        print(f"| {name} | {run.median:.3f} | {run.total:.3f} | {tokens} |")
    print(f"speed-up: {before.median / after.median:.2f}x (median), "
          f"{before.total / after.total:.2f}x (whole run)")  # fmt: skip
    print(f"greedy completions identical: {not changed} "
          f"({len(prompts) - len(changed)} of {len(prompts)} items the same)")  # fmt: skip
    answers = [
        [task.parse_answer(text, style="reasoning") for text in run.output.texts]
        for run in (before, after)
    ]
    same = sum(a == b for a, b in zip(*answers, strict=True))
    print(f"answers (Yes, No or none) identical: {same} of {len(prompts)} items")
    print(f"decoding steps of rows that had stopped: {after.idle_share():.1%} of the batches'")
    for index in changed:
        print(f"  differs: {rows[index]['id']}")
    if args.continuous_batching:
        texts, seconds = continuous_batching(model, tokenizer, prompts, settings)
        same = sum(a.strip() == b.strip() for a, b in zip(after.output.texts, texts, strict=True))
        print(f"continuous batching (generate_batch): {seconds:.3f} s/item, "
              f"{after.total / seconds:.2f}x the shared prefix's speed; {same} of "
              f"{len(prompts)} completions as the shared prefix's")  # fmt: skip
    if args.compare_batch_size:
        other = generation.GenerationSettings(
            max_new_tokens=args.new_tokens, batch_size=args.compare_batch_size
        )
        rebatched = timed_run(model, tokenizer, prompts, other, share_prefix=False)
        moved = differing(before.output, rebatched.output)
        same = len(prompts) - len(moved)
        print(f"whole prompts in batches of {args.compare_batch_size} against "
              f"{args.batch_size}: {same} of {len(prompts)} items the same")  # fmt: skip


if __name__ == "__main__":
    main()
