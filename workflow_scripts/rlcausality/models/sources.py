"""Where a model's base comes from (config ``models.<name>.source``): one registry.

Config validation, the schema's list of sources, and the rules (which sources a rule builds,
with which module, from which inputs) all read ``SOURCES``. A new locally built source is one
entry here plus its builder module (a ``python -m`` CLI taking ``--settings``, an optional
``--corpus`` and ``--out-dir``).
"""

from __future__ import annotations

from typing import NamedTuple


class Source(NamedTuple):
    # The module whose CLI builds the base into results/models/{name}/base; None: not built.
    builder: str | None = None
    # A config key the model entry must have for this source ("id", "gguf"), or None.
    requires: str | None = None
    hint: str = ""
    # True when the builder reads the corpus's train split (e.g. to train a tokenizer).
    needs_corpus: bool = False


SOURCES: dict[str, Source] = {
    "hub": Source(requires="id", hint="a hub id in 'id'"),
    "path": Source(requires="id", hint="a local model folder in 'id'"),
    "tiny": Source(builder="rlcausality.models.tiny", needs_corpus=True),
    "gguf": Source(
        builder="rlcausality.models.gguf", requires="gguf", hint="gguf.package and gguf.file"
    ),
}
BUILT_SOURCES = tuple(name for name, source in SOURCES.items() if source.builder)
