"""GRPO's prompts chosen by a pre-pass: the prompts on which the starting policy disagrees.

A GRPO group whose completions are all right or all wrong has no answer signal: correctness
is the same for every completion, so its advantage is zero (docs/demo.md: a third to a half of
the demo's groups). With ``grpo.prepass_samples: k`` the job first samples ``k`` completions of
each train prompt from the policy GRPO starts from (SFT's adapter), as GRPO will (the same
temperature, top-p and completion length), scores their answers against the label, and trains
on the prompts where the ``k`` answers disagree (some right, some wrong) alone.

The prompts are visited in an order drawn from ``grpo.seed``, a chunk at a time, until as
many prompts are kept as the run's steps read (``prompts_needed``; every prompt when the run is
sized in epochs). If the train rows run out first, the run trains on those kept (its steps go
round them again) and the record says so; none kept is an error that names the rows.

The choice is saved in the stage folder (``prepass.json``: the fingerprint of what decides it,
the kept rows' ids and each visited prompt's right answers), so a resumed job reads it instead
of sampling again, and the manifest's ``data.train.prepass`` gives its counts. It runs in a
single process and not under ZeRO-3, whose weights are partitioned until the trainer starts
(config validation says so before any job: ``settings.validation``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlcausality.evaluation.generation import (
    GenerationSettings,
    generate_transformers,
    render_prompts,
)
from rlcausality.io import read_json, sha256_file, write_json
from rlcausality.progress import ProgressLog
from rlcausality.settings.blocks import Grpo, Settings, deciding
from rlcausality.training.budget import PREPASS_MIN_BATCH
from rlcausality.training.lora import TrainableModel, zero3_enabled
from rlcausality.training.rewards import correctness

PREPASS_FILE = "prepass.json"
CHUNK_PROMPTS = 16  # prompts sampled per call; the choice is the same for any run length


def prompts_needed(args: Any, rows: int) -> int:
    """How many distinct prompts the run's steps read: ``max_steps`` optimizer steps of
    ``generation_batch_size / num_generations`` prompts per generation, one generation per
    ``steps_per_generation`` micro-batches, each reused ``num_iterations`` times; ``rows`` when
    the run is sized in epochs (``max_steps`` -1)."""
    if int(args.max_steps) <= 0:
        return rows
    per_generation = int(args.generation_batch_size) // int(args.num_generations)
    generations = (
        int(args.max_steps)
        * int(args.gradient_accumulation_steps)
        / int(args.steps_per_generation)
        / int(args.num_iterations)
    )
    return min(rows, max(1, math.ceil(generations * per_generation)))


def disagrees(rights: Sequence[int]) -> bool:
    """Some of a prompt's sampled answers are right and some are not."""
    return 0 < sum(rights) < len(rights)


def right_answers(texts: Sequence[str], label: int) -> list[int]:
    """1 for each completion whose answer (after a closed think block) is ``label``: GRPO's
    correctness reward."""
    scores = correctness([None] * len(texts), list(texts), label=[label] * len(texts))
    return [int(score) for score in scores]


def fingerprint(settings: Settings, train_path: str, init_manifest: str | None) -> dict[str, Any]:
    """What decides the choice: GRPO's settings and the model's (less operational keys), the
    train rows and the policy it starts from."""
    deciding_settings = deciding(settings.to_dict())
    return {
        "grpo": deciding_settings["grpo"],
        "model": deciding_settings["model"],
        "train_sha256": sha256_file(train_path),
        "init_manifest_sha256": sha256_file(init_manifest) if init_manifest else None,
    }


def sampling(stage: Grpo, seed: int, batch_size: int) -> GenerationSettings:
    """GRPO's own sampling: its temperature, top-p and completion length."""
    return GenerationSettings(
        max_new_tokens=int(stage.max_completion_length),
        batch_size=batch_size,
        temperature=float(stage.temperature),
        top_p=float(stage.top_p),
        seed=seed,
    )


