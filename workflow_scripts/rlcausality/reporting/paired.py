"""Paired comparisons on identical items: each stage against the stage before it and against
the best baseline of its test set.

The stage before: SFT is compared with the base model; GRPO with SFT, or with the base model
when the model has no SFT stage. The best baseline is the one of
``rlcausality.evaluation.baselines.COMPETITORS`` (always invalid, always valid, relation prior) with
the highest F1 on the test set: the exact symbolic reasoner is an oracle, not a competitor, and
random guessing has expected metrics only (and never a higher F1 than always valid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlcausality.evaluation.baselines import best_competitor
from rlcausality.evaluation.uncertainty import RESAMPLES, paired_comparison
from rlcausality.reporting.cells import BASELINE_LABELS, STAGE_ORDER, Key, ordered_keys
from rlcausality.reporting.render import Block, Estimate, Table, Text

Predictions = Sequence[Mapping[str, Any]]
HEADERS = [
    "model",
    "test set",
    "comparison (B vs A)",
    "n items",
    "ΔF1 = F1(B) − F1(A) [95% CI]",
    "McNemar p (accuracy)",
    "only A right / only B right",
]
NOTE = (
    "Paired comparisons join two sets of predictions on the item id, so both sides answer the "
    f"same items. ΔF1's interval is a paired bootstrap over equivalence classes ({RESAMPLES} "
    "resamples, the same draws for both sides, fixed seed); McNemar's exact p is the two-sided "
    "binomial test of the items only one side answered correctly (unparsed counts as wrong). "
    "The best baseline is the one with the highest F1 among always invalid, always valid and "
    "the relation prior; the exact symbolic reasoner is an oracle and is left out."
)


def earlier_stages(stages: Sequence[str]) -> list[tuple[str, str]]:
    """(A, B) stage pairs: sft vs base, grpo vs sft (or vs base without an sft stage)."""
    pairs = []
    if "sft" in stages and "base" in stages:
        pairs.append(("base", "sft"))
    if "grpo" in stages:
        before = "sft" if "sft" in stages else "base"
        if before in stages:
            pairs.append((before, "grpo"))
    return pairs


def p_value(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def comparison_row(
    model: str, test: str, names: tuple[str, str], a: Predictions, b: Predictions
) -> list[Any]:
    result = paired_comparison(a, b)
    return [
        model,
        test,
        f"{names[1]} vs {names[0]}",
        result["n"],
        Estimate(result["delta_f1"], result["delta_f1_ci95"]),
        p_value(result["mcnemar_p"]),
        f"{result['a_only_correct']} / {result['b_only_correct']}",
    ]


def baseline_side(
    test: str,
    baselines: Mapping[str, Mapping[str, Any]],
    baseline_predictions: Mapping[str, Predictions],
) -> tuple[str, list[dict[str, Any]]] | None:
    """The best competitor's label and per-item predictions on ``test``, if known."""
    data = baselines.get(test) or {}
    best = best_competitor(data.get("baselines") or {})
    rows = baseline_predictions.get(test)
    if best is None or not rows or best not in (rows[0].get("answers") or {}):
        return None
    label = f"best baseline: {BASELINE_LABELS.get(best, best)}"
    return label, baseline_answers(rows, best)


def baseline_answers(rows: Predictions, name: str) -> list[dict[str, Any]]:
    """One baseline's per-item predictions (``answer``) from the baselines' predictions file,
    whose rows carry every baseline's answer under ``answers``."""
    return [{**row, "answer": row["answers"][name]} for row in rows]


def comparison_rows(
    predictions: Mapping[Key, Predictions],
    baselines: Mapping[str, Mapping[str, Any]],
    baseline_predictions: Mapping[str, Predictions],
) -> list[list[Any]]:
    """Rows of the paired-comparison table, per model and test set."""
    keys = ordered_keys(list(predictions))
    groups = list(dict.fromkeys((m, t) for m, _, t in keys))
    rows = []
    for model, test in groups:
        stages = [s for s in STAGE_ORDER if (model, s, test) in predictions]
        for a, b in earlier_stages(stages):
            rows.append(
                comparison_row(
                    model,
                    test,
                    (a, b),
                    predictions[(model, a, test)],
                    predictions[(model, b, test)],
                )
            )
        side = baseline_side(test, baselines, baseline_predictions)
        if side is not None:
            for stage in stages:
                rows.append(
                    comparison_row(
                        model, test, (side[0], stage), side[1], predictions[(model, stage, test)]
                    )
                )
    return rows


def paired_table(rows: list[list[Any]]) -> Table:
    return Table(HEADERS, rows, "Paired comparisons on identical items")


def paired_blocks(rows: Sequence[Sequence[Any]]) -> list[Block]:
    """The summary's section: heading, what the numbers mean, and the table (if any rows)."""
    blocks: list[Block] = [Text("Paired comparisons", "h2"), Text(NOTE, "note")]
    if rows:
        blocks.append(paired_table([list(row) for row in rows]))
    else:
        blocks.append(Text("No paired comparisons: no two sets of predictions to pair.", "note"))
    return blocks
