"""SFT for a template that opens <think> (R1-Distill): trained on the context evaluation sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlcausality.data import chat_format
from rlcausality.evaluation.generation import render_prompts
from rlcausality.settings.blocks import Model
from rlcausality.training import sft

# DeepSeek-R1-Distill's chat template (its tool-call branches left out): an assistant turn is
# rendered without the reasoning before </think>, and the generation prompt opens <think>.
R1_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}"
    "{% endif %}{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)
SPECIAL = ["<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<think>", "</think>"]


@pytest.fixture(scope="module")
def r1_base(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("r1") / "base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL})
    tokenizer.eos_token = "<｜end▁of▁sentence｜>"
    tokenizer.chat_template = R1_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    model.resize_token_embeddings(len(tokenizer))
    model.config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _row(model: Model, rows_factory, label: int = 1) -> dict:
    row = rows_factory(1, seed=7)[0]
    row["label"] = label
    return chat_format.format_row(row, model, "sft")


def test_the_sft_target_closes_the_opened_think_block(
    r1_base: Path, model_factory, typed_model, rows_factory
) -> None:
    from transformers import AutoTokenizer

    model = typed_model(model_factory(r1_base, family="qwen2-r1"))
    tokenizer = AutoTokenizer.from_pretrained(r1_base)
    row = _row(model, rows_factory)
    assert row["completion"] == [{"role": "assistant", "content": "</think>\n\nYes"}]
    # The conversational path cannot serve this template: the rendered conversation drops
    # everything up to </think>, so the generation prompt's "<think>\n" is not part of it.
    prompt = render_prompts(tokenizer, [row["prompt"]])[0]
    whole = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    assert prompt.endswith("<｜Assistant｜><think>\n") and not whole.startswith(prompt)
    # The tokenised row: the prompt exactly as evaluation tokenises it, then the target.
    ids = chat_format.tokenized_sft_row(tokenizer, row)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids["input_ids"][: len(prompt_ids)] == prompt_ids
    assert ids["completion_mask"] == [0] * len(prompt_ids) + [1] * (
        len(ids["input_ids"]) - len(prompt_ids)
    )
    target = tokenizer.decode(ids["input_ids"][len(prompt_ids) :])
    assert target == "</think>\n\nYes<｜end▁of▁sentence｜>"


def test_r1_sft_trains_on_the_evaluation_context(
    r1_base: Path, model_factory, typed_model, make_settings, rows_factory, tmp_path: Path
) -> None:
    from rlcausality.io import write_jsonl

    model = model_factory(r1_base, family="qwen2-r1", name="r1-tiny")
    rows = [chat_format.format_row(r, typed_model(model), "sft") for r in rows_factory(32, seed=3)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    settings = make_settings(model, "sft", max_steps=2, save_steps=2, merge=False)
    out = tmp_path / "sft"
    sft.main(["--settings", json.dumps(settings), "--train", str(tmp_path / "train.jsonl"),
              "--output-dir", str(out), "--manifest", str(out / "manifest.json")])  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["global_step"] == 2 and manifest["family"] == "qwen2-r1"
