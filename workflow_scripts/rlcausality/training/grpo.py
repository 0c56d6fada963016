"""GRPO (LoRA / QLoRA) on formatted prompt rows, rewarded by answer correctness and format.

CLI::

    python -m rlcausality.training.grpo --settings JSON --train F.jsonl \
        [--init-manifest SFT_MANIFEST] --output-dir DIR --manifest DIR/manifest.json \
        [--max-prompt-length N] [--threads N]

``grpo.init: sft`` continues training the SFT adapter named by ``--init-manifest``;
``grpo.init: base`` puts a fresh LoRA on the base model. Prompts longer than the prompt limit
(``--max-prompt-length``, else the settings' ``format.max_length`` when present, else the
tokenizer's context minus ``max_completion_length``) are dropped: GRPOConfig has no prompt cap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcausality import launch
from rlcausality.data.chat_format import token_lengths
from rlcausality.io import read_jsonl
from rlcausality.models.families import get_family
from rlcausality.models.loading import load_tokenizer
from rlcausality.progress import trainer_callback
from rlcausality.settings import cli
from rlcausality.settings.blocks import Settings, Tracking
from rlcausality.training import lora, prepass, tracking
from rlcausality.training import stage as training
from rlcausality.training.rewards import get_reward_functions

# the columns the reward functions get (the oracle trace's body for the ``trace`` reward)
GRPO_COLUMNS = ("prompt", "label", "id", "relation", "num_variables", "trace")
COMPLETIONS_PRINTED = 2  # logged completions TRL prints to the job log per logged step


def prompt_limit(settings: Settings, tokenizer: Any, requested: int | None) -> int:
    if requested:
        return requested
    if settings.format is not None:
        return int(settings.format.max_length)
    context = int(getattr(tokenizer, "model_max_length", 0) or 0)
    if 0 < context < 10**8:
        return max(1, context - int(settings.grpo.max_completion_length))
    return 1024


def load_prompts(path: str | Path, tokenizer: Any, limit: int) -> tuple[Any, int, int]:
    """The prompt rows whose rendered prompt fits ``limit`` tokens, how many were dropped, and
    the longest kept prompt's tokens."""
    from datasets import Dataset

    rows = [{column: row.get(column) for column in GRPO_COLUMNS} for row in read_jsonl(path)]
    for row in rows:
        row["label"] = int(row["label"])
    lengths = token_lengths(tokenizer, rows, "grpo")
    kept = [row for row, n in zip(rows, lengths, strict=True) if n <= limit]
    if not kept:
        raise ValueError(f"{path}: no prompt fits {limit} tokens ({len(rows)} rows read)")
    longest = max(n for n in lengths if n <= limit)
    return Dataset.from_list(kept), len(rows) - len(kept), longest


def use_vllm(settings: Settings) -> bool:
    """Whether rollouts use vLLM: as configured, or a loud error when it cannot be had.

    ``grpo.use_vllm: true`` never falls back to ``generate`` silently: without a GPU or without
    the vllm package the job stops and says so (config validation already refuses vLLM for a
    quantised base, an open TRL bug: trl#4973).
    """
    if not settings.grpo.use_vllm:
        return False
    launch.require_vllm("grpo")
    return True


def vllm_options(settings: Settings, longest_prompt: int) -> dict[str, Any]:
    """GRPOConfig's vLLM arguments: colocated rollouts (the training GPUs, no `trl vllm-serve`
    job), a model length of the longest prompt plus the completion (what the run plan prices),
    and ``grpo.vllm_gpu_memory_utilization`` when set (else TRL's 0.3)."""
    stage = settings.grpo
    options: dict[str, Any] = {
        "vllm_mode": "colocate",
        # Without a length TRL passes none and vLLM reserves KV cache for the model's whole
        # context (Phi-3.5: 131k tokens, ~48 GiB), then may refuse to start.
        "vllm_max_model_length": longest_prompt + int(stage.max_completion_length),
    }
    if stage.vllm_gpu_memory_utilization is not None:
        options["vllm_gpu_memory_utilization"] = float(stage.vllm_gpu_memory_utilization)
    return options