def sample_and_choose(
    model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], stage: Grpo, args: Any
) -> dict[str, Any]:
    """Visit the rows in the seed's order, ``stage.prepass_samples`` completions each, until
    ``prompts_needed`` disagreeing prompts are kept; returns the record of ``prepass.json``."""
    import torch

    k = int(stage.prepass_samples or 0)
    needed = prompts_needed(args, len(rows))
    if not args.use_cpu and next(model.parameters()).device.type == "cpu":
        model.to(args.device)  # where the trainer would put it (a quantised base is there)
    order = list(range(len(rows)))
    random.Random(int(stage.seed)).shuffle(order)
    batch_size = max(PREPASS_MIN_BATCH, int(args.generation_batch_size))
    autocast = torch.autocast("cpu" if args.use_cpu else "cuda", torch.bfloat16, enabled=args.bf16)
    log = ProgressLog("prepass", len(rows) * k, "completion", 60.0)
    kept: list[str] = []  # the kept rows' ids
    visited: list[dict[str, Any]] = []
    padding_side = tokenizer.padding_side  # generation pads on the left; given back after
    for chunk_number, start in enumerate(range(0, len(order), CHUNK_PROMPTS)):
        if len(kept) >= needed:
            break
        chunk = order[start : start + CHUNK_PROMPTS]
        prompts = render_prompts(tokenizer, [rows[i]["prompt"] for i in chunk for _ in range(k)])
        settings = sampling(stage, int(stage.seed) + chunk_number, batch_size)
        with autocast:
            texts = generate_transformers(model, tokenizer, prompts, settings, progress=log).texts
        for position, index in enumerate(chunk):
            rights = right_answers(texts[position * k : (position + 1) * k], rows[index]["label"])
            visited.append({"id": rows[index]["id"], "right": rights})
            if disagrees(rights) and len(kept) < needed:
                kept.append(rows[index]["id"])
    log.close()
    tokenizer.padding_side = padding_side
    return {
        "samples": k,
        "needed": needed,
        "visited": len(visited),
        "kept": kept,
        "completions": len(visited) * k,
        "prompts": visited,
    }


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The counts the manifest keeps (``data.train.prepass``)."""
    visited = record["prompts"]
    return {
        "samples": record["samples"],
        "needed": record["needed"],
        "visited": record["visited"],
        "kept": len(record["kept"]),
        "completions": record["completions"],
        "disagreeing_share": (
            sum(disagrees(p["right"]) for p in visited) / len(visited) if visited else None
        ),
        "all_right": sum(sum(p["right"]) == len(p["right"]) for p in visited),
        "all_wrong": sum(sum(p["right"]) == 0 for p in visited),
    }


def refusal(args: Any) -> str | None:
    """Why the pre-pass cannot run under these trainer arguments, or None: it generates on
    one process before the trainer starts (the checks config validation makes before a job)."""
    if int(args.world_size) > 1:
        return (
            f"the pre-pass runs on one process, this run has {args.world_size}; run GRPO on "
            "one GPU or leave prepass_samples out"
        )
    if zero3_enabled(args):
        return (
            "under DeepSpeed ZeRO-3 the weights are partitioned until the trainer starts, so "
            "the model cannot generate before; set grpo.deepspeed to zero2 or null"
        )
    return None


def choose_prompts(
    trainable: TrainableModel,
    tokenizer: Any,
    data: Any,
    settings: Settings,
    args: Any,
    train_path: str,
    output_dir: str | Path,
) -> tuple[Any, dict[str, Any] | None]:
    """``data`` (a ``datasets.Dataset`` of GRPO rows) less the prompts the starting policy
    (``trainable``: the model GRPO trains, and the init manifest it was made from) agrees on,
    and the pre-pass counts; ``data`` as is and None without ``prepass_samples``."""
    stage = settings.grpo
    if not stage.prepass_samples:
        return data, None
    problem = refusal(args)
    if problem:
        raise ValueError(f"grpo.prepass_samples: {problem}")
    path = Path(output_dir) / PREPASS_FILE
    expected = fingerprint(settings, train_path, trainable.init_manifest)
    record = _saved(path, expected)
    if record is None:
        print(f"prepass: {stage.prepass_samples} completions per prompt", flush=True)
        record = sample_and_choose(trainable.model, tokenizer, list(data), stage, args)
        record["fingerprint"] = expected
        write_json(path, record)
    else:
        print(f"prepass: the choice saved in {path} (a resumed run)", flush=True)
    if not record["kept"]:
        raise ValueError(
            f"{train_path}: the pre-pass kept no prompt: on all {record['visited']} the "
            f"{record['samples']} sampled answers agreed (see {path}); leave "
            "grpo.prepass_samples out, or raise it or grpo.temperature"
        )
    counts = summary(record)
    print(
        f"prepass: kept {counts['kept']} of {counts['visited']} prompts "
        f"({counts['all_right']} all right, {counts['all_wrong']} all wrong), "
        f"{counts['completions']} completions",
        flush=True,
    )
    position = {row_id: index for index, row_id in enumerate(data["id"])}
    return data.select([position[row_id] for row_id in record["kept"]]), counts


def _saved(path: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The saved choice when it was made for this run's fingerprint, else None."""
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != _plain(expected):
        return None
    return record


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    import json

    return json.loads(json.dumps(value, default=str))
