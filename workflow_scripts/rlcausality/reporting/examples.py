"""What was rewarded and what was answered, to read beside the numbers.

* ``completion_blocks``: GRPO's logged completions (TRL's ``completions_NNNNN.parquet``, kept in
  the stage's ``completions/`` folder by ``rlcausality.training.tracking``), the logged steps cut
  into a few ranges; per range the completions with the highest and the lowest advantage, each with
  every reward.
* ``answer_blocks``: per relation, a few items the model got right and a few it got wrong, with
  the oracle's trace beside the model's completion where the prompt asks for reasoning. Items
  are taken in id order, so a report is the same each time it is built.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.reporting.cells import relation_order
from rlcausality.reporting.render import Block, Table, Text
from rlcausality.task import ANSWER_WORDS, completion_text, hypothesis_of, prompt_input

STEP_RANGES = 3  # the logged steps in this many ranges (early, middle, late)
PER_SIDE = 2  # completions with the highest and with the lowest advantage per range
PER_KIND = 2  # right and wrong answers per relation
MAX_CHARS = 700  # a longer completion is cut here (…)
TRL_COLUMNS = ("step", "prompt", "completion", "advantage")  # the rest are rewards


def load_completions(folder: str | Path) -> Any:
    """Every logged completion of a GRPO stage as one table (pandas), ordered by step."""
    import pandas as pd

    files = sorted(Path(folder).glob("completions_*.parquet"))
    if not files:
        return None
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def _cut(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS].rstrip() + " …"


def _messages_text(value: Any, role: str | None = None) -> str:
    """The text of a prompt or completion as TRL logs it: a string or a list of messages
    (parquet gives arrays of dicts); with ``role``, the last message of that role."""
    if isinstance(value, str):
        return value
    messages = [dict(m) for m in value]
    if role is not None:
        messages = [m for m in messages if m.get("role") == role][-1:]
    return completion_text(messages)


def _hypothesis(prompt: Any) -> str:
    text = _messages_text(prompt, role="user")
    return hypothesis_of(prompt_input(text)) or ""


def step_ranges(steps: Sequence[int], count: int = STEP_RANGES) -> list[tuple[int, int]]:
    """The distinct ``steps`` (sorted) cut into at most ``count`` consecutive ranges of about
    equal size, as (first, last)."""
    distinct = sorted(set(steps))
    count = max(1, min(count, len(distinct)))
    bounds = [round(i * len(distinct) / count) for i in range(count + 1)]
    return [(distinct[a], distinct[b - 1]) for a, b in itertools.pairwise(bounds)]


def completion_blocks(frame: Any) -> list[Block]:
    """The GRPO report's completions section; empty without logged completions."""
    if frame is None or len(frame) == 0:
        return []
    rewards = [c for c in frame.columns if c not in TRL_COLUMNS]
    headers = ["steps", "step", "advantage", *rewards, "hypothesis", "completion"]
    rows: list[list[Any]] = []
    classes: list[str] = []
    for first, last in step_ranges(frame["step"].tolist()):
        part = frame[(frame["step"] >= first) & (frame["step"] <= last)]
        ordered = part.sort_values(["advantage", "step"], ascending=[False, True], kind="stable")
        picks = [("high", ordered.head(PER_SIDE)), ("low", ordered.tail(PER_SIDE).iloc[::-1])]
        for kind, chosen in picks:
            for _, row in chosen.iterrows():
                rows.append(
                    [
                        f"{first}–{last}",
                        int(row["step"]),
                        float(row["advantage"]),
                        *(float(row[r]) for r in rewards),
                        _hypothesis(row["prompt"]),
                        _cut(_messages_text(row["completion"])),
                    ]
                )
                classes.append("good" if kind == "high" else "bad")
    steps = frame["step"].nunique()
    return [
        Text("Completions GRPO rewarded", "h2"),
        Text(
            f"TRL's logged completions ({len(frame)} from {steps} logged steps; "
            "tracking.log_completions). Per range of steps, the completions with the highest "
            f"and the lowest advantage ({PER_SIDE} each), with every reward; a completion is cut "
            f"at {MAX_CHARS} characters.",
            "note",
        ),
        Table(headers, rows, "Highest (green) and lowest (red) advantage per step range", classes),
    ]


def _answer_row(record: Mapping[str, Any], reasoning: bool) -> list[Any]:
    answer = record.get("answer")
    row = [
        record.get("relation"),
        record.get("id"),
        record.get("hypothesis") or "",
        ANSWER_WORDS[int(record["label"])],
        ANSWER_WORDS.get(answer, "unparsed") if answer is not None else "unparsed",
        _cut(record.get("completion")),
    ]
    if reasoning:
        row.append(record.get("trace") or "—")
    return row


def answer_blocks(
    test_set: str, predictions: Sequence[Mapping[str, Any]], reasoning: bool
) -> list[Block]:
    """Right and wrong answers per relation of one test set; empty without predictions."""
    if not predictions:
        return []
    by_relation: dict[str, list[Mapping[str, Any]]] = {}
    for record in sorted(predictions, key=lambda r: str(r.get("id"))):
        by_relation.setdefault(str(record.get("relation")), []).append(record)
    headers = ["relation", "id", "hypothesis", "label", "answer", "model's completion"]
    if reasoning:
        headers.append("oracle's trace")
    rows, classes = [], []
    for relation in sorted(by_relation, key=relation_order):
        records = by_relation[relation]
        right = [r for r in records if r.get("answer") == int(r["label"])][:PER_KIND]
        wrong = [r for r in records if r.get("answer") != int(r["label"])][:PER_KIND]
        for kind, chosen in (("good", right), ("bad", wrong)):
            rows += [_answer_row(r, reasoning) for r in chosen]
            classes += [kind] * len(chosen)
    caption = (
        f"Right (green) and wrong (red) answers per relation on {test_set}, "
        f"up to {PER_KIND} each, first by id"
    )
    return [Table(headers, rows, caption, classes)]
