"""Supervised fine-tuning (LoRA / QLoRA) on formatted prompt/completion rows.

CLI::

    python -m rlcausality.training.sft --settings JSON --train F.jsonl [--eval F.jsonl] \
        --output-dir results/models/{model}/sft \
        --manifest results/models/{model}/sft/manifest.json \
        [--threads N]

Resumes from the newest complete checkpoint in ``{output-dir}/checkpoints`` when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcausality.data.chat_format import tokenized_sft_row
from rlcausality.io import read_jsonl
from rlcausality.models.families import get_family
from rlcausality.models.loading import load_tokenizer
from rlcausality.progress import trainer_callback
from rlcausality.settings import cli
from rlcausality.settings.blocks import Settings, Tracking
from rlcausality.training import lora, tracking
from rlcausality.training import stage as training

SFT_COLUMNS = ("prompt", "completion")


def load_rows(path: str | Path, tokenizer: Any = None, opens_think: bool = False) -> Any:
    """The SFT rows; for think-opening templates tokenised here (``tokenized_sft_row``)."""
    from datasets import Dataset

    rows = [{column: row[column] for column in SFT_COLUMNS} for row in read_jsonl(path)]
    if not rows:
        raise ValueError(f"{path}: no training rows")
    if opens_think:
        rows = [tokenized_sft_row(tokenizer, row) for row in rows]
    return Dataset.from_list(rows)


def sft_config(
    settings: Settings,
    output_dir: str,
    precision: Any,
    has_eval: bool,
    watched: Tracking | None = None,
) -> Any:
    from trl import SFTConfig

    stage = settings.sft
    extra: dict[str, Any] = {}
    if has_eval:
        extra = {"eval_strategy": "steps", "eval_steps": stage.save_steps}
    return SFTConfig(
        **stage.trainer_arguments(),
        **training.run_arguments(settings.model, stage, output_dir, precision, watched),
        dataset_num_proc=None,
        **extra,
    )


def run(
    settings: Settings,
    train_path: str,
    output_dir: str,
    manifest_path: str,
    eval_path: str | None = None,
    watched: Tracking | None = None,
) -> dict[str, Any] | None:
    """Train, save and write the manifest; ``watched``: curves
    (``rlcausality.training.tracking``)."""
    from trl import SFTTrainer

    stage = settings.sft
    tokenizer = load_tokenizer(settings.model)
    opens_think = get_family(settings.model.family).opens_think
    train_data = load_rows(train_path, tokenizer, opens_think)
    eval_data = load_rows(eval_path, tokenizer, opens_think) if eval_path else None
    precision = lora.stage_precision(settings.model)
    args = sft_config(settings, output_dir, precision, eval_data is not None, watched)  # first
    trainable = lora.new_lora_model(settings.model, stage, args)
    trainer = SFTTrainer(
        model=trainable.model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        callbacks=[trainer_callback("sft", stage.progress_interval_s)],
    )
    data = {"train": training.data_info(train_path, len(train_data))}
    if eval_path:
        data["eval"] = training.data_info(eval_path, len(eval_data))
    return training.run_stage(
        training.StageRun(
            settings=settings,
            stage="sft",
            output_dir=Path(output_dir),
            manifest_path=Path(manifest_path),
            tokenizer=tokenizer,
            trainable=trainable,
            trainer=trainer,
            data=data,
            merge=bool(stage.merge),
            watched=watched,
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = cli.parser(__doc__, "JSON: stage_settings(..., 'sft')")
    parser.add_argument("--train", required=True)
    parser.add_argument("--eval", default=None)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--manifest", required=True)
    args = cli.configure(parser.parse_args(argv), needs=("sft",))
    watched = tracking.from_env()
    tracking.require(watched)
    run(args.settings, args.train, args.output_dir, args.manifest, args.eval, watched)


if __name__ == "__main__":
    cli.entry(main)
