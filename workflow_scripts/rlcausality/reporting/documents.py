"""The per-stage and summary reports, assembled as blocks (plots are saved while assembling)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rlcausality.evaluation.uncertainty import RESAMPLES
from rlcausality.reporting.cells import PRIMARY_TEST_SET, Key, ordered_keys
from rlcausality.reporting.examples import answer_blocks, completion_blocks
from rlcausality.reporting.paired import paired_blocks
from rlcausality.reporting.plots import (
    plot_f1_by_stage,
    plot_relation_heatmap,
    plot_robustness,
    plot_training_curves,
    save_png,
)
from rlcausality.reporting.render import Block, Image, Text, fmt
from rlcausality.reporting.signals import grpo_signal_table, reward_spread_table, trace_table
from rlcausality.reporting.tables import (
    baseline_provenance,
    breakdown_table,
    confusion_table,
    f1_pivot,
    manifest_table,
    missing_table,
    overview_table,
    provenance_table,
    robustness_rows,
    robustness_table,
    summary_table,
)
from rlcausality.reporting.tidy import metrics_frame
from rlcausality.task import answer_style

DEFINITIONS = (
    "F1, precision and recall are of the valid class (label 1); a ratio 0/0 is reported as 0. "
    "An unparsed answer counts as wrong for accuracy and as predicted invalid in the confusion "
    'matrix. "truncated" is the share of completions that reached the token limit '
    "(max_new_tokens) without an end of sequence. The random baseline's numbers are analytic "
    "expectations, not a sampled run. Brackets give 95% percentile bootstrap intervals "
    f"({RESAMPLES} resamples, fixed seed) that resample whole equivalence classes, since the "
    "items of a class share their premise and their answers are correlated; n is the number "
    "of items, classes the number of classes resampled. With few classes an interval can reach "
    "0: a resample without a valid item has precision, recall and F1 0 (0/0 := 0)."
)


class Document(NamedTuple):
    title: str
    subtitle: str
    blocks: list[Block]


def missing_cells(expected: Sequence[Key], cells: Mapping[Key, Any]) -> list[Key]:
    return [k for k in expected if k not in cells]


def stage_document(
    cells: Mapping[Key, Mapping[str, Any]],
    manifest: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
    predictions: Mapping[Key, Sequence[Mapping[str, Any]]] | None = None,
    completions: Any = None,
) -> Document:
    """The report of one model and stage; ``cells`` are its test sets, ``predictions`` their
    items (right and wrong answers per relation), ``completions`` GRPO's logged completions
    (``reporting.examples.load_completions``)."""
    keys = ordered_keys(list(cells))
    model, stage = keys[0][0], keys[0][1]
    blocks: list[Block] = [Text(DEFINITIONS, "note"), overview_table(cells, keys)]
    for key in keys:
        metrics = cells[key]
        blocks.append(Text(f"Test set {key[2]}", "h2"))
        gen = metrics.get("generation") or {}
        blocks.append(
            Text(
                "Generation: "
                + ", ".join(f"{k}={fmt(v)}" for k, v in sorted(gen.items()))
                + f". Items: {fmt((metrics.get('data') or {}).get('evaluated'))} of "
                f"{fmt((metrics.get('data') or {}).get('rows'))}."
            )
        )
        blocks.append(confusion_table(metrics))
        traces = trace_table({key: metrics})
        if traces is not None:
            blocks.append(traces)
        blocks.append(breakdown_table(metrics, "by_relation", "relation"))
        blocks.append(breakdown_table(metrics, "by_num_variables", "number of variables"))
        reasoning = answer_style((metrics.get("generation") or {}).get("prompt_style", "sft"))
        blocks += answer_blocks(key[2], (predictions or {}).get(key, []), reasoning == "reasoning")
    if manifest is not None:
        blocks.append(Text("Training", "h2"))
        blocks.append(manifest_table(manifest))
    signal = grpo_signal_table({(model, stage): history}) if history else None
    if signal is not None:
        blocks.append(signal)
    spread = reward_spread_table(completions, manifest)
    if spread is not None:
        blocks.append(spread)
    if history:
        png = plot_training_curves({(model, stage): history})
        if png is not None:
            blocks.append(Image(png, f"Training curves of {model} / {stage}"))
    blocks += completion_blocks(completions)
    blocks.append(Text("Provenance", "h2"))
    blocks.append(provenance_table(cells, keys))
    subtitle = f"Model {model}, stage {stage}: {len(cells)} test set(s)"
    return Document(f"rlcausality: {model} / {stage}", subtitle, blocks)


def plot_blocks(
    cells: Mapping[Key, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    histories: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    robust: list[list[Any]],
    plots_dir: Path,
) -> list[Block]:
    """The summary's figures (each saved to ``plots_dir``), or a note where there is no data."""
    plots: list[tuple[str, bytes | None, str]] = [
        (
            "f1_by_stage.png",
            plot_f1_by_stage(cells, baselines),
            "F1 (valid) by stage and model (error bars: 95% intervals)",
        ),
        (
            "relation_f1_heatmap.png",
            plot_relation_heatmap(cells, PRIMARY_TEST_SET),
            f"Per-relation F1 on {PRIMARY_TEST_SET}",
        ),
        ("robustness.png", plot_robustness(robust), "Robustness drop of F1"),
        ("training_curves.png", plot_training_curves(histories), "Training curves (SFT, GRPO)"),
    ]
    blocks: list[Block] = []
    for name, png, alt in plots:
        if png is not None:
            blocks.append(Image(png, alt, save_png(png, plots_dir / name)))
        else:
            blocks.append(Text(f"{alt}: no data to plot.", "note"))
    return blocks


