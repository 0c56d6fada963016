"""Per-model chat formatting of Corr2Cause rows into TRL prompt/completion rows.

The prompt builders here are shared with evaluation, so a model is always asked the same way it
was trained. ``sft`` rows carry a one-word assistant completion (``Yes``/``No``, after a
``</think>`` where the template opens ``<think>``); ``grpo`` rows
carry only the prompt, which asks for ``<think>…</think>`` reasoning then ``Therefore: Yes|No``.

CLI::

    python -m rlcausality.formatting --settings JSON --fmt sft|grpo --input SPLIT.jsonl \
        --output OUT.jsonl --stats OUT_STATS.json [--max-samples N] [--threads N]
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlcausality import cli
from rlcausality.corr2cause.load import premise_class_id
from rlcausality.io import DataError, read_jsonl, write_json, write_jsonl
from rlcausality.models.families import get_family
from rlcausality.settings import Model, Settings
from rlcausality.task import ANSWER_WORDS, CLOSE_THINK, USER_TEMPLATES

REQUIRED_COLUMNS = ("id", "input", "label")
CARRIED_COLUMNS = ("label", "id", "relation", "num_variables", "class_id")

Message = dict[str, str]


def system_prompt(model_settings: Model) -> str | None:
    """The system turn's text, or None when the model sets none or its family takes none."""
    family = get_family(model_settings.family)
    text = model_settings.system_prompt
    if text is None or not family.supports_system_prompt:
        return None
    return str(text)


def build_prompt(model_settings: Model, input_text: str, fmt: str) -> list[Message]:
    """The conversational prompt (optional system turn, then the user turn) for ``fmt``."""
    if fmt not in USER_TEMPLATES:
        raise ValueError(f"fmt must be one of {sorted(USER_TEMPLATES)}, got {fmt!r}")
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


def format_row(row: dict[str, Any], model_settings: Model, fmt: str) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt": build_prompt(model_settings, row["input"], fmt)}
    if fmt == "sft":
        family = get_family(model_settings.family)
        out["completion"] = answer_completion(row["label"], family.opens_think)
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
    with open(path, encoding="utf-8") as handle:
        line_numbers = [n for n, line in enumerate(handle, start=1) if line.strip()]
    for lineno, row in zip(line_numbers, read_jsonl(path), strict=True):
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
    """Tokens of prompt+completion (sft) or of the prompt with generation prompt (grpo)."""
    if fmt == "sft" and opens_think:
        return [len(tokenized_sft_row(tokenizer, row)["input_ids"]) for row in rows]
    texts = [
        render(tokenizer, row["prompt"] + row["completion"], False)
        if fmt == "sft"
        else render(tokenizer, row["prompt"], True)
        for row in rows
    ]
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def length_stats(lengths: Sequence[int]) -> dict[str, int | None]:
    return {
        "p50": percentile(lengths, 50),
        "p90": percentile(lengths, 90),
        "p99": percentile(lengths, 99),
        "max": max(lengths) if lengths else None,
    }


