"""Generation and evaluate end to end on a tiny random-init Qwen2 (CPU, seconds)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from eval_helpers import eval_settings, item

from rlcausality.evaluation import decoding, evaluate, generation, vllm_generation
from rlcausality.evaluation.metrics import compute_metrics
from rlcausality.evaluation.partial import fingerprint
from rlcausality.io import read_jsonl, write_jsonl
from rlcausality.models import loading
from rlcausality.reporting import report
from rlcausality.settings.config import load_settings
from rlcausality.task import answer_style

PREDICTION_KEYS = {
    "id",
    "class_id",
    "relation",
    "num_variables",
    "label",
    "completion",
    "answer",
    "completion_tokens",
    "truncated",
    "hypothesis",  # the item's, for the reports' right and wrong answers
}
METRIC_KEYS = {
    "n", "n_valid", "valid_rate", "accuracy", "precision", "recall", "f1",
    "predicted_valid_rate", "parse_rate", "n_unparsed", "unparsed_by_label",
    "mean_completion_tokens", "confusion", "by_relation", "by_num_variables",
    "truncated", "truncation_rate", "model", "stage", "test_set", "data", "manifest",
    "generation", "resumed_items", "provenance", "accuracy_ci95", "precision_ci95",
    "recall_ci95", "f1_ci95", "ci",
}  # fmt: skip


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    settings = load_settings(eval_settings(tiny_model_dir)).model
    return loading.load_trained(settings, None), loading.load_tokenizer(settings)


def test_batched_generation_matches_one_by_one(loaded):
    model, tokenizer = loaded
    conversations = [item(i)["prompt"] for i in range(6)]
    conversations[2] = [{"role": "user", "content": "short"}]  # forces left padding
    prompts = generation.render_prompts(tokenizer, conversations)
    assert prompts[2].endswith("<|im_start|>assistant\n")
    batched = generation.generate_transformers(
        model, tokenizer, prompts, generation.GenerationSettings(max_new_tokens=5, batch_size=4)
    )
    single = generation.generate_transformers(
        model, tokenizer, prompts, generation.GenerationSettings(max_new_tokens=5, batch_size=1)
    )
    assert batched.texts == single.texts  # order restored after length sorting
    assert batched.token_counts == single.token_counts
    assert all(1 <= n <= 5 for n in batched.token_counts)
    assert batched.backend == "transformers"
    sampled = generation.generate_transformers(
        model,
        tokenizer,
        prompts,
        generation.GenerationSettings(max_new_tokens=5, batch_size=4, temperature=0.8, top_p=0.9),
    )
    assert len(sampled.texts) == len(prompts)


def test_count_generated_stops_at_eos():
    assert decoding.count_generated([5, 6, 2, 0, 0], {2}) == 3
    assert decoding.count_generated([5, 6, 7], {2}) == 3
    assert decoding.generated_length([5, 6, 2, 0, 0], {2}) == (3, False)
    assert decoding.generated_length([5, 6, 7], {2}) == (3, True)  # truncated
    assert decoding.generated_length([5, 6, 2], {2}) == (3, False)  # stopped at the limit


def test_select_rows_is_stable_and_order_free():
    rows = [item(i) for i in range(30)]
    first = evaluate.select_rows(rows, 10)
    again = evaluate.select_rows(list(reversed(rows)), 10)
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert len({r["id"] for r in first}) == 10
    assert evaluate.select_rows(rows, None) == rows


def run_evaluate(
    tmp_path: Path, model_dir: Path, stage: str, manifest: Path | None, **evaluate_settings: Any
) -> dict:
    data = tmp_path / "data" / "test.jsonl"
    if not data.exists():
        write_jsonl(data, [item(i) for i in range(12)])
    out = tmp_path / "eval" / stage / "test"
    settings = eval_settings(model_dir, max_samples=8, **evaluate_settings)
    argv = [
        "--settings", json.dumps(settings), "--stage", stage, "--test-set", "test",
        "--data", str(data), "--predictions", str(out / "predictions.jsonl"),
        "--metrics", str(out / "metrics.json"), "--threads", "1",
    ]  # fmt: skip
    if manifest is not None:
        argv += ["--manifest", str(manifest)]
    evaluate.main(argv)
    return {
        "predictions": list(read_jsonl(out / "predictions.jsonl")),
        "metrics": json.loads((out / "metrics.json").read_text()),
    }


def test_evaluate_end_to_end(tmp_path, tiny_model_dir, adapter_manifest):
    base = run_evaluate(tmp_path, tiny_model_dir, "base", None)
    sft = run_evaluate(tmp_path, tiny_model_dir, "sft", adapter_manifest)
    for result, stage in ((base, "base"), (sft, "sft")):
        predictions, metrics = result["predictions"], result["metrics"]
        assert len(predictions) == 8
        for row in predictions:
            assert set(row) == PREDICTION_KEYS
            index = int(row["id"].removeprefix("test-"))
            assert row["hypothesis"] == f"A is a {row['relation']} of B. Case {index}."
            assert row["answer"] in (0, 1, None) and row["label"] in (0, 1)
            assert isinstance(row["completion"], str) and 1 <= row["completion_tokens"] <= 3
            assert isinstance(row["truncated"], bool)
            if row["truncated"]:
                assert row["completion_tokens"] == 3  # the limit, without an end of sequence
        assert set(metrics) == METRIC_KEYS
        assert metrics["stage"] == stage and metrics["model"] == "tiny-test"
        assert metrics["n"] == 8 and metrics["data"]["rows"] == 12
        assert len(metrics["data"]["sha256"]) == 64
        assert metrics["generation"]["max_new_tokens"] == 3
        assert metrics["generation"]["greedy"] is True
        assert metrics["generation"]["dtype"] == "auto"  # the training precision: fp32 here
        assert metrics["generation"]["repetition_penalty"] == 1.0
        assert metrics["generation"]["top_k"] == 0 and metrics["generation"]["num_beams"] == 1
        assert metrics["generation"]["stop_tokens"] == ["<|endoftext|>", "<|im_end|>"]
        assert metrics["truncated"] == sum(r["truncated"] for r in predictions)
        assert metrics["truncation_rate"] == metrics["truncated"] / 8
        assert metrics["resumed_items"] == 0
        assert not (tmp_path / "eval" / stage / "test" / "partial").exists()
        assert metrics["provenance"]["settings_hash"]
    assert base["metrics"]["manifest"] is None
    assert sft["metrics"]["manifest"]["settings_hash"] == "feedfacecafebeef"
    # identical items, in identical order, at every stage
    assert [r["id"] for r in base["predictions"]] == [r["id"] for r in sft["predictions"]]
    # the adapter changes the model, so its completions differ
    assert [r["completion"] for r in base["predictions"]] != [
        r["completion"] for r in sft["predictions"]
    ]
    # evaluate's own metrics feed the reports
    metrics = [str(tmp_path / "eval" / s / "test" / "metrics.json") for s in ("base", "sft")]
    out = tmp_path / "reports"
    report.main(
        ["summary", "--metrics", *metrics, "--expected", "tiny-test:base:test",
         "tiny-test:sft:test", "tiny-test:grpo:test", "--out-html", str(out / "summary.html"),
         "--out-md", str(out / "summary.md"), "--plots-dir", str(out / "plots")]
    )  # fmt: skip
    summary = (out / "summary.md").read_text()
    assert "tiny-test / sft / test" in summary and "NOT BUILT: 1 of 3" in summary
    report.main(["stage", "--metrics", metrics[1], "--manifest", str(adapter_manifest),
                 "--out", str(out / "sft.html")])  # fmt: skip
    assert "feedfacecafebeef" in (out / "sft.html").read_text()


def test_evaluate_in_bf16_says_so_and_keeps_the_items(tmp_path, tiny_model_dir, adapter_manifest):
    full = run_evaluate(tmp_path / "fp32", tiny_model_dir, "sft", adapter_manifest)
    half = run_evaluate(
        tmp_path / "bf16", tiny_model_dir, "sft", adapter_manifest, dtype="bfloat16"
    )
    assert half["metrics"]["generation"]["dtype"] == "bfloat16"
    assert half["metrics"]["n"] == full["metrics"]["n"] == 8
    assert [r["id"] for r in half["predictions"]] == [r["id"] for r in full["predictions"]]
    assert all(r["answer"] in (0, 1, None) for r in half["predictions"])
    # the precision is part of what the partial predictions are keyed on: no mixing on resume
    keys = {
        dtype: fingerprint(
            load_settings(eval_settings(tiny_model_dir, dtype=dtype)), ["a"], stage="sft"
        )
        for dtype in ("auto", "bfloat16")
    }
    assert keys["auto"] != keys["bfloat16"]


def test_an_adapter_is_folded_in_for_generation(tiny_model_dir, adapter_manifest):
    from peft import PeftModel

    settings = load_settings(eval_settings(tiny_model_dir)).model
    manifest = json.loads(adapter_manifest.read_text())
    adapted = loading.load_trained(settings, manifest)
    folded = loading.load_trained(settings, manifest, merge=True)
    assert isinstance(adapted, PeftModel) and not isinstance(folded, PeftModel)
    assert not any("lora_" in name for name, _ in folded.named_parameters())
    ids = torch.tensor([[5, 9, 11, 3, 7, 2]])
    with torch.no_grad():
        assert torch.allclose(adapted(ids).logits, folded(ids).logits, atol=1e-4)
    # training continues from base + adapter: nothing is folded there
    assert isinstance(
        loading.load_trained(settings, manifest, trainable=True, merge=True), PeftModel
    )


def test_evaluate_needs_manifest_after_base(tmp_path, tiny_model_dir):
    with pytest.raises(SystemExit, match="--manifest"):
        run_evaluate(tmp_path, tiny_model_dir, "sft", None)


def test_vllm_choice_and_lora_rank(adapter_manifest):
    settings = generation.GenerationSettings(max_new_tokens=2, use_vllm=True)
    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="use_vllm: true"):  # never a silent fallback
            vllm_generation.vllm_usable(settings)
    assert not vllm_generation.vllm_usable(generation.GenerationSettings(max_new_tokens=2))
    manifest = json.loads(adapter_manifest.read_text())
    assert vllm_generation.lora_rank_limit(manifest["adapter_path"]) == 8  # r = 4


def test_reasoning_prompts_read_the_answer_after_the_think_block():
    rows = [item(0), item(1), item(2)]  # labels 1, 0, 0
    texts = [
        "<think>A causes B.</think>\nTherefore: Yes",
        "<think>A and B correlate. Therefore, no edge can be removed, so",  # cut off
        "Therefore: No",  # no reasoning at all
    ]
    style = answer_style("grpo")
    predictions = evaluate.prediction_rows(rows, texts, [9, 16, 3], style)
    assert [p["answer"] for p in predictions] == [1, None, None]
    metrics = compute_metrics(predictions)
    assert metrics["accuracy"] == 1 / 3 and metrics["n_unparsed"] == 2
    sft = evaluate.prediction_rows(rows, texts, [9, 16, 3], answer_style("sft"))
    assert [p["answer"] for p in sft] == [1, 0, 0]  # the one-word style reads loosely


def polluted_copy(model_dir: Path, out: Path, **overrides) -> Path:
    """The tiny model with a generation_config.json that sets its own decoding parameters."""
    shutil.copytree(model_dir, out)
    path = out / "generation_config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config.update(overrides)
    path.write_text(json.dumps(config))
    return out


def evaluate_predictions(tmp_path: Path, model_dir: Path, name: str) -> tuple[list, dict]:
    data = tmp_path / "data" / "test.jsonl"
    if not data.exists():
        write_jsonl(data, [item(i) for i in range(8)])
    out = tmp_path / name
    settings = eval_settings(model_dir, max_new_tokens={"sft": 12, "grpo": 12})
    evaluate.main(
        ["--settings", json.dumps(settings), "--stage", "base", "--test-set", "test",
         "--data", str(data), "--predictions", str(out / "predictions.jsonl"),
         "--metrics", str(out / "metrics.json"), "--threads", "1"]
    )  # fmt: skip
    keys = ("id", "completion", "answer", "completion_tokens", "truncated")
    rows = [{k: r[k] for k in keys} for r in read_jsonl(out / "predictions.jsonl")]
    return rows, json.loads((out / "metrics.json").read_text())["generation"]


def test_the_model_generation_config_does_not_leak_in(tmp_path, tiny_model_dir):
    clean, clean_gen = evaluate_predictions(tmp_path, tiny_model_dir, "clean")
    tokenizer = loading.load_tokenizer(load_settings(eval_settings(tiny_model_dir)).model)
    # an "end of sequence" the clean run emits mid-completion, so a leak would cut it short
    frequent = tokenizer(clean[0]["completion"], add_special_tokens=False)["input_ids"][1]
    polluted = polluted_copy(
        tiny_model_dir, tmp_path / "polluted",
        repetition_penalty=5.0, no_repeat_ngram_size=1, top_k=1, temperature=0.01,
        do_sample=True, eos_token_id=frequent, min_new_tokens=12, max_new_tokens=2,
    )  # fmt: skip
    leaked, leaked_gen = evaluate_predictions(tmp_path, polluted, "polluted")
    assert leaked == clean
    assert leaked_gen == clean_gen
    assert clean_gen["repetition_penalty"] == 1.0 and clean_gen["no_repeat_ngram_size"] == 0
    assert frequent not in clean_gen["eos_token_id"]
