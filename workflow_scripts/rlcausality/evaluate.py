"""Evaluate one model at one stage on one test set: predictions.jsonl and metrics.json.

CLI::

    python -m rlcausality.evaluate --settings JSON --stage base|sft|grpo --test-set NAME \
        --data results/data/{model}/{fmt}/{test_set}.jsonl [--manifest TRAINING_MANIFEST] \
        --predictions results/eval/{model}/{stage}/{test_set}/predictions.jsonl \
        --metrics results/eval/{model}/{stage}/{test_set}/metrics.json [--threads N]

``--settings`` is the JSON of ``config.stage_settings(config, model, "evaluate")`` (inline, or
the path of a file holding it). With ``evaluate.max_samples`` N, the items are the first N after
a stable seeded shuffle keyed on each item's id (``select_rows``), so every model and stage is
scored on identical items whatever the order of its file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.answers import answer_style, parse_answer
from rlcausality.io import DataError, read_json, read_jsonl, sha256_file, write_json, write_jsonl
from rlcausality.metrics import compute_metrics
from rlcausality.provenance import provenance

SUBSET_SEED = 0
STAGES = ("base", "sft", "grpo")
PREDICTION_KEYS = ("id", "relation", "num_variables", "label")


def _subset_key(row_id: Any, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def select_rows(
    rows: Sequence[Mapping[str, Any]], max_samples: int | None, seed: int = SUBSET_SEED
) -> list[Mapping[str, Any]]:
    """All rows in file order; with ``max_samples``, the first N after a stable id-keyed shuffle."""
    if max_samples is None:
        return list(rows)
    shuffled = sorted(rows, key=lambda row: _subset_key(row["id"], seed))
    return shuffled[:max_samples]


def load_settings(text: str) -> dict[str, Any]:
    """Settings given inline as JSON, or as the path of a JSON file."""
    if text.lstrip().startswith("{"):
        return json.loads(text)
    return read_json(text)


def check_rows(rows: Sequence[Mapping[str, Any]], path: str) -> None:
    for number, row in enumerate(rows, start=1):
        missing = [k for k in ("id", "prompt", "label") if k not in row]
        if missing:
            raise DataError(f"{path}: item {number} lacks {', '.join(missing)}")


def tokenizer_source(model_settings: Mapping[str, Any], manifest: Mapping[str, Any] | None) -> str:
    """Where the stage's tokenizer lives: the merged model, the adapter, or the base model."""
    if manifest is None:
        return str(model_settings["path"])
    if manifest.get("merged_path"):
        return str(manifest["merged_path"])
    adapter = manifest.get("adapter_path")
    if adapter and (Path(adapter) / "tokenizer_config.json").exists():
        return str(adapter)
    return str(manifest["base_model"])


def generation_settings(settings: Mapping[str, Any], stage: str, seed: int = 0) -> Any:
    from rlcausality.generation import GenerationSettings

    evaluate = settings["evaluate"]
    style = evaluate["prompt"][stage]
    return GenerationSettings(
        max_new_tokens=int(evaluate["max_new_tokens"][style]),
        batch_size=int(evaluate["batch_size"]),
        temperature=float(evaluate["temperature"]),
        top_p=float(evaluate["top_p"]),
        use_vllm=bool(evaluate.get("use_vllm", False)),
        seed=seed,
    )


def run_generation(
    model_settings: Mapping[str, Any],
    manifest: Mapping[str, Any] | None,
    conversations: Sequence[Any],
    gen: Any,
) -> Any:
    """Load the stage's model and tokenizer and generate one completion per conversation."""
    import torch

    from rlcausality import generation
    from rlcausality.models import loading

    tokenizer = loading.load_tokenizer(
        dict(model_settings), tokenizer_source(model_settings, manifest)
    )
    prompts = generation.render_prompts(tokenizer, conversations)
    if generation.vllm_usable(gen):
        if manifest is None:
            path, adapter = str(model_settings["path"]), None
        elif manifest.get("merged_path"):
            path, adapter = str(manifest["merged_path"]), None
        else:
            path, adapter = str(manifest["base_model"]), str(manifest["adapter_path"])
        trust = bool(model_settings.get("trust_remote_code"))
        return generation.generate_vllm(path, tokenizer, prompts, gen, adapter, trust)
    model = loading.load_trained(dict(model_settings), dict(manifest) if manifest else None)
    if torch.cuda.is_available() and model.device.type == "cpu":
        model = model.to("cuda")
    return generation.generate_transformers(model, tokenizer, prompts, gen)


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
    rows: Sequence[Mapping[str, Any]], texts: Sequence[str], counts: Sequence[int], style: str
) -> list[dict[str, Any]]:
    """One record per item; ``style`` is the answer style (``answers.answer_style``)."""
    predictions = []
    for row, text, count in zip(rows, texts, counts, strict=True):
        record = {key: row.get(key) for key in PREDICTION_KEYS}
        record["label"] = int(row["label"])
        answer = parse_answer(text, style=style)
        record.update({"completion": text, "answer": answer, "completion_tokens": count})
        predictions.append(record)
    return predictions


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from rlcausality.models.loading import configure_threads

    settings = load_settings(args.settings)
    if args.stage != "base" and not args.manifest:
        raise SystemExit(f"--manifest is required for stage {args.stage!r}")
    configure_threads(args.threads)
    manifest = read_json(args.manifest) if args.manifest else None
    all_rows = list(read_jsonl(args.data))
    check_rows(all_rows, args.data)
    max_samples = settings["evaluate"].get("max_samples")
    rows = select_rows(all_rows, max_samples)
    gen = generation_settings(settings, args.stage, args.seed)
    output = run_generation(settings["model"], manifest, [r["prompt"] for r in rows], gen)
    style = answer_style(settings["evaluate"]["prompt"][args.stage])
    predictions = prediction_rows(rows, output.texts, output.token_counts, style)
    metrics = compute_metrics(predictions)
    metrics.update(
        {
            "model": settings["model"]["name"],
            "stage": args.stage,
            "test_set": args.test_set,
            "data": {
                "path": str(args.data),
                "sha256": sha256_file(args.data),
                "rows": len(all_rows),
                "evaluated": len(rows),
                "max_samples": max_samples,
                "subset_seed": SUBSET_SEED,
            },
            "manifest": manifest_summary(args.manifest, manifest),
            "generation": {
                "backend": output.backend,
                "prompt_style": settings["evaluate"]["prompt"][args.stage],
                "max_new_tokens": gen.max_new_tokens,
                "batch_size": gen.batch_size,
                "temperature": gen.temperature,
                "top_p": gen.top_p,
                "greedy": gen.greedy,
                "seed": gen.seed,
                "use_vllm": gen.use_vllm,
            },
            "provenance": provenance(settings),
        }
    )
    write_jsonl(args.predictions, predictions)
    write_json(args.metrics, metrics)
    return metrics


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", required=True, help="evaluate settings: JSON or a JSON file")
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--test-set", required=True)
    parser.add_argument("--data", required=True, help="formatted test JSONL")
    parser.add_argument("--manifest", default=None, help="training manifest (sft/grpo)")
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (temperature > 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    evaluate(parse_args(argv))


if __name__ == "__main__":
    main()