def summary_document(
    cells: Mapping[Key, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    histories: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    absent: Sequence[str],
    expected: Sequence[Key],
    plots_dir: Path,
    comparisons: Sequence[Sequence[Any]] = (),
    frame: Any = None,
) -> Document:
    """The report across everything; writes its plots to ``plots_dir``. ``absent`` names the
    MODEL:STAGE pairs whose log history was asked for but does not exist; ``comparisons`` are
    the rows of the paired comparisons (``reporting.paired.comparison_rows``); ``frame`` the
    tidy table the metric tables are read from (``reporting.tidy.metrics_frame``)."""
    frame = metrics_frame(cells, baselines) if frame is None else frame
    blocks: list[Block] = []
    missing = missing_cells(expected, cells)
    if missing:
        blocks.append(
            Text(
                f"NOT BUILT: {len(missing)} of {len(expected)} expected model/stage/test-set "
                "cells have no metrics: " + ", ".join(":".join(k) for k in missing),
                "warning",
            )
        )
    elif expected:
        blocks.append(Text(f"All {len(expected)} expected cells were built.", "ok"))
    blocks.append(Text(DEFINITIONS, "note"))
    blocks.append(Text("F1 by model, stage and test set", "h2"))
    blocks.append(f1_pivot(frame, cells, baselines, expected))

    robust = robustness_rows(cells)
    blocks.append(Text("Plots", "h2"))
    blocks += plot_blocks(cells, baselines, histories, robust, plots_dir)
    if robust:
        blocks.append(Text("Robustness", "h2"))
        blocks.append(robustness_table(robust))
    blocks.append(Text("All metrics", "h2"))
    blocks.append(summary_table(frame, cells, baselines, expected))
    blocks += [t for t in (trace_table(cells), grpo_signal_table(histories)) if t is not None]
    blocks += paired_blocks(comparisons)
    if missing:
        blocks.append(Text("Not built", "h2"))
        blocks.append(missing_table(missing))
    blocks.append(Text("Provenance", "h2"))
    blocks.append(provenance_table(cells, ordered_keys(list(cells), expected), "Model cells"))
    if baselines:
        blocks.append(baseline_provenance(baselines))
    if absent:
        blocks.insert(1, Text("No training log history for: " + ", ".join(absent), "note"))
    subtitle = (
        f"{len(cells)} model/stage/test-set cells, {len(baselines)} baseline set(s); "
        f"{len(missing)} expected cell(s) not built"
    )
    return Document("rlcausality: Corr2Cause summary", subtitle, blocks)