def format_split(
    rows: list[dict[str, Any]],
    settings: Settings,
    fmt: str,
    tokenizer: Any,
    max_samples: int | None = None,
    seed: int = 0,
    chunk: int = 1024,
    drop_long: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Formatted rows that fit ``format.max_length`` (at most ``max_samples``) and their stats.

    With a cap, rows are visited in a seeded random order and measured chunk by chunk until
    ``max_samples`` fit (so a 2,000-row sample of a 166k-row split measures few rows); the
    kept rows are written in their original order. Length percentiles cover the measured rows.

    With a cap and ``format.balance: true`` the sample is balanced: ``max_samples // 2`` Yes
    rows and the rest No rows, each drawn in the same seeded order; a label with fewer fitting
    rows than its quota has its rows repeated (every row the same number of times, give or
    take one; the extra copies are a seeded choice). Only the capped (train) sample is
    balanced; a split formatted without a cap (test, validation) keeps its natural labels.

    ``drop_long=False`` (the test sets) keeps every row, however long: an evaluation sample must
    be the same items for every model and the baselines, whatever each model's tokenizer.
    """
    max_length = int(settings.format.max_length)
    opens_think = get_family(settings.model.family).opens_think
    balance = bool(settings.format.balance) and max_samples is not None
    order = list(range(len(rows)))
    if max_samples is not None:
        random.Random(seed).shuffle(order)
    quota = (
        {1: max_samples // 2, 0: max_samples - max_samples // 2}
        if balance and max_samples is not None
        else None
    )
    lengths: list[int] = []
    kept: list[tuple[int, dict[str, Any], int]] = []
    by_label: dict[int, list[tuple[int, dict[str, Any], int]]] = {1: [], 0: []}
    for begin in range(0, len(order), chunk):
        indices = order[begin : begin + chunk]
        formatted = [format_row(rows[i], settings.model, fmt) for i in indices]
        measured = token_lengths(tokenizer, formatted, fmt, opens_think)
        lengths.extend(measured)
        fitting = [
            (i, row, n)
            for i, row, n in zip(indices, formatted, measured, strict=True)
            if n <= max_length or not drop_long
        ]
        kept.extend(fitting)
        if quota is not None:
            for item in fitting:
                by_label[item[1]["label"]].append(item)
            if all(len(by_label[label]) >= quota[label] for label in quota):
                break
        elif max_samples is not None and len(kept) >= max_samples:
            break
    dropped_too_long = len(lengths) - len(kept)
    repeated = 0
    if quota is not None:
        chosen: list[tuple[int, dict[str, Any], int]] = []
        for label, want in quota.items():
            pool = by_label[label]
            if want and not pool:
                raise DataError(
                    f"format.balance: no {ANSWER_WORDS[label]} row fits max_length {max_length}; "
                    "a balanced sample needs both labels (set format.balance: false)"
                )
            copies, extra = divmod(want, len(pool)) if pool else (0, 0)
            picked = pool * copies + random.Random(seed + 1 + label).sample(pool, extra)
            repeated += max(0, want - len(pool))
            chosen.extend(picked)
        selected = sorted(chosen, key=lambda k: k[0])
        distinct = len({i for i, _, _ in selected})
    else:
        selected = sorted(
            kept[:max_samples] if max_samples is not None else kept, key=lambda k: k[0]
        )
        distinct = len(selected)
    out_rows = [row for _, row, _ in selected]
    labels = Counter(row["label"] for row in out_rows)
    stats = {
        "fmt": fmt,
        "model": settings.model.name,
        "rows_in": len(rows),
        "rows_measured": len(lengths),
        "rows_out": len(out_rows),
        "dropped_too_long": dropped_too_long,
        "dropped_by_cap": len(rows) - distinct - dropped_too_long,
        "max_length": max_length,
        "too_long_kept": 0 if drop_long else sum(n > max_length for n in lengths),
        "max_samples": max_samples,
        "balance": balance,
        "distinct_rows": distinct,
        "repeated_rows": repeated,
        "labels": {"yes": labels.get(1, 0), "no": labels.get(0, 0)},
        "yes_fraction": labels.get(1, 0) / len(out_rows) if out_rows else None,
        "length_all": length_stats(lengths),
        "length_out": length_stats([n for _, _, n in selected]),
        "relations": dict(sorted(Counter(str(r["relation"]) for r in out_rows).items())),
        "system_prompt": system_prompt(settings.model),
    }
    return out_rows, stats


def main(argv: list[str] | None = None) -> None:
    parser = cli.parser(__doc__, "JSON: stage_settings(..., 'format')")
    parser.add_argument("--fmt", required=True, choices=sorted(USER_TEMPLATES))
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--max-samples", type=int, default=None, help="cap; 0 means none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep-long", action="store_true", help="keep rows over max_length (test sets)"
    )
    args = cli.configure(parser.parse_args(argv), needs=("format",))
    from rlcausality.models.loading import load_tokenizer

    settings = args.settings
    rows = read_rows(args.input)
    tokenizer = load_tokenizer(settings.model)
    cap = args.max_samples if args.max_samples and args.max_samples > 0 else None
    out_rows, stats = format_split(
        rows, settings, args.fmt, tokenizer, cap, args.seed, drop_long=not args.keep_long
    )
    stats["input"] = args.input
    write_jsonl(args.output, out_rows)
    write_json(args.stats, stats)


if __name__ == "__main__":
    cli.entry(main)
