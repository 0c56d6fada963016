"""Matplotlib figures of the reports, as PNG bytes (None when there is nothing to plot)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.io import atomic_open
from rlcausality.reporting.cells import (
    BASELINE_LABELS,
    ROBUSTNESS_SETS,
    STAGE_ORDER,
    Key,
    ordered_keys,
    relation_order,
)

BASELINE_LINES = (("always_valid", ":"), ("relation_prior", "-."), ("symbolic", "--"))
# Fixed curves per stage; every reward a GRPO log carries (``rewards/<name>/mean``) adds its own.
CURVES = {
    "sft": (("loss", "SFT training loss"),),
    "grpo": (
        ("reward", "GRPO mean reward"),
        ("frac_reward_zero_std", "GRPO groups with zero reward variance"),
    ),
}
REWARD_KEY = re.compile(r"^rewards/(?P<name>[^/]+)/mean$")


def curve_panels(
    histories: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
) -> list[tuple[str, str, str]]:
    """(stage, log key, title) of every curve the histories hold: the fixed ones, then one per
    reward found in a GRPO log (so a new reward function gets its curve without an edit here)."""
    panels = [(stage, key, title) for stage, curves in CURVES.items() for key, title in curves]
    rewards = sorted(
        {
            key
            for (_, stage), history in histories.items()
            if stage == "grpo"
            for entry in history
            for key in entry
            if REWARD_KEY.match(key)
        }
    )
    panels += [("grpo", key, f"GRPO {REWARD_KEY.match(key)['name']} reward") for key in rewards]
    return [
        p
        for p in panels
        if any(curve_series(h, p[1])[0] for (_, s), h in histories.items() if s == p[0])
    ]


def curve_series(log_history: Sequence[Mapping[str, Any]], key: str) -> tuple[list, list]:
    """(steps, values) of ``key`` in a Trainer log history (entries lacking it are skipped)."""
    steps, values = [], []
    for entry in log_history:
        if key in entry and "step" in entry and entry[key] is not None:
            steps.append(entry["step"])
            values.append(float(entry[key]))
    return steps, values


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def save_png(png: bytes, path: Path) -> Path:
    with atomic_open(path, "wb") as handle:
        handle.write(png)
    return path


def plot_training_curves(
    histories: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
) -> bytes | None:
    panels = curve_panels(histories)
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (stage, key, title) in zip(axes[0], panels, strict=True):
        for (model, hist_stage), history in sorted(histories.items()):
            steps, values = curve_series(history, key)
            if hist_stage == stage and steps:
                ax.plot(steps, values, marker=".", label=model)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def f1_with_errors(
    cells: Mapping[Key, Mapping[str, Any]], model: str, test: str, stages: Sequence[str]
) -> tuple[list[float], list[list[float]]]:
    """F1 per stage (NaN where absent) and its error bars (below, above) from ``f1_ci95``."""
    ys, below, above = [], [], []
    for stage in stages:
        metrics = cells.get((model, stage, test), {})
        y = metrics.get("f1", float("nan"))
        lo, hi = metrics.get("f1_ci95") or (y, y)
        ys.append(y)
        below.append(y - lo)
        above.append(hi - y)
    return ys, [below, above]


def plot_f1_by_stage(
    cells: Mapping[Key, Mapping[str, Any]], baselines: Mapping[str, Mapping[str, Any]]
) -> bytes | None:
    if not cells:
        return None
    plt = _pyplot()
    keys = ordered_keys(list(cells))
    models = list(dict.fromkeys(k[0] for k in keys))
    tests = list(dict.fromkeys(k[2] for k in keys))
    stages = [s for s in STAGE_ORDER if any(k[1] == s for k in keys)]
    fig, axes = plt.subplots(1, len(tests), figsize=(5 * len(tests), 3.8), squeeze=False)
    width = 0.8 / max(1, len(models))
    for ax, test in zip(axes[0], tests, strict=True):
        for index, model in enumerate(models):
            xs = [i + index * width for i in range(len(stages))]
            ys, yerr = f1_with_errors(cells, model, test, stages)
            ax.bar(xs, ys, width=width, label=model, yerr=yerr, capsize=3)
        for name, style in BASELINE_LINES:
            value = baselines.get(test, {}).get("baselines", {}).get(name, {}).get("f1")
            if value is not None:
                ax.axhline(value, linestyle=style, color="gray", label=BASELINE_LABELS[name])
        ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(stages))], stages)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"F1 (valid) on {test}")
        ax.set_ylabel("F1")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)


def plot_relation_heatmap(cells: Mapping[Key, Mapping[str, Any]], test_set: str) -> bytes | None:
    keys = [k for k in ordered_keys(list(cells)) if k[2] == test_set]
    relations = sorted(
        {r for k in keys for r in cells[k].get("by_relation", {})}, key=relation_order
    )
    if not keys or not relations:
        return None
    plt = _pyplot()
    grid = [
        [cells[k].get("by_relation", {}).get(r, {}).get("f1", float("nan")) for r in relations]
        for k in keys
    ]
    fig, ax = plt.subplots(figsize=(1.4 * len(relations) + 3, 0.5 * len(keys) + 1.8))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(relations)), relations, rotation=30, ha="right")
    ax.set_yticks(range(len(keys)), [f"{m} / {s}" for m, s, _ in keys])
    for row, values in enumerate(grid):
        for col, value in enumerate(values):
            if value == value:  # not NaN
                color = "white" if value < 0.5 else "black"
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", color=color)
    ax.set_title(f"F1 (valid) by relation on {test_set}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return figure_png(fig)


def plot_robustness(rows: Sequence[Sequence[Any]]) -> bytes | None:
    """Bars of the F1 drops in ``rows`` as :func:`rlcausality.reporting.tables.robustness_rows`
    makes them."""
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows) + 2), 3.8))
    width = 0.8 / len(ROBUSTNESS_SETS)
    for index, test in enumerate(ROBUSTNESS_SETS):
        drops = [r[3 + 2 * index] if r[3 + 2 * index] is not None else float("nan") for r in rows]
        ax.bar([i + index * width for i in range(len(rows))], drops, width=width, label=test)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks([i + width / 2 for i in range(len(rows))], [r[0] for r in rows], rotation=20)
    ax.set_ylabel("F1(test) − F1(variant)")
    ax.set_title("Robustness: F1 drop from test to its variants (higher = less robust)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)
