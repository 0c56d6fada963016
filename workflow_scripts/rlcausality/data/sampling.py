"""The train sample of a formatted split: which rows, how many of each label, and the stats.

``format_split`` formats and measures rows (``chat_format.format_row``, ``token_lengths``) in a
seeded order until a cap or a balanced quota is met; ``without_rows_of`` leaves out another
sample's rows first (``format.grpo_prompts: unseen``), ``of_relations`` keeps some relations'
rows alone (``format.grpo_relations``). The CLI is ``rlcausality.data.formatting``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcausality.data.chat_format import format_row, system_prompt, token_lengths
from rlcausality.io import DataError, read_jsonl_numbered
from rlcausality.models.families import get_family
from rlcausality.settings.blocks import Settings
from rlcausality.task import ANSWER_WORDS


def without_rows_of(rows: list[dict[str, Any]], path: str | Path) -> list[dict[str, Any]]:
    """``rows`` less those whose ``id`` is a row's of ``path`` (another stage's sample:
    ``format.grpo_prompts: unseen`` leaves SFT's train rows out of GRPO's prompts).

    DataError naming ``path`` when one of its rows has no id, or when nothing is left.
    """
    excluded = set()
    for lineno, row in read_jsonl_numbered(path):
        if row.get("id") is None:
            raise DataError(f"{path}:{lineno}: row has no 'id'; rows are left out by id")
        excluded.add(row["id"])
    kept = [row for row in rows if row["id"] not in excluded]
    if not kept:
        raise DataError(
            f"{path}: its {len(excluded)} ids cover all {len(rows)} rows; none is left to "
            "sample (format.grpo_prompts: unseen needs a train split larger than SFT's sample)"
        )
    return kept


def of_relations(
    rows: list[dict[str, Any]], relations: Sequence[str], path: str | Path
) -> list[dict[str, Any]]:
    """``rows`` of ``relations`` alone (``format.grpo_relations``: GRPO's prompts about the
    relations named). DataError naming ``path`` when none is left."""
    wanted = set(relations)
    kept = [row for row in rows if row.get("relation") in wanted]
    if not kept:
        raise DataError(
            f"{path}: none of its {len(rows)} rows (left to sample) has a relation in "
            f"{sorted(wanted)} (format.grpo_relations)"
        )
    return kept


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


Measured = tuple[int, dict[str, Any], int]  # (row index, formatted row, tokens)


@dataclass
class _Pass:
    """What a pass over a split measured: every length, the rows kept, those without a trace."""

    lengths: list[int] = field(default_factory=list)
    kept: list[Measured] = field(default_factory=list)
    by_cell: dict[Cell, list[Measured]] = field(default_factory=dict)
    no_trace: int = 0


Cell = tuple[str | None, int]  # (relation, or None when the quota is by label alone; label)
Balance = bool | str  # format.balance: False, True (by label) or "relation"


def _cell(row: dict[str, Any], by_relation: bool) -> Cell:
    relation = row.get("relation") if by_relation else None
    return (None if relation is None else str(relation), int(row["label"]))


def _quota(
    rows: list[dict[str, Any]], max_samples: int | None, balance: Balance
) -> dict[Cell, int] | None:
    """Rows wanted per cell: ``balance: true`` half Yes, half No; ``relation`` an equal share
    per relation of ``rows`` (the first relations in name order take the remainder), halved
    between Yes and No where the relation has rows of both labels (else all of its one)."""
    if not balance or max_samples is None:
        return None
    if balance is True:
        return {(None, 1): max_samples // 2, (None, 0): max_samples - max_samples // 2}
    labels: dict[str | None, set[int]] = {}
    for row in rows:
        relation, label = _cell(row, by_relation=True)
        labels.setdefault(relation, set()).add(label)
    share, extra = divmod(max_samples, len(labels))
    quota: dict[Cell, int] = {}
    for rank, relation in enumerate(sorted(labels, key=str)):
        want = share + (rank < extra)
        yes = want // 2 if len(labels[relation]) == 2 else want * (1 in labels[relation])
        quota.update({(relation, 1): yes, (relation, 0): want - yes})
    return {cell: want for cell, want in quota.items() if want}


def _measure(
    rows: list[dict[str, Any]],
    settings: Settings,
    fmt: str,
    tokenizer: Any,
    limits: tuple[int | None, dict[Cell, int] | None, int, bool],
    order: list[int],
) -> _Pass:
    """Format and measure rows in ``order``, chunk by chunk, until the cap or quota is met."""
    max_samples, quota, chunk, drop_long = limits
    max_length = int(settings.format.max_length)
    opens_think = get_family(settings.model.family).opens_think
    lookup = settings.format.trace_lookup or ()
    by_relation = quota is not None and any(relation is not None for relation, _ in quota)
    done = _Pass()
    for begin in range(0, len(order), chunk):
        pairs = [
            (i, format_row(rows[i], settings.model, fmt, lookup))
            for i in order[begin : begin + chunk]
        ]
        done.no_trace += sum(row is None for _, row in pairs)
        indices = [i for i, row in pairs if row is not None]
        formatted = [row for _, row in pairs if row is not None]
        measured = token_lengths(tokenizer, formatted, fmt, opens_think)
        done.lengths.extend(measured)
        fitting = [
            (i, row, n)
            for i, row, n in zip(indices, formatted, measured, strict=True)
            if n <= max_length or not drop_long
        ]
        done.kept.extend(fitting)
        if quota is not None:
            for item in fitting:
                done.by_cell.setdefault(_cell(item[1], by_relation), []).append(item)
            if all(len(done.by_cell.get(cell, [])) >= want for cell, want in quota.items()):
                break
        elif max_samples is not None and len(done.kept) >= max_samples:
            break
    return done


def _balanced(done: _Pass, quota: dict[Cell, int], seed: int, max_length: int) -> list[Measured]:
    """``quota`` rows per cell, a cell's rows repeated evenly when it has too few."""
    chosen: list[Measured] = []
    for (relation, label), want in quota.items():
        pool = done.by_cell.get((relation, label), [])
        if want and not pool:
            which = f"{ANSWER_WORDS[label]} row" + (f" of {relation}" if relation else "")
            raise DataError(
                f"format.balance: no {which} fits max_length {max_length}; a balanced sample "
                "needs both labels (set format.balance: false)"
            )
        copies, extra = divmod(want, len(pool)) if pool else (0, 0)
        chosen.extend(pool * copies + random.Random(seed + 1 + label).sample(pool, extra))
    return sorted(chosen, key=lambda k: k[0])


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
    take one; the extra copies are a seeded choice). ``format.balance: relation`` balances
    each relation the same way instead (``_quota``: an equal share per relation, half Yes and
    half No where it has both), so no relation's rows teach an answer by their relation alone.
    Only the capped (train) sample is balanced; a split formatted without a cap (test,
    validation) keeps its natural labels.

    ``drop_long=False`` (the test sets) keeps every row, however long: an evaluation sample must
    be the same items for every model and the baselines, whatever each model's tokenizer.
    """
    max_length = int(settings.format.max_length)
    quota = _quota(rows, max_samples, settings.format.balance)
    order = list(range(len(rows)))
    if max_samples is not None:
        random.Random(seed).shuffle(order)
    done = _measure(rows, settings, fmt, tokenizer, (max_samples, quota, chunk, drop_long), order)
    if quota is not None:
        selected = _balanced(done, quota, seed, max_length)
    else:
        capped = done.kept[:max_samples] if max_samples is not None else done.kept
        selected = sorted(capped, key=lambda k: k[0])
    out_rows = [row for _, row, _ in selected]
    stats = split_stats(rows, settings, fmt, done, selected)
    stats.update(max_samples=max_samples, balance=settings.format.balance if quota else False)
    stats["too_long_kept"] = 0 if drop_long else sum(n > max_length for n in done.lengths)
    return out_rows, stats


def split_stats(
    rows: list[dict[str, Any]],
    settings: Settings,
    fmt: str,
    done: _Pass,
    selected: list[Measured],
) -> dict[str, Any]:
    """The stats of a formatted split: counts, what was dropped and why, labels, lengths."""
    out_rows = [row for _, row, _ in selected]
    distinct = len({i for i, _, _ in selected})
    dropped_too_long = len(done.lengths) - len(done.kept)
    labels = Counter(row["label"] for row in out_rows)
    return {
        "fmt": fmt,
        "model": settings.model.name,
        "rows_in": len(rows),
        "rows_measured": len(done.lengths),
        "rows_out": len(out_rows),
        "no_trace": done.no_trace,
        "dropped_too_long": dropped_too_long,
        "dropped_by_cap": len(rows) - distinct - dropped_too_long - done.no_trace,
        "max_length": int(settings.format.max_length),
        "distinct_rows": distinct,
        "repeated_rows": len(selected) - distinct,
        "labels": {"yes": labels.get(1, 0), "no": labels.get(0, 0)},
        "yes_fraction": labels.get(1, 0) / len(out_rows) if out_rows else None,
        "length_all": length_stats(done.lengths),
        "length_out": length_stats([n for _, _, n in selected]),
        "relations": dict(sorted(Counter(str(r["relation"]) for r in out_rows).items())),
        "system_prompt": system_prompt(settings.model),
    }
