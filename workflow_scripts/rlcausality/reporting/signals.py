"""What the answer metrics do not show: whether the reasoning was right, and whether GRPO had
anything to learn from.

* ``trace_table``: per evaluated cell with oracle traces (``metrics.trace``), how often the
  completion states the trace and how often its ``Adjacent`` and ``Fixed`` lists equal the
  exact reasoner's (``metrics.trace_metrics``).
* ``grpo_signal_table``: per GRPO log, the logged steps, the share of groups whose completions
  all had the same reward (``frac_reward_zero_std``: no advantage, no gradient) over all steps
  and over the last quarter, and the format and total reward at the end (mean of the last
  quarter of the logged steps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlcausality.reporting.cells import Key, ordered_keys
from rlcausality.reporting.plots import curve_series
from rlcausality.reporting.render import Table

TRACE_COLUMNS = (
    ("states_trace", "states a trace"),
    ("adjacency_match", "adjacencies = oracle"),
    ("fixed_match", "fixed edges = oracle"),
    ("both_match", "both = oracle"),
)
# metrics.trace_metrics' pooled adjacent-pair scores, beside the reference of listing every pair
PAIR_COLUMNS = (
    ("f1", "adjacent pairs: F1"),
    ("accuracy", "pairs right"),
    ("every_pair_accuracy", "pairs right by listing every pair"),
)
ZERO_STD = "frac_reward_zero_std"
FORMAT_REWARD = "rewards/format/mean"


def trace_table(cells: Mapping[Key, Mapping[str, Any]]) -> Table | None:
    """The trace agreement of every cell that has it; None when none has."""
    keys = [k for k in ordered_keys(list(cells)) if (cells[k].get("trace") or {}).get("n")]
    if not keys:
        return None
    rows = [[" / ".join(k), cells[k]["trace"]["n"], *_trace_cells(cells[k]["trace"])] for k in keys]
    headers = ["model / stage / test set", "n (with an oracle trace)"]
    headers += [title for _, title in TRACE_COLUMNS + PAIR_COLUMNS]
    return Table(headers, rows, "Reasoning traces against the exact reasoner's")


def _trace_cells(trace: Mapping[str, Any]) -> list[Any]:
    """One cell's trace agreement, then its adjacent-pair scores (None where it has none)."""
    pairs = trace.get("adjacency_pairs") or {}
    return [trace[c] for c, _ in TRACE_COLUMNS] + [pairs.get(c) for c, _ in PAIR_COLUMNS]


def _values(history: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return curve_series(history, key)[1]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _last_quarter(values: Sequence[float]) -> list[float]:
    return list(values[-max(1, len(values) // 4) :]) if values else []


def signal_row(history: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Logged steps, zero-variance share (all, last quarter), end format and total reward."""
    zero = _values(history, ZERO_STD)
    return [
        len(_values(history, "reward")),
        _mean(zero),
        _mean(_last_quarter(zero)),
        _mean(_last_quarter(_values(history, FORMAT_REWARD))),
        _mean(_last_quarter(_values(history, "reward"))),
    ]


def grpo_signal_table(
    histories: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
) -> Table | None:
    """One row per GRPO log history; None when there is none."""
    grpo = sorted(key for key in histories if key[1] == "grpo" and histories[key])
    if not grpo:
        return None
    headers = [
        "model",
        "logged steps",
        "zero-variance groups (all steps)",
        "zero-variance groups (last quarter)",
        "format reward (last quarter)",
        "reward (last quarter)",
    ]
    rows = [[model, *signal_row(histories[(model, stage)])] for model, stage in grpo]
    return Table(headers, rows, "GRPO training signal")
