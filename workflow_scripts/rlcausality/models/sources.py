"""Where a model's base comes from (config ``models.<name>.source``): one registry.

Config validation, the schema (the list of sources and each source's own settings block), the
base-model job's params and the rules (which sources a rule builds, with which module, from
which inputs) all read ``SOURCES``. A new locally built source is one entry here plus its
builder module (a ``python -m`` CLI taking ``--settings``, an optional ``--corpus`` and
``--out-dir``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

POSITIVE_INT = {"type": "integer", "minimum": 1}


class Source(NamedTuple):
    # The module whose CLI builds the base into results/models/{name}/base; None: not built.
    builder: str | None = None
    # A config key the model entry must have for this source ("id", "gguf"), or None.
    requires: str | None = None
    hint: str = ""
    # True when the builder reads the corpus's train split (e.g. to train a tokenizer).
    needs_corpus: bool = False
    # The model entry's own settings block for this source (its key and JSON schema), if any.
    block: str | None = None
    block_schema: dict[str, Any] | None = None


SOURCES: dict[str, Source] = {
    "hub": Source(requires="id", hint="a hub id in 'id'"),
    "path": Source(requires="id", hint="a local model folder in 'id'"),
    "tiny": Source(
        builder="rlcausality.models.tiny",
        needs_corpus=True,
        block="tiny",
        block_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{
                    key: POSITIVE_INT
                    for key in (
                        "hidden_size",
                        "num_layers",
                        "num_heads",
                        "num_kv_heads",
                        "intermediate_size",
                    )
                },
                "vocab_size": {"type": "integer", "minimum": 64},
                "seed": {"type": "integer", "minimum": 0},
            },
        },
    ),
    "gguf": Source(
        builder="rlcausality.models.gguf",
        requires="gguf",
        hint="gguf.package and gguf.file",
        block="gguf",
        block_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["package", "file"],
            "properties": {
                "package": {"type": "string", "minLength": 1},
                "file": {"type": "string", "minLength": 1},
                "dtype": {"type": "string", "enum": ["float32", "bfloat16"]},
            },
        },
    ),
}
BUILT_SOURCES = tuple(name for name, source in SOURCES.items() if source.builder)
BLOCKS = {source.block: source.block_schema for source in SOURCES.values() if source.block}
