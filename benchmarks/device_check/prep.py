"""Build the GPU check's inputs on the CPU (run here, not on the device).

Writes into KIT (default: this file's folder):
  tokenizer/   a Qwen2-style byte-level BPE (ChatML) trained on the corpus (rlcausality.models.tiny)
  data/        trace_train.jsonl (SFT), grpo_train.jsonl (GRPO prompts), grpo_test.jsonl (eval),
               formatted by the project's own `python -m rlcausality.data.formatting`
  settings/    one JSON per device step, made from config.yaml's stage_settings of the real models
               with the model path pointing at the random model the device builds (MODEL_ROOT)

Usage (repo root on PYTHONPATH with workflow_scripts):
  python prep.py --corpus results/data/corr2cause --kit benchmarks/device_check [--vocab 8192]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from rlcausality.models.tiny import corpus_texts, train_tokenizer, wrap_tokenizer
from rlcausality.settings import config as rlconfig
from rlcausality.settings import validation as rlvalidation

MODEL_ROOT = "/dev/shm/gpucheck"  # where make_model.py puts the random models (device script may
# override with RLC_MODEL_ROOT; settings are rewritten there by device_check.sh via sed)


def model_block(settings: dict, name: str, quant: str = "none", family: str | None = None) -> dict:
    model = copy.deepcopy(settings["model"])
    path = f"{MODEL_ROOT}/{name}"
    model.update(source="path", id=path, path=path, quantization=quant)
    if family:
        model["family"] = family
    return model


def stage(cfg: dict, name: str, section: str, **override) -> dict:
    settings = rlconfig.stage_settings(cfg, name, section)
    settings[section].update(override)
    return settings


QWEN = "qwen2.5-1.5b"
# (format, split, rows kept (0: all), extra formatter flags) of each data file
DATA_FILES = (
    ("trace", "train", 256, []),
    ("grpo", "train", 64, []),
    ("grpo", "test", 0, ["--keep-long"]),
)
TEST_ROWS = 256  # evaluate samples max_samples of them, stratified


def write_tokenizer(corpus: Path, kit: Path, vocab: int) -> None:
    """A Qwen2-style byte-level BPE (ChatML) trained on the corpus's train split."""
    tokenizer = wrap_tokenizer(train_tokenizer(corpus_texts(corpus / "train.jsonl"), vocab))
    tokenizer.save_pretrained(kit / "tokenizer")


def write_data(cfg: dict, corpus: Path, kit: Path) -> None:
    """The data files, by the project's formatter with the kit tokenizer standing in for the
    model's; the test split cut to ``TEST_ROWS`` rows spread over the file."""
    fmt_settings = rlconfig.stage_settings(cfg, QWEN, "format")
    fmt_settings["model"].update(
        source="path", id=str(kit / "tokenizer"), path=str(kit / "tokenizer")
    )
    fmt_json = kit / "settings" / "format.json"
    fmt_json.write_text(json.dumps(fmt_settings), "utf-8")
    for fmt, split, cap, extra in DATA_FILES:
        out = kit / "data" / f"{fmt}_{split}.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "rlcausality.data.formatting",
            "--settings",
            str(fmt_json),
            "--fmt",
            fmt,
            "--input",
            str(corpus / f"{split}.jsonl"),
            "--output",
            str(out),
            "--stats",
            str(out.with_suffix(".stats.json")),
            "--max-samples",
            str(cap),
            *extra,
        ]
        subprocess.run(cmd, check=True)
    test = kit / "data" / "grpo_test.jsonl"
    lines = test.read_text("utf-8").splitlines()
    kept = lines[:: max(1, len(lines) // TEST_ROWS)][:TEST_ROWS]
    test.write_text("\n".join(kept) + "\n", "utf-8")


def step_settings(cfg: dict) -> dict[str, dict]:
    """Each device step's job settings, by step name (``settings/<name>.json``): the real
    recipe's ``stage_settings`` of qwen2.5-1.5b, sized to fit the lease, on the random model
    the device builds under ``MODEL_ROOT`` (4-bit for the ``_q4`` steps)."""
    common = {"save_steps": 10_000, "logging_steps": 1, "progress_interval_s": 5}
    steps = {
        # 1. qwen2.5-1.5b SFT as the workflow runs it on a GPU: torchrun + ZeRO-2 (recipe default),
        #    LoRA r16 (config.yaml), bs 1; 4 optimizer steps of 8 sequences; merge on.
        "sft_z2": stage(
            cfg,
            QWEN,
            "sft",
            deepspeed="zero2",
            gradient_accumulation_steps=8,
            max_steps=4,
            warmup_steps=0,
            **common,
        ),
        # 2. qwen2.5-1.5b GRPO as configured (python -m, no DeepSpeed, init sft, r64, 4 prompts x 4
        #    generations per step), completions capped at 512 to fit the lease; 2 steps.
        "grpo": stage(cfg, QWEN, "grpo", max_completion_length=512, max_steps=2, **common),
        # 3. evaluation of the GRPO adapter: 32 stratified test items, batch 16, 256 new tokens.
        "eval": stage(
            cfg,
            QWEN,
            "evaluate",
            max_samples=32,
            test_sets=["test"],
            max_new_tokens={"sft": 8, "grpo": 256},
            progress_interval_s=5,
        ),
        # 4. QLoRA (deepseek-r1-7b's path) on the 1.5B arch: 4-bit nf4 + ZeRO-2 under torchrun.
        "sft_q4_z2": stage(
            cfg,
            QWEN,
            "sft",
            deepspeed="zero2",
            gradient_accumulation_steps=4,
            max_steps=3,
            warmup_steps=0,
            merge=True,
            **common,
        ),
        # 5. QLoRA GRPO from the base (r1-7b: init base, zero3 -> zero2 for a 4-bit base).
        "grpo_q4_z2": stage(
            cfg,
            QWEN,
            "grpo",
            init="base",
            deepspeed="zero3",
            max_completion_length=256,
            max_steps=1,
            **common,
        ),
    }
    for key, settings in steps.items():
        settings["model"] = model_block(settings, QWEN, "4bit" if "_q4" in key else "none")
    return steps


def settings_text(settings: dict) -> str:
    """A step's settings file, as ``prep.py`` writes it."""
    return json.dumps(settings, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True, help="folder with train.jsonl and test.jsonl")
    parser.add_argument("--kit", default=str(Path(__file__).parent))
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--config", default="config.yaml")
    args = parser.parse_args()
    kit, corpus = Path(args.kit), Path(args.corpus)
    (kit / "data").mkdir(parents=True, exist_ok=True)
    (kit / "settings").mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(Path(args.config).read_text("utf-8"))
    rlvalidation.validate_config(cfg)

    write_tokenizer(corpus, kit, args.vocab)
    write_data(cfg, corpus, kit)
    for key, settings in step_settings(cfg).items():
        (kit / "settings" / f"{key}.json").write_text(settings_text(settings), "utf-8")
    print(json.dumps({p.name: p.stat().st_size for p in sorted((kit / "data").glob("*.jsonl"))}))


if __name__ == "__main__":
    main()
