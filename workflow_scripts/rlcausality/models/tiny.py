"""The embedded default model: a small random-init Qwen2 with a tokenizer trained on the corpus.

Everything is built locally, so the whole workflow runs offline on a CPU. The tokenizer is a
byte-level BPE with Qwen2's own normalizer (NFC) and split regex, so the ``Qwen2Tokenizer`` that
transformers loads for a ``qwen2`` folder gives the same ids as the one trained here.

CLI::

    python -m rlcausality.models.tiny --settings JSON --corpus TRAIN.jsonl \
        --out-dir results/models/tiny/base
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rlcausality import task
from rlcausality.io import atomic_directory, read_jsonl, sha256_file, write_json
from rlcausality.provenance import provenance
from rlcausality.settings import cli

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = (END_OF_TEXT, IM_START, IM_END)

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Pieces every tiny vocabulary should hold whole, whatever the corpus.
EXTRA_TEXT = (
    *task.ANSWER_WORDS.values(),
    *task.ANSWER_LINES.values(),
    "<think>",
    "</think>",
    "<think>\nThe premise says",
    *(f"</think>\n{line}" for line in task.ANSWER_LINES.values()),
    "system",
    "user",
    "assistant",
    task.SYSTEM_PROMPT,
)

DEFAULT_DIMS: dict[str, int] = {
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 512,
    "seed": 0,
}
MAX_POSITIONS = 4096
# Wider than Qwen2's 0.02: with tied embeddings and a 64-wide hidden state, 0.02 caps every logit
# near 1, so LoRA (which cannot touch the embeddings) could never make the model confident.
INITIALIZER_RANGE = 0.1


def tiny_dims(model_settings: dict[str, Any]) -> dict[str, int]:
    """The dims of ``model.tiny`` with defaults filled in, checked for consistency."""
    dims = {**DEFAULT_DIMS, **(model_settings.get("tiny") or {})}
    if dims["hidden_size"] % dims["num_heads"]:
        raise ValueError(
            f"model.tiny: hidden_size {dims['hidden_size']} is not divisible by "
            f"num_heads {dims['num_heads']}"
        )
    if dims["num_heads"] % dims["num_kv_heads"]:
        raise ValueError(
            f"model.tiny: num_heads {dims['num_heads']} is not divisible by "
            f"num_kv_heads {dims['num_kv_heads']}"
        )
    if dims["vocab_size"] < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"model.tiny.vocab_size: {dims['vocab_size']} is below the 256 byte symbols plus "
            f"{len(SPECIAL_TOKENS)} special tokens"
        )
    return dims


MAX_TOKENIZER_ROWS = 20_000  # a 512-token vocabulary needs little text; the split may be huge


def corpus_texts(corpus: str | Path, max_rows: int = MAX_TOKENIZER_ROWS) -> Iterator[str]:
    """The training text: the rows' ``input`` (evenly strided to at most ``max_rows``, so every
    part of a sorted split is seen), every prompt template, and the answer words."""
    inputs = [row["input"] for row in read_jsonl(corpus) if isinstance(row.get("input"), str)]
    stride = max(1, -(-len(inputs) // max_rows))
    yield from inputs[::stride]
    for template in task.USER_TEMPLATES.values():
        yield template.replace("{input}", "")
    yield from EXTRA_TEXT


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` with Qwen2's normalizer and pre-tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def wrap_tokenizer(tokenizer: Any) -> Any:
    """A transformers ``Qwen2Tokenizer`` over the trained vocabulary, with the ChatML template."""
    from transformers import Qwen2Tokenizer

    state = json.loads(tokenizer.to_str())
    merges = [
        tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]
    ]
    wrapped = Qwen2Tokenizer(
        vocab=state["model"]["vocab"],
        merges=merges,
        unk_token=None,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        model_max_length=MAX_POSITIONS,
    )
    wrapped.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


def build_model(dims: dict[str, int], tokenizer: Any) -> Any:
    """A random-init ``Qwen2ForCausalLM`` (seeded) sized for ``tokenizer``."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=dims["hidden_size"],
        num_hidden_layers=dims["num_layers"],
        num_attention_heads=dims["num_heads"],
        num_key_value_heads=dims["num_kv_heads"],
        intermediate_size=dims["intermediate_size"],
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        initializer_range=INITIALIZER_RANGE,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(END_OF_TEXT),
        dtype="float32",
    )
    torch.manual_seed(dims["seed"])
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[config.eos_token_id, config.pad_token_id],
        pad_token_id=config.pad_token_id,
        do_sample=False,
    )
    return model


def build(settings: dict[str, Any], corpus: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Write the tokenizer, model and ``manifest.json`` (last) into ``out_dir`` atomically."""
    dims = tiny_dims(settings["model"])
    tokenizer = wrap_tokenizer(train_tokenizer(corpus_texts(corpus), dims["vocab_size"]))
    model = build_model(dims, tokenizer)
    with atomic_directory(out_dir) as tmp:
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        manifest = {
            "model": settings["model"].get("name", "tiny"),
            "stage": "base",
            "model_path": str(out_dir),
            "architecture": "Qwen2ForCausalLM",
            "corpus": {"path": str(corpus), "sha256": sha256_file(corpus)},
            "dims": dims,
            "vocab_size_actual": len(tokenizer),
            "parameters": sum(p.numel() for p in model.parameters()),
            "provenance": provenance(settings),
        }
        write_json(Path(tmp) / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = cli.parser(__doc__, "JSON with a 'model' block")
    parser.add_argument("--corpus", required=True, help="the train split (JSONL)")
    parser.add_argument("--out-dir", required=True)
    args = cli.configure(parser.parse_args(argv), typed=False)
    build(args.settings, args.corpus, args.out_dir)


if __name__ == "__main__":
    cli.entry(main)
