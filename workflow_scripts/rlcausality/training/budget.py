"""Step counts of the training jobs: what the plan (``rlcausality.plan``) times and checks.

Computed at parse time (the dry-run prints one line per training job), from the resolved
settings alone: no model or data is loaded.

* SFT, as ``transformers.Trainer`` counts: ``ceil(ceil(rows / (batch × processes)) / accum)``
  optimizer steps per epoch.
* GRPO, as TRL's ``RepeatSampler`` counts: every optimizer step consumes
  ``batch × processes × accum / num_generations`` prompts (the generation batch, with
  ``steps_per_generation`` = accumulation), so ``floor(rows / that)`` steps per epoch.
* ``max_steps`` > 0 replaces the epoch count, as in the trainers.

The rows are the formatted train file's (``results/data/{model}/{fmt}/train.stats.json``,
``rows_out``: after the length filter and ``format.max_train_samples``) once it exists, else
``format.max_train_samples`` when set, else the corpus's train split: counted from
``results/data/corr2cause/stats.json`` when it exists, else estimated from the generator's
item counts (exact per N, times the train fraction: splits are drawn by class, stratified by N).
The time of a step and whether a job fits its GPU and runtime are the plan's
(``rlcausality.plan``), which builds on these counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcausality import launch
from rlcausality.settings.blocks import Grpo, Settings, Sft
from rlcausality.stages import train_format

# Items the exact generator yields per number of variables (6 hypotheses x pairs x classes).
ITEMS_PER_N = {2: 12, 3: 90, 4: 720, 5: 8_520, 6: 198_090}
CORPUS_STATS = Path("results/data/corr2cause/stats.json")
# GRPO's pre-pass (rlcausality.training.prepass) generates this many completions together, or
# GRPO's own generation batch when that is larger (it fits the GPU by construction): the
# demo's evaluation batch. Here so that the plan reads it without importing torch.
PREPASS_MIN_BATCH = 32


@dataclass(frozen=True)
class JobBudget:
    rule: str
    model: str
    launcher: str
    processes: int
    rows: int | None
    steps: int | None
    seconds_per_step: float | None  # resources.<stage>.seconds_per_step: a measured value
    runtime_min: int


def corpus_split_rows(
    config: dict[str, Any], split: str, stats_path: Path = CORPUS_STATS
) -> int | None:
    """Rows of one corpus split: counted if the corpus exists, else estimated. The robustness
    sets (test_paraphrased, test_refactored) rewrite the test split item by item."""
    if stats_path.is_file():
        try:
            splits = json.loads(stats_path.read_text("utf-8"))["splits"]
            return int(splits[split]["items"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    data = config["data"]
    if data["source"] != "generate":
        return None
    gen = data["generate"]
    base = "test" if split.startswith("test_") else split
    if base not in gen["splits"]:
        return None
    low, high = gen["num_variables"]
    items = sum(ITEMS_PER_N.get(n, 0) for n in range(low, high + 1))
    rows = round(items * gen["splits"][base])
    cap = (gen.get("max_items") or {}).get(base)
    return min(rows, cap) if cap else rows


def corpus_train_rows(config: dict[str, Any], stats_path: Path = CORPUS_STATS) -> int | None:
    """Rows of the corpus's train split: counted if the corpus exists, else estimated."""
    return corpus_split_rows(config, "train", stats_path)


def format_stats(model: str, fmt: str, split: str) -> dict[str, Any] | None:
    """The stats the format job wrote for a model's formatted split, if it has run."""
    path = Path(f"results/data/{model}/{fmt}/{split}.stats.json")
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def formatted_rows(model: str, fmt: str, split: str) -> int | None:
    stats = format_stats(model, fmt, split)
    rows = stats.get("rows_out") if isinstance(stats, dict) else None
    return int(rows) if isinstance(rows, int) else None


def sft_steps(stage: Sft, rows: int | None, processes: int) -> int | None:
    if stage.max_steps > 0:
        return int(stage.max_steps)
    if rows is None:
        return None
    batches = math.ceil(rows / (stage.per_device_train_batch_size * processes))
    per_epoch = max(1, math.ceil(batches / stage.gradient_accumulation_steps))
    return math.ceil(per_epoch * stage.num_train_epochs)


def grpo_prompts_per_step(stage: Grpo, processes: int) -> int:
    """The prompts one GRPO optimizer step reads: its generation batch over num_generations."""
    completions = stage.per_device_train_batch_size * processes * stage.gradient_accumulation_steps
    return completions // stage.num_generations


def grpo_steps(stage: Grpo, rows: int | None, processes: int) -> int | None:
    if stage.max_steps > 0:
        return int(stage.max_steps)
    if rows is None:
        return None
    prompts_per_step = grpo_prompts_per_step(stage, processes)
    return math.ceil(max(1, rows // prompts_per_step) * stage.num_train_epochs)


STEP_COUNTERS = {"sft": sft_steps, "grpo": grpo_steps}


def job_budget(config: dict[str, Any], settings: Settings, rule: str) -> JobBudget:
    """The budget of one training job (``rule`` sft or grpo) of a resolved model."""
    resources = settings.resources.of(rule)
    stage = settings.of(rule)
    processes = max(1, resources.gpus)
    deepspeed = launch.deepspeed_stage(stage.deepspeed, settings.model.quantized)
    deepspeed = deepspeed if resources.gpus else None
    fmt = train_format(rule, settings.format.sft_target)
    rows = formatted_rows(settings.model.name, fmt, "train")
    if rows is None:
        rows = settings.format.max_train_samples or corpus_train_rows(config)
    return JobBudget(
        rule=rule,
        model=settings.model.name,
        launcher=launch.describe(resources.gpus, deepspeed),
        processes=processes,
        rows=rows,
        steps=STEP_COUNTERS[rule](stage, rows, processes),
        seconds_per_step=resources.seconds_per_step,
        runtime_min=resources.runtime,
    )
