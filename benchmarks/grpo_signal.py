"""What a GRPO run had to learn from, step by step, from the files the job writes.

For each GRPO output folder (``results/models/{model}/grpo``: ``log_history.json`` and the
completions TRL logs, ``completions/*.parquet``) it prints the logged steps and, as the mean
over all steps and by fifth of the run:

- the share of groups whose completions all got the same total reward (TRL's
  ``frac_reward_zero_std``: no advantage, no gradient);
- the share of groups whose completions were all right or all wrong (the same, for the
  correctness reward alone: the groups where the answer itself carries no signal, whatever the
  trace and format rewards add);
- the mean of each reward, and the completions' mean length;
- the median step time;
- for each reward, how much it moved within a group: its within-group standard deviation and
  its share of the weighted total reward's within-group variance (the variance the group's
  advantages are scaled by; weights from the job's ``manifest.json``), and the within-group
  correlation of each reward with correctness (``reporting.signals.reward_spread``, which the
  GRPO report shows too). A reward whose share is small steers the update little, whatever
  its mean;
- with a pre-pass (``grpo.prepass_samples``), what it visited and kept (the manifest's
  ``data.train.prepass``).

    python benchmarks/grpo_signal.py results/models/smollm2-135m/grpo \
        ../seed43/results/models/smollm2-135m/grpo
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rlcausality.io import read_json
from rlcausality.reporting.examples import load_completions
from rlcausality.reporting.plots import curve_series
from rlcausality.reporting.signals import (
    ZERO_STD,
    by_group,
    correlation_with_correctness,
    reward_spread,
    reward_weights,
)

PARTS = 5


def by_part(values: Sequence[float], parts: int = PARTS) -> list[float]:
    """The mean of each of ``parts`` consecutive, near-equal slices of ``values``."""
    size, extra = divmod(len(values), parts)
    out, start = [], 0
    for index in range(min(parts, len(values))):
        end = start + size + (index < extra)
        out.append(statistics.fmean(values[start:end]))
        start = end
    return out


def answer_ties(completions: pd.DataFrame, reward: str = "correctness") -> pd.Series:
    """Per step, the share of groups (one prompt's completions) whose ``reward`` is all equal."""
    tied = by_group(completions)[reward].agg(lambda values: values.nunique() == 1)
    return tied.groupby(level="step").mean()


def spread_lines(completions: pd.DataFrame, weights: dict[str, float]) -> list[str]:
    lines = []
    spread = reward_spread(completions, weights)
    for name, row in spread.iterrows():
        line = (
            f"  {name} (weight {row['weight']:g}): within-group std {row['within-group std']:.3f},"
            f" share of the total's within-group variance {row['share of variance']:.2f}"
        )
        correlation = correlation_with_correctness(spread, name)
        if correlation is not None:
            line += f", within-group correlation with correctness {correlation:+.2f}"
        lines.append(line)
    return lines


def summary(folder: Path) -> list[str]:
    history = [entry for entry in read_json(folder / "log_history.json") if "reward" in entry]
    if not history:
        raise SystemExit(f"{folder}/log_history.json: no logged GRPO step")

    def values(key: str) -> list[float]:
        return curve_series(history, key)[1]

    lines = [f"{folder}: {len(history)} logged steps"]
    series = {"zero-variance groups (total reward)": values(ZERO_STD)}
    completions = load_completions(folder / "completions")
    if completions is not None:
        series["groups all right or all wrong"] = answer_ties(completions).tolist()
    for key in sorted(k for k in history[0] if k.startswith("rewards/") and k.endswith("/mean")):
        series[key.removeprefix("rewards/").removesuffix("/mean") + " reward"] = values(key)
    series["completion tokens"] = values("completions/mean_length")
    for name, numbers in series.items():
        parts = ", ".join(f"{value:.3f}" for value in by_part(numbers))
        lines.append(f"  {name}: {statistics.fmean(numbers):.3f} (by fifth: {parts})")
    times = values("step_time")
    if times:
        lines.append(f"  step time: median {statistics.median(times):.1f} s")
    manifest = read_json(folder / "manifest.json") if (folder / "manifest.json").is_file() else {}
    weights = reward_weights(manifest) if manifest else None
    if completions is not None and weights:
        lines += spread_lines(completions, weights)
    chosen = manifest.get("data", {}).get("train", {}).get("prepass")
    if chosen:
        lines.append(prepass_line(chosen))
    return lines


def prepass_line(counts: dict) -> str:
    """What the pre-pass (``grpo.prepass_samples``) kept: the manifest's ``data.train.prepass``."""
    return (
        f"  pre-pass: {counts['samples']} answers per prompt; {counts['visited']} prompts "
        f"visited, {counts['disagreeing_share']:.2f} of them disagreeing ({counts['all_right']} "
        f"all right, {counts['all_wrong']} all wrong); {counts['kept']} kept of "
        f"{counts['needed']} needed; {counts['completions']} completions"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="GRPO output folders")
    args = parser.parse_args(argv)
    for folder in args.folders:
        print("\n".join(summary(folder)))


if __name__ == "__main__":
    main()
