"""Fixtures for the evaluation tests: a tiny random-init Qwen2 with a ChatML BPE tokenizer,
formatted test items, and synthetic metrics/baselines/log histories for the reports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from eval_helpers import (
    CHATML,
    MISSING,
    MODELS,
    STAGES,
    SYSTEM,
    TEST_SETS,
    item,
    synthetic_item,
    write_log_histories,
    write_metrics,
)

from rlcausality.evaluation import baselines
from rlcausality.io import write_json, write_jsonl
from rlcausality.reporting import report


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer random-init Qwen2ForCausalLM and its tokenizer, saved to a folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = tmp_path_factory.mktemp("tiny_model")
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [item(i)["prompt"][1]["content"] for i in range(20)] + [SYSTEM, "Yes", "No"]
    bpe.train_from_iterator(texts * 3, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(out)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        initializer_range=0.5,  # wide: a random model that does not repeat one token
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def adapter_manifest(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training manifest for a LoRA adapter (unmerged) on the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rlcausality.io import write_json

    out = tmp_path_factory.mktemp("sft")
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, lora).save_pretrained(out / "adapter")
    manifest = {
        "model": "tiny-test",
        "stage": "sft",
        "base_model": str(tiny_model_dir),
        "adapter_path": str(out / "adapter"),
        "merged_path": None,
        "settings": {"sft": {"learning_rate": 0.001}},
        "data": {},
        "global_step": 3,
        "log_history_path": None,
        "provenance": {"settings_hash": "feedfacecafebeef"},
    }
    path = out / "manifest.json"
    write_json(path, manifest)
    return path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Reports over 2 models x 3 stages x 3 test sets, one cell missing, baselines beside."""
    root = tmp_path_factory.mktemp("reports")
    metrics, histories = [], []
    for m_index, model in enumerate(MODELS):
        for s_index, stage in enumerate(STAGES):
            for t_index, test in enumerate(TEST_SETS):
                if (model, stage, test) != MISSING:
                    skill = 0.5 + 0.12 * s_index + 0.05 * m_index - 0.06 * t_index
                    metrics.append(write_metrics(root, model, stage, test, skill))
        histories += [str(p) for p in write_log_histories(root, model).values()]
    baseline_files, baseline_predictions = [], []
    items = [{**synthetic_item(i), "input": "x"} for i in range(120)]
    write_jsonl(root / "data" / "train.jsonl", [synthetic_item(i) for i in range(120, 480)])
    for test in TEST_SETS:
        write_jsonl(root / "data" / f"{test}.jsonl", items)
        path = root / "baselines" / f"{test}.json"
        predictions = path.with_suffix(".predictions.jsonl")
        baselines.main(
            ["--data", str(root / "data" / f"{test}.jsonl"), "--out", str(path),
             "--train", str(root / "data" / "train.jsonl"), "--predictions", str(predictions)]
        )  # fmt: skip
        baseline_files.append(str(path))
        baseline_predictions.append(str(predictions))
    expected = [f"{m}:{s}:{t}" for m in MODELS for s in STAGES for t in TEST_SETS]
    out = root / "reports"
    report.main(
        ["summary", "--metrics", *map(str, metrics),
         "--predictions", *(str(p.with_name("predictions.jsonl")) for p in metrics),
         "--baselines", *baseline_files, "--baseline-predictions", *baseline_predictions,
         "--log-history", *histories, "--expected", *expected,
         "--out-html", str(out / "summary.html"), "--out-md", str(out / "summary.md"),
         "--plots-dir", str(out / "plots")]
    )  # fmt: skip
    stage_metrics = [p for p in metrics if p.parts[-4:-2] == ("qwen-test", "sft")]
    manifest = root / "models" / "qwen-test" / "sft" / "manifest.json"
    write_json(
        manifest,
        {"model": "qwen-test", "stage": "sft", "base_model": "b", "adapter_path": "a",
         "merged_path": None, "settings": {"sft": {"learning_rate": 0.001}}, "global_step": 10,
         "log_history_path": str(manifest.parent / "log_history.json"),
         "provenance": {"settings_hash": "1234abcd5678ef90"}},
    )  # fmt: skip
    report.main(
        ["stage", "--metrics", *map(str, stage_metrics), "--manifest", str(manifest),
         "--predictions", *(str(p.with_name("predictions.jsonl")) for p in stage_metrics),
         "--out", str(out / "qwen-test" / "sft.html")]
    )  # fmt: skip
    return {"root": root, "out": out, "metrics": metrics, "baselines": baseline_files}
