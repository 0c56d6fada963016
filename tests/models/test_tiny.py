"""The embedded tiny model: tokenizer round trip, chat template, determinism, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from rlcausality.io import sha256_file
from rlcausality.models import tiny

SAMPLES = [
    "Premise: Suppose there is a closed system of 3 variables, A, B and C.\nHypothesis: A.",
    "Therefore: Yes",
    "<think>\nA correlates with B.\n</think>\nTherefore: No",
    "Café — naïve  spacing\t\tand\r\nnewlines 12345 'don't'",
    "<|im_start|>user\nhi<|im_end|>\n",
]


def test_ids_survive_save_and_reload(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(tiny_base / "tokenizer.json"))
    loaded = AutoTokenizer.from_pretrained(tiny_base)
    assert type(loaded).__name__ == "Qwen2Tokenizer"
    for text in SAMPLES:
        ids = loaded(text, add_special_tokens=False)["input_ids"]
        assert ids == raw.encode(text, add_special_tokens=False).ids
        assert loaded.decode(ids) == text
    resaved = tiny_base.parent / "resaved"
    loaded.save_pretrained(resaved)
    again = AutoTokenizer.from_pretrained(resaved)
    for text in SAMPLES:
        assert again(text)["input_ids"] == loaded(text)["input_ids"]


def test_special_tokens_and_answer_words(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    for special in tiny.SPECIAL_TOKENS:
        assert len(tokenizer(special, add_special_tokens=False)["input_ids"]) == 1
    for word in ("Yes", "No"):
        assert len(tokenizer(word, add_special_tokens=False)["input_ids"]) == 1
    assert len(tokenizer) <= tiny.DEFAULT_DIMS["vocab_size"]


def test_chat_template_renders(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "Yes"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
        "<|im_start|>assistant\nYes<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(
        messages[1:2], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    assert text.startswith(tokenizer.apply_chat_template(messages[:2], tokenize=False))


def test_model_loads_with_configured_dims(tiny_base: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    config = model.config
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert (config.hidden_size, config.num_hidden_layers) == (64, 2)
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    assert config.intermediate_size == 128
    manifest = json.loads((tiny_base / "manifest.json").read_text())
    assert manifest["stage"] == "base"
    assert manifest["parameters"] == sum(p.numel() for p in model.parameters())
    assert manifest["corpus"]["sha256"]
    assert manifest["dims"]["hidden_size"] == 64
    assert {"model", "model_path", "provenance"} <= set(manifest)


def test_cli_is_deterministic_and_atomic(tmp_path: Path, data_dir: Path, tiny_base: Path) -> None:
    settings = json.dumps({"model": {"name": "tiny", "tiny": {"vocab_size": 300, "seed": 0}}})
    corpus = str(data_dir / "test.jsonl")
    outs = [tmp_path / "a" / "base", tmp_path / "b" / "base"]
    for out in outs:
        tiny.main(["--settings", settings, "--corpus", corpus, "--out-dir", str(out)])
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert sha256_file(outs[0] / name) == sha256_file(outs[1] / name)
    other_seed = json.dumps({"model": {"name": "tiny", "tiny": {"vocab_size": 300, "seed": 1}}})
    third = tmp_path / "c" / "base"
    tiny.main(["--settings", other_seed, "--corpus", corpus, "--out-dir", str(third)])
    assert sha256_file(third / "model.safetensors") != sha256_file(outs[0] / "model.safetensors")


def test_bad_dims_are_reported() -> None:
    with pytest.raises(ValueError, match="num_heads"):
        tiny.tiny_dims({"tiny": {"hidden_size": 60, "num_heads": 8}})
    with pytest.raises(ValueError, match="vocab_size"):
        tiny.tiny_dims({"tiny": {"vocab_size": 100}})