def grpo_config(
    settings: Settings,
    output_dir: str,
    precision: Any,
    longest_prompt: int,
    watched: Tracking | None = None,
) -> Any:
    """GRPOConfig for the stage; ``longest_prompt``: tokens of the longest training prompt."""
    from trl import GRPOConfig

    stage = settings.grpo
    vllm = use_vllm(settings)
    return GRPOConfig(
        **stage.trainer_arguments(),
        **training.run_arguments(settings.model, stage, output_dir, precision, watched),
        use_vllm=vllm,
        **(vllm_options(settings, longest_prompt) if vllm else {}),
        # TRL writes checkpoints/completions/completions_NNNNN.parquet per logged step (and
        # prints a sample of this many to the job log); tracking.keep_completions keeps them.
        log_completions=bool(watched and watched.log_completions),
        num_completions_to_print=COMPLETIONS_PRINTED,
    )


def trainable_model(
    settings: Settings, init_manifest: str | None, args: Any
) -> lora.TrainableModel:
    stage = settings.grpo
    if stage.init == "sft":
        if not init_manifest:
            raise ValueError("grpo.init is 'sft' but no --init-manifest (the SFT manifest) given")
        return lora.continued_lora_model(settings.model, stage, init_manifest, args)
    return lora.new_lora_model(settings.model, stage, args)


def run(
    settings: Settings,
    train_path: str,
    output_dir: str,
    manifest_path: str,
    init_manifest: str | None = None,
    max_prompt_length: int | None = None,
    watched: Tracking | None = None,
) -> dict[str, Any] | None:
    """Train, save and write the manifest; ``watched``: curves and completions
    (``rlcausality.training.tracking``)."""
    from trl import GRPOTrainer

    stage = settings.grpo
    family = get_family(settings.model.family)
    tokenizer = load_tokenizer(settings.model)
    limit = prompt_limit(settings, tokenizer, max_prompt_length)
    train_data, dropped, longest = load_prompts(train_path, tokenizer, limit)
    precision = lora.stage_precision(settings.model)
    args = grpo_config(settings, output_dir, precision, longest, watched)  # before the model
    trainable = trainable_model(settings, init_manifest, args)
    train_data, chosen = prepass.choose_prompts(
        trainable, tokenizer, train_data, settings, args, train_path, output_dir
    )
    trainer = GRPOTrainer(
        model=trainable.model,
        reward_funcs=get_reward_functions(stage.rewards, family.opens_think),
        args=args,
        train_dataset=train_data,
        processing_class=tokenizer,
        callbacks=[trainer_callback("grpo", stage.progress_interval_s)],
    )
    data = {"train": training.data_info(train_path, len(train_data))}
    data["train"]["dropped_too_long"] = dropped
    data["train"]["max_prompt_length"] = limit
    if chosen is not None:
        data["train"]["prepass"] = chosen
    extra = {
        "rewards": list(stage.rewards),
        "think_opened": family.opens_think,
        "generator": "vllm" if args.use_vllm else "transformers",
        "generation_batch_size": args.generation_batch_size,
    }
    return training.run_stage(
        training.StageRun(
            settings=settings,
            stage="grpo",
            output_dir=Path(output_dir),
            manifest_path=Path(manifest_path),
            tokenizer=tokenizer,
            trainable=trainable,
            trainer=trainer,
            data=data,
            extra=extra,
            watched=watched,
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = cli.parser(__doc__, "JSON: stage_settings(..., 'grpo')")
    parser.add_argument("--train", required=True)
    parser.add_argument("--init-manifest", default=None, help="the SFT manifest (init: sft)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--max-prompt-length", type=int, default=None)
    args = cli.configure(parser.parse_args(argv), needs=("grpo",))
    watched = tracking.from_env()
    tracking.require(watched)
    run(
        args.settings,
        args.train,
        args.output_dir,
        args.manifest,
        args.init_manifest,
        args.max_prompt_length,
        watched,
    )


if __name__ == "__main__":
    cli.entry(main)
