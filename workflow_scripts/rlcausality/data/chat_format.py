"""Per-model chat formatting of Corr2Cause rows into TRL prompt/completion rows (the format
job's CLI is ``rlcausality.data.formatting``).

The prompt builders here are shared with evaluation, so a model is always asked the same way it
was trained. Three formats (``FORMAT_PROMPTS``: the format's prompt style):

* ``sft``: the one-word prompt and a one-word assistant completion (``Yes``/``No``, after a
  ``</think>`` where the template opens ``<think>``): the SFT target ``answer``;
* ``grpo``: the reasoning prompt, which asks for ``<think>…</think>`` reasoning then
  ``Therefore: Yes|No``, and no completion; each row carries the oracle trace's body
  (``trace``, None where no DAG fits the premise) for evaluation's trace metrics;
* ``trace``: the reasoning prompt and the oracle trace as completion (``task.trace_body``,
  computed by ``corr2cause.symbolic.derive``): the SFT target ``trace``, in exactly the format
  GRPO rewards and evaluation parses. Rows whose premise no DAG satisfies have no trace: they
  are skipped and counted (``no_trace`` in the stats).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from rlcausality.data.corr2cause import symbolic
from rlcausality.data.corr2cause.load import premise_class_id
from rlcausality.data.corr2cause.text import ParseError
from rlcausality.io import DataError, read_jsonl_numbered
from rlcausality.models.families import get_family
from rlcausality.settings.blocks import Model
from rlcausality.task import (
    ANSWER_WORDS,
    CLOSE_THINK,
    USER_TEMPLATES,
    trace_body,
    trace_completion,
)

REQUIRED_COLUMNS = ("id", "input", "label")
CARRIED_COLUMNS = ("label", "id", "relation", "num_variables", "class_id")

FORMAT_PROMPTS = {"sft": "sft", "grpo": "grpo", "trace": "grpo"}  # format -> prompt style
COMPLETION_FORMATS = ("sft", "trace")  # formats whose rows carry a completion

Message = dict[str, str]


def system_prompt(model_settings: Model) -> str | None:
    """The system turn's text, or None when the model sets none or its family takes none."""
    family = get_family(model_settings.family)
    text = model_settings.system_prompt
    if text is None or not family.supports_system_prompt:
        return None
    return str(text)


def build_prompt(model_settings: Model, input_text: str, fmt: str) -> list[Message]:
    """The conversational prompt (optional system turn, then the user turn) for the prompt
    style ``fmt`` (``sft`` or ``grpo``)."""
    if fmt not in USER_TEMPLATES:
        raise ValueError(f"prompt style must be one of {sorted(USER_TEMPLATES)}, got {fmt!r}")
    messages: list[Message] = []
    system = system_prompt(model_settings)
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": USER_TEMPLATES[fmt].format(input=input_text)})
    return messages


def answer_completion(label: int, opens_think: bool = False) -> list[Message]:
    prefix = CLOSE_THINK if opens_think else ""
    return [{"role": "assistant", "content": prefix + ANSWER_WORDS[int(label)]}]


def tokenized_sft_row(tokenizer: Any, row: dict[str, Any]) -> dict[str, list[int]]:
    """``input_ids`` and ``completion_mask`` of an SFT row, prompt exactly as evaluation sends it.

    For templates that open ``<think>`` in the generation prompt (and drop reasoning from a
    rendered assistant turn) prompt+completion is not an extension of the prompt, so TRL's
    conversational path would train on a context evaluation never shows. Here the prompt is
    the rendered generation prompt (tokenised as evaluation tokenises it, no special tokens
    added), the completion its continuation and the end-of-sequence token.
    """
    prompt_ids = tokenizer(render(tokenizer, row["prompt"], True), add_special_tokens=False)[
        "input_ids"
    ]
    text = "".join(message["content"] for message in row["completion"])
    completion_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    completion_ids = [*completion_ids, tokenizer.eos_token_id]
    return {
        "input_ids": prompt_ids + completion_ids,
        "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids),
    }


def validate_row(row: dict[str, Any], where: str) -> None:
    """Raise DataError naming ``where`` (file:line) for a row that cannot be formatted."""
    missing = [column for column in REQUIRED_COLUMNS if column not in row]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}")
    if not isinstance(row["input"], str) or not row["input"].strip():
        raise DataError(f"{where}: column 'input' must be a non-empty string")
    label = row["label"]
    if isinstance(label, bool) or label not in (0, 1):
        raise DataError(f"{where}: label must be 0 or 1, got {label!r}")


def oracle_trace(input_text: str, lookup: Collection[str] = ()) -> str | None:
    """The body of the item's oracle trace, None when no DAG fits its premise or the text is
    not a Corr2Cause item the reasoner reads; ``lookup``: ``task.trace_body``'s."""
    try:
        derivation = symbolic.derive(input_text)
    except (ParseError, ValueError):
        return None
    return None if derivation is None else trace_body(derivation, lookup)


def format_row(
    row: dict[str, Any], model_settings: Model, fmt: str, lookup: Collection[str] = ()
) -> dict[str, Any] | None:
    """The formatted row of ``fmt``; None for a ``trace`` row without an oracle trace.
    ``lookup`` (``format.trace_lookup``) writes the completions of ``trace`` rows; the
    ``trace`` column of ``grpo`` rows, which the trace reward and metrics read the lists of,
    is always the plain verdict's."""
    out: dict[str, Any] = {
        "prompt": build_prompt(model_settings, row["input"], FORMAT_PROMPTS[fmt])
    }
    opens_think = get_family(model_settings.family).opens_think
    if fmt == "sft":
        out["completion"] = answer_completion(row["label"], opens_think)
    elif fmt in ("grpo", "trace"):
        body = oracle_trace(row["input"], lookup if fmt == "trace" else ())
        if fmt == "grpo":
            out["trace"] = body
        elif body is None:
            return None
        else:
            text = trace_completion(body, row["label"], opens_think)
            out["completion"] = [{"role": "assistant", "content": text}]
    else:
        raise ValueError(f"format must be one of {sorted(FORMAT_PROMPTS)}, got {fmt!r}")
    for column in CARRIED_COLUMNS:
        out[column] = row.get(column)
    out["label"] = int(row["label"])
    return out


KEPT_COLUMNS = ("id", "input", "label", "relation", "num_variables", "class_id")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a split (the columns formatting uses), validated.

    ``class_id`` (the cluster of the evaluation's bootstrap) is carried through; a row without
    one gets the hash of its premise (``load.premise_class_id``), None if the text has none.

    A bad row raises DataError naming file:line.
    """
    rows = []
    for lineno, row in read_jsonl_numbered(path):
        validate_row(row, f"{path}:{lineno}")
        kept = {column: row.get(column) for column in KEPT_COLUMNS}
        if kept["class_id"] is None:  # the items of one class share the premise
            kept["class_id"] = premise_class_id(row["input"])
        rows.append(kept)
    return rows


def render(tokenizer: Any, messages: list[Message], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def token_lengths(
    tokenizer: Any, rows: Sequence[dict[str, Any]], fmt: str, opens_think: bool = False
) -> list[int]:
    """Tokens of prompt+completion (sft, trace) or of the prompt with generation prompt (grpo)."""
    completions = fmt in COMPLETION_FORMATS
    if completions and opens_think:
        return [len(tokenized_sft_row(tokenizer, row)["input_ids"]) for row in rows]
    texts = [
        render(tokenizer, row["prompt"] + row["completion"], False)
        if completions
        else render(tokenizer, row["prompt"], True)
        for row in rows
    ]
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]
