"""Evaluate one model at one stage on one test set: predictions.jsonl and metrics.json.

CLI::

    python -m rlcausality.evaluation.evaluate --settings JSON --stage base|sft|grpo --test-set NAME
    \
        --data results/data/{model}/{fmt}/{test_set}.jsonl [--manifest TRAINING_MANIFEST] \
        --predictions results/eval/{model}/{stage}/{test_set}/predictions.jsonl \
        --metrics results/eval/{model}/{stage}/{test_set}/metrics.json [--partial PATH] \
        [--threads N]

``--settings`` is the JSON of ``config.stage_settings(config, model, "evaluate")`` (inline, or
the path of a file holding it). With ``evaluate.max_samples`` N, the items are a sample
stratified by relation and number of variables (``rlcausality.evaluation.selection``), the same
items for every model, stage and baseline whatever the order of the file. metrics.json carries 95%
bootstrap intervals (``<metric>_ci95`` for accuracy, precision, recall and F1) that resample
equivalence classes (the predictions' ``class_id``), seeded
(``rlcausality.evaluation.uncertainty``).

Predictions are saved every ``evaluate.chunk_size`` items to a partial file that is not a
declared output (``--partial``, default ``partial/predictions.jsonl`` beside the outputs); a
job killed part-way resumes from its complete batches when the settings, items, data and
model are unchanged (``rlcausality.evaluation.partial``; the chunk size may differ: the batches do
not depend on it), and says so in its log. The declared outputs are
written at the end, then the partial file is removed. A progress line (items done, seconds per
item, ETA) is logged every ``evaluate.progress_interval_s`` seconds.

``main`` reads the flags into typed settings (``config.load_settings``) and an ``EvalJob`` (stage,
test set, seed and files), and calls ``run(settings, job)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcausality.evaluation import generation, vllm_generation
from rlcausality.evaluation.metrics import compute_metrics, trace_metrics
from rlcausality.evaluation.partial import PartialPredictions, fingerprint
from rlcausality.evaluation.selection import SUBSET_SEED, select_rows
from rlcausality.evaluation.uncertainty import add_intervals
from rlcausality.io import DataError, read_json, read_jsonl, sha256_file, write_json, write_jsonl
from rlcausality.models import loading
from rlcausality.progress import ProgressLog
from rlcausality.provenance import provenance
from rlcausality.settings import cli
from rlcausality.settings.blocks import Model, Settings
from rlcausality.stages import STAGES
from rlcausality.task import answer_style, hypothesis_of, item_input, parse_answer, prompt_text

__all__ = ["SUBSET_SEED", "EvalJob", "main", "run", "select_rows"]

PREDICTION_KEYS = ("id", "class_id", "relation", "num_variables", "label")


@dataclass(frozen=True)
class EvalJob:
    """One evaluation: which stage on which test set, with which sampling seed, and its files."""

    stage: str  # base, sft or grpo
    test_set: str
    seed: int  # sampling seed (temperature > 0)
    data: str  # the formatted test items (JSONL)
    predictions: str  # predictions.jsonl, written at the end
    metrics: str  # metrics.json, written at the end
    manifest: str | None  # the training manifest of an sft or grpo stage; None for base
    partial: str | None  # predictions saved while generating; None: partial/ beside the outputs


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_rows(rows: Sequence[Mapping[str, Any]], path: str) -> None:
    for number, row in enumerate(rows, start=1):
        missing = [k for k in ("id", "prompt", "label") if k not in row]
        if missing:
            raise DataError(f"{path}: item {number} lacks {', '.join(missing)}")


def generation_settings(settings: Settings, stage: str, seed: int = 0) -> Any:
    evaluate = settings.evaluate
    style = evaluate.prompt.of(stage)
    return generation.GenerationSettings(
        max_new_tokens=int(evaluate.max_new_tokens.of(style)),
        batch_size=int(evaluate.batch_size),
        temperature=float(evaluate.temperature),
        top_p=float(evaluate.top_p),
        use_vllm=bool(evaluate.use_vllm),
        seed=seed,
        top_k=0,  # explicit: neither the model's generation_config nor a library default
        repetition_penalty=1.0,
    )


def run_generation(
    model_settings: Model,
    manifest: Mapping[str, Any] | None,
    conversations: Sequence[Any],
    gen: Any,
    dtype: str = "auto",
    done: Sequence[int] = (),
    **chunking: Any,
) -> Any:
    """Load the stage's model and tokenizer and generate one completion per conversation.

    ``dtype`` is ``evaluate.dtype`` (``loading.inference_precision``). ``done``: indices of
    conversations predicted before (a resumed run): they keep their place in the batches and
    are not generated again. ``chunking`` (``chunk_size``, ``on_chunk``, ``progress``) goes to
    the backend's generate. With nothing left to generate, transformers loads no model (the
    parameters are still reported).
    """
    import torch

    parts = loading.artifacts(model_settings, dict(manifest) if manifest else None)
    tokenizer = loading.load_tokenizer(model_settings, parts.tokenizer)
    prompts = generation.render_prompts(tokenizer, conversations)
    if vllm_generation.vllm_usable(gen):
        trust = bool(model_settings.trust_remote_code)
        return vllm_generation.generate_vllm(
            parts.weights, tokenizer, prompts, gen, parts.adapter, trust, dtype, done=done,
            **chunking,
        )  # fmt: skip
    if len(set(done)) >= len(prompts):
        return generation.no_generations(tokenizer, gen)
    precision = loading.inference_precision(model_settings, dtype)
    model = loading.load_trained(
        model_settings, dict(manifest) if manifest else None, precision, merge=True
    )
    if torch.cuda.is_available() and model.device.type == "cpu":
        model = model.to("cuda")
    return generation.generate_transformers(model, tokenizer, prompts, gen, done=done, **chunking)


def manifest_summary(path: str | None, manifest: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if path is None or manifest is None:
        return None
    prov = manifest.get("provenance") or {}
    return {
        "path": str(path),
        "sha256": sha256_file(path),
        "stage": manifest.get("stage"),
        "global_step": manifest.get("global_step"),
        "settings_hash": prov.get("settings_hash"),
        "provenance": prov,
    }


def prediction_rows(
    rows: Sequence[Mapping[str, Any]],
    texts: Sequence[str],
    counts: Sequence[int],
    style: str,
    truncated: Sequence[bool] | None = None,
) -> list[dict[str, Any]]:
    """One record per item; ``style`` is the answer style (``task.answer_style``).

    ``truncated``: whether each completion reached max_new_tokens without stopping (None when
    not known).
    """
    flags = list(truncated) if truncated is not None else [None] * len(rows)
    predictions = []
    for row, text, count, cut in zip(rows, texts, counts, flags, strict=True):
        record = {key: row.get(key) for key in PREDICTION_KEYS}
        record["label"] = int(row["label"])
        # for the reports' examples: formatted rows carry the prompt, not the item's input
        record["hypothesis"] = hypothesis_of(row.get("input") or prompt_text(row.get("prompt")))
        if row.get("trace") is not None:  # the oracle trace (reasoning-prompt rows)
            record["trace"] = row["trace"]
        answer = parse_answer(text, style=style)
        record.update(
            {"completion": text, "answer": answer, "completion_tokens": count, "truncated": cut}
        )
        predictions.append(record)
    return predictions


def generation_block(settings: Settings, stage: str, gen: Any, output: Any) -> dict:
    """Every generation parameter, for metrics.json (what the backend was given, and ours)."""
    evaluate = settings.evaluate
    return {
        **output.parameters,
        "backend": output.backend,
        "prompt_style": evaluate.prompt.of(stage),
        "answer_style": answer_style(evaluate.prompt.of(stage)),
        "max_new_tokens": gen.max_new_tokens,
        "batch_size": gen.batch_size,
        "temperature": gen.temperature,
        "top_p": gen.top_p,
        "top_k": gen.top_k,
        "repetition_penalty": gen.repetition_penalty,
        "greedy": gen.greedy,
        "seed": gen.seed,
        "use_vllm": gen.use_vllm,
        "dtype": evaluate.dtype,
    }


def chunk_size(settings: Settings) -> int:
    return int(settings.evaluate.chunk_size)


def partial_path(job: EvalJob) -> Path:
    """Where predictions are saved while generating: ``--partial``, else beside the outputs."""
    if job.partial:
        return Path(job.partial)
    return Path(job.predictions).parent / "partial" / "predictions.jsonl"


def open_partial(
    job: EvalJob,
    settings: Settings,
    rows: Sequence[Mapping[str, Any]],
    data_sha: str,
    manifest: Mapping[str, Any] | None,
) -> PartialPredictions:
    """The partial predictions of this run, keyed on everything that decides them."""
    ids = [row["id"] for row in rows]
    key = fingerprint(
        settings, ids, stage=job.stage, test_set=job.test_set, seed=job.seed,
        data_sha256=data_sha, manifest_sha256=manifest["sha256"] if manifest else None,
    )  # fmt: skip
    return PartialPredictions(partial_path(job), key, ids, int(settings.evaluate.batch_size))


def predict(
    job: EvalJob,
    settings: Settings,
    manifest: Mapping[str, Any] | None,
    rows: Sequence[Mapping[str, Any]],
    partial: PartialPredictions,
) -> tuple[list[dict[str, Any]], Any, int]:
    """Predictions of every row in the rows' order (resumed ones from the partial file), the
    generations of the rest, and how many were resumed."""
    done, message = partial.resume()
    log(message)
    resumed = len(done)
    predictions = list(done)
    done_ids = {record["id"] for record in done}
    done_at = [index for index, row in enumerate(rows) if row["id"] in done_ids]
    style = answer_style(settings.evaluate.prompt.of(job.stage))
    interval = float(settings.evaluate.progress_interval_s)
    progress = ProgressLog("evaluate", len(rows), "item", interval, start=resumed)

    def save(indices: list[int], part: Any) -> None:
        chunk = [rows[i] for i in indices]
        records = prediction_rows(chunk, part.texts, part.token_counts, style, part.truncated)
        partial.append(records)
        predictions.extend(records)

    gen = generation_settings(settings, job.stage, job.seed)
    # every row, the resumed ones too: the batches are those of an uninterrupted run
    conversations = [row["prompt"] for row in rows]
    output = run_generation(
        settings.model, manifest, conversations, gen, settings.evaluate.dtype, done_at,
        chunk_size=chunk_size(settings), on_chunk=save, progress=progress,
    )  # fmt: skip
    progress.close()
    position = {row["id"]: index for index, row in enumerate(rows)}
    predictions.sort(key=lambda record: position[record["id"]])
    return predictions, output, resumed


def run(settings: Settings, job: EvalJob) -> dict[str, Any]:
    """Evaluate: predictions.jsonl and metrics.json of ``job``; returns the metrics."""
    if job.stage != "base" and not job.manifest:
        raise SystemExit(f"--manifest is required for stage {job.stage!r}")
    manifest = read_json(job.manifest) if job.manifest else None
    all_rows = list(read_jsonl(job.data))
    check_rows(all_rows, job.data)
    max_samples = settings.evaluate.max_samples
    rows = select_rows(all_rows, max_samples)
    data_sha = sha256_file(job.data)
    summary = manifest_summary(job.manifest, manifest)
    partial = open_partial(job, settings, rows, data_sha, summary)
    predictions, output, resumed = predict(job, settings, manifest, rows, partial)
    gen = generation_settings(settings, job.stage, job.seed)
    metrics = add_intervals(compute_metrics(predictions), predictions)
    if answer_style(settings.evaluate.prompt.of(job.stage)) == "reasoning":
        inputs = {str(row["id"]): item_input(row) for row in rows}
        metrics["trace"] = trace_metrics(predictions, inputs)  # None without oracle traces
    metrics.update(
        {
            "model": settings.model.name,
            "stage": job.stage,
            "test_set": job.test_set,
            "data": {
                "path": str(job.data),
                "sha256": data_sha,
                "rows": len(all_rows),
                "evaluated": len(rows),
                "max_samples": max_samples,
                "subset_seed": SUBSET_SEED,
                "sample": "all" if max_samples is None else "stratified by relation x size",
            },
            "manifest": summary,
            "generation": generation_block(settings, job.stage, gen, output),
            "resumed_items": resumed,
            "provenance": provenance(settings.to_dict()),
        }
    )
    write_jsonl(job.predictions, predictions)
    write_json(job.metrics, metrics)
    partial.remove()
    return metrics


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = cli.parser(__doc__, "evaluate settings: JSON or a JSON file")
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--test-set", required=True)
    parser.add_argument("--data", required=True, help="formatted test JSONL")
    parser.add_argument("--manifest", default=None, help="training manifest (sft/grpo)")
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument(
        "--partial", default=None, help="predictions saved while generating (default: beside)"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (temperature > 0)")
    return parser.parse_args(argv)


def job_of(args: argparse.Namespace) -> EvalJob:
    """The ``EvalJob`` the parsed flags name."""
    return EvalJob(
        stage=args.stage,
        test_set=args.test_set,
        seed=args.seed,
        data=args.data,
        predictions=args.predictions,
        metrics=args.metrics,
        manifest=args.manifest,
        partial=args.partial,
    )


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = cli.configure(parse_args(argv), needs=("evaluate",))
    run(args.settings, job_of(args))


if __name__ == "__main__":
    cli.entry(main)
