"""What the answer metrics do not show: whether the reasoning was right, and whether GRPO had
anything to learn from.

* ``trace_table``: per evaluated cell with oracle traces (``metrics.trace``), how often the
  completion states the trace and how often its ``Adjacent`` and ``Fixed`` lists equal the
  exact reasoner's (``metrics.trace_metrics``); how often its answer is the one its own lists
  imply, and the F1 of those implied answers: a reading better than the answers shows there.
* ``grpo_signal_table``: per GRPO log, the logged steps, the share of groups whose completions
  all had the same reward (``frac_reward_zero_std``: no advantage, no gradient) over all steps
  and over the last quarter, and the format and total reward at the end (mean of the last
  quarter of the logged steps).
* ``reward_spread_table``: per reward of a GRPO stage, from its logged completions, how much it
  varied within a group and its share of the weighted total's within-group variance: the
  variance the advantages are scaled by, so the share is how much the reward steered the
  update. A dense reward with a high mean can still steer little (docs/demo.md).
"""

from __future__ import annotations

import math
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
# metrics.trace_metrics' answer the completion's own lists imply, and how often it is the answer
LISTS_COLUMNS = (
    ("consistent", "answer = its lists' answer"),
    ("f1", "F1 of its lists' answer"),
)
ZERO_STD = "frac_reward_zero_std"
GROUP_KEYS = ("step", "prompt")  # a group: one prompt's completions at one step
FORMAT_REWARD = "rewards/format/mean"


def trace_table(cells: Mapping[Key, Mapping[str, Any]]) -> Table | None:
    """The trace agreement of every cell that has it; None when none has."""
    keys = [k for k in ordered_keys(list(cells)) if (cells[k].get("trace") or {}).get("n")]
    if not keys:
        return None
    rows = [[" / ".join(k), cells[k]["trace"]["n"], *_trace_cells(cells[k]["trace"])] for k in keys]
    headers = ["model / stage / test set", "n (with an oracle trace)"]
    headers += [title for _, title in TRACE_COLUMNS + PAIR_COLUMNS + LISTS_COLUMNS]
    return Table(headers, rows, "Reasoning traces against the exact reasoner's")


def _trace_cells(trace: Mapping[str, Any]) -> list[Any]:
    """One cell's trace agreement, its adjacent-pair scores, then whether its answers follow
    from its lists and how good the answers its lists imply are (None where it has none)."""
    pairs = trace.get("adjacency_pairs") or {}
    implied = trace.get("lists_answer") or {}
    return [
        *(trace[c] for c, _ in TRACE_COLUMNS),
        *(pairs.get(c) for c, _ in PAIR_COLUMNS),
        trace.get("consistent"),
        implied.get("f1"),
    ]


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


def reward_weights(manifest: Mapping[str, Any] | None) -> dict[str, float] | None:
    """The GRPO job's rewards and their weights (its manifest's settings); None without them."""
    grpo = ((manifest or {}).get("settings") or {}).get("grpo") or {}
    rewards = grpo.get("rewards")
    if not rewards:
        return None
    weights = grpo.get("reward_weights") or [1.0] * len(rewards)
    return {str(name): float(weight) for name, weight in zip(rewards, weights, strict=True)}


def by_group(completions: Any) -> Any:
    """GRPO's logged completions grouped by ``GROUP_KEYS`` (pandas ``groupby``); the prompt,
    logged as a list of messages, is compared as its text."""
    frame = completions.assign(prompt=completions["prompt"].astype(str))
    return frame.groupby(list(GROUP_KEYS))


def reward_spread(completions: Any, weights: Mapping[str, float]) -> Any:
    """Per reward (rows, pandas): its weight, mean within-group standard deviation, share of
    the weighted total's within-group variance, and within-group correlation with correctness;
    ``attrs["groups"]`` is the number of groups.

    A group is one prompt's completions at one step. With each reward centred on its group's
    mean (``c_i``) and the weighted total ``t = sum_i w_i c_i``, reward ``i``'s share is
    ``sum(w_i c_i t) / sum(t^2)`` over all completions: the shares add up to 1 and split the
    variance the advantages are scaled by, covariances included.
    """
    import pandas as pd

    names = [name for name in weights if name in completions]
    grouped = by_group(completions)
    groups = grouped[names]
    centred = completions[names] - groups.transform("mean")
    weight = pd.Series(dict(weights))[names]
    weighted = centred * weight
    total = weighted.sum(axis=1)
    spread = pd.DataFrame(
        {
            "weight": weight,
            "within-group std": groups.std(ddof=0).mean(),
            "share of variance": weighted.mul(total, axis=0).sum() / (total**2).sum(),
        }
    )
    if "correctness" in names:
        spread["correlation with correctness"] = centred.corrwith(centred["correctness"])
    spread.attrs["groups"] = grouped.ngroups
    return spread


def correlation_with_correctness(spread: Any, name: str) -> float | None:
    """A reward's within-group correlation with correctness (``reward_spread``); None for
    correctness itself and where it is undefined (a reward that never varied in a group)."""
    if "correlation with correctness" not in spread or name == "correctness":
        return None
    value = float(spread.loc[name, "correlation with correctness"])
    return None if math.isnan(value) else value


def reward_spread_table(completions: Any, manifest: Mapping[str, Any] | None) -> Table | None:
    """``reward_spread`` of a GRPO stage's logged completions; None without them or weights."""
    weights = reward_weights(manifest)
    if completions is None or not weights or not len(completions):
        return None
    spread = reward_spread(completions, weights)
    rows = [
        [
            name,
            row["weight"],
            row["within-group std"],
            row["share of variance"],
            correlation_with_correctness(spread, name),
        ]
        for name, row in spread.iterrows()
    ]
    headers = [
        "reward",
        "weight",
        "within-group std",
        "share of the total's within-group variance",
        "within-group correlation with correctness",
    ]
    caption = (
        f"GRPO rewards within a group ({spread.attrs['groups']} groups, {len(completions)} "
        "logged completions). Share: each reward's part of the weighted total's within-group "
        "variance, the variance the advantages are scaled by; a reward with a small share "
        "steers the update little"
    )
    return Table(headers, rows, caption)
