"""Trace metrics (generated adjacencies and fixed edges against the oracle's) and the report
tables of reasoning traces and of GRPO's training signal (its log, and its rewards within a
group)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlcausality.evaluation.metrics import trace_metrics
from rlcausality.reporting.render import render_markdown
from rlcausality.reporting.signals import grpo_signal_table, reward_spread_table, trace_table

ORACLE = "Adjacent: A-C, B-C. Fixed: A->C, B->C. Check common effect of A and B: yes, via C."


def record(completion: str, trace: str | None = ORACLE) -> dict:
    return {"label": 1, "answer": 1, "trace": trace, "completion": completion, "num_variables": 3}


def test_trace_metrics_count_exact_lists() -> None:
    predictions = [
        record("<think>" + ORACLE + "</think>\n\nTherefore: Yes"),  # both right
        record("<think>Adjacent: C-A, C-B. Fixed: A->C.</think> Therefore: No"),  # fixed wrong
        record("<think>Adjacent: A-B. Fixed: A->C, B->C.</think> Therefore: Yes"),  # adj wrong
        record("Yes"),  # states no trace
        record("Yes", trace=None),  # no oracle trace: not scored
    ]
    metrics = trace_metrics(predictions)
    # adjacent pairs stated: {A-C, B-C} twice (right), {A-B} (wrong), none; oracle 4 x 2 of 3
    # pairs. Wrong pairs: 0, 0, 3 (A-B stated, A-C and B-C missed), 2: 5 of 12.
    pairs = {"precision": 4 / 5, "recall": 4 / 8, "f1": 2 * (4 / 5) * (4 / 8) / (4 / 5 + 4 / 8),
             "accuracy": 7 / 12, "every_pair_f1": 2 * (8 / 12) / (8 / 12 + 1),
             "every_pair_accuracy": 8 / 12}  # fmt: skip
    assert metrics == {
        "n": 4,
        "states_trace": 0.75,
        "adjacency_match": 0.5,
        "fixed_match": 0.5,
        "both_match": 0.25,
        "adjacency_pairs": pytest.approx(pairs),
    }
    assert trace_metrics([record("Yes", trace=None)]) is None


COLLIDER = (
    "Premise: Suppose there is a closed system of 3 variables, A, B and C. All the statistical "
    "relations among these 3 variables are as follows: A correlates with C. B correlates with "
    "C. However, A is independent of B.\nHypothesis: There exists at least one collider "
    "(i.e., common effect) of A and B."
)


def test_trace_metrics_score_the_answers_the_lists_imply() -> None:
    chain = "<think>Adjacent: A-C, B-C. Fixed: A->C.</think> Therefore: "  # implies No
    predictions = [
        {**record("<think>" + ORACLE + "</think> Therefore: Yes"), "id": "a"},  # implies Yes
        {**record(chain + "No"), "id": "b", "answer": 0},  # follows its (wrong) lists
        {**record(chain + "Yes"), "id": "c"},  # right, but not by its lists
        {**record("<think>no lists</think> Therefore: Yes"), "id": "d"},  # no lists: no answer
    ]
    metrics = trace_metrics(predictions, {key: COLLIDER for key in "abcd"})
    assert metrics is not None and metrics["consistent"] == 0.5
    # the lists' answers: Yes, No, No, none against four valid items: one right of four
    assert metrics["lists_answer"] == pytest.approx(
        {"accuracy": 0.25, "precision": 1.0, "recall": 0.25, "f1": 0.4,
         "predicted_valid_rate": 0.25, "parse_rate": 0.75}
    )  # fmt: skip
    assert "consistent" not in (trace_metrics(predictions) or {})  # without the items


def test_trace_table_lists_cells_with_traces(tmp_path: Path) -> None:
    pairs = {"precision": 0.8, "recall": 0.5, "f1": 0.615, "accuracy": 0.583,
             "every_pair_f1": 0.8, "every_pair_accuracy": 0.667}  # fmt: skip
    trace = {"n": 4, "states_trace": 0.75, "adjacency_match": 0.5, "fixed_match": 0.5,
             "both_match": 0.25, "adjacency_pairs": pairs}  # fmt: skip
    with_trace = {"trace": trace}
    cells = {("m", "sft", "test"): with_trace, ("m", "base", "test"): {"trace": None}}
    table = trace_table(cells)
    assert table is not None and [row[0] for row in table.rows] == ["m / sft / test"]
    assert table.rows[0][1:] == [4, 0.75, 0.5, 0.5, 0.25, 0.615, 0.583, 0.667, None, None]
    trace.update({"consistent": 0.5, "lists_answer": {"f1": 0.8, "accuracy": 0.75}})
    assert trace_table(cells).rows[0][-2:] == [0.5, 0.8]
    assert "adjacencies = oracle" in render_markdown("t", "s", [table], tmp_path / "r.md")
    assert trace_table({("m", "base", "test"): {}}) is None


def test_grpo_signal_table_reads_the_log() -> None:
    history = [
        {"step": s, "reward": 0.5 + s / 10, "frac_reward_zero_std": z, "rewards/format/mean": f}
        for s, z, f in [(1, 1.0, 0.5), (2, 0.5, 0.75), (3, 0.5, 1.0), (4, 0.0, 1.0)]
    ] + [{"train_runtime": 10.0, "step": 4}]
    table = grpo_signal_table({("m", "grpo"): history, ("m", "sft"): [{"step": 1, "loss": 1}]})
    assert table is not None and len(table.rows) == 1
    model, steps, zero_all, zero_end, format_end, reward_end = table.rows[0]
    assert (model, steps) == ("m", 4)
    assert zero_all == pytest.approx(0.5) and zero_end == 0.0
    assert format_end == 1.0 and reward_end == pytest.approx(0.9)
    assert grpo_signal_table({("m", "sft"): history}) is None


def test_reward_spread_table_splits_the_groups_variance_by_reward(tmp_path: Path) -> None:
    import pandas as pd

    # Two groups of four. Step 1: correctness 1, 0, 1, 0 (centred +-0.5), trace 0.9, 0.9, 0.5,
    # 0.5 (centred +-0.2, uncorrelated with correctness). Step 2: every reward tied, so it adds
    # nothing. With weights 1 and 2 the total's centred values are +-0.5 +- 0.4: shares
    # 0.25 / 0.41 and 0.16 / 0.41; format never varies.
    prompt = [{"role": "user", "content": "premise"}]
    values = [(1.0, 0.9), (0.0, 0.9), (1.0, 0.5), (0.0, 0.5)]
    rows = [
        {"step": step, "prompt": prompt, "completion": "c", "correctness": c, "format": 1.0,
         "trace": t, "advantage": 0.0}
        for step in (1, 2) for c, t in (values if step == 1 else [(1.0, 0.7)] * 4)
    ]  # fmt: skip
    grpo = {"rewards": ["correctness", "format", "trace"], "reward_weights": [1.0, 0.5, 2.0]}
    table = reward_spread_table(pd.DataFrame(rows), {"settings": {"grpo": grpo}})
    assert table is not None and "2 groups, 8 logged completions" in table.caption
    by_name = {row[0]: row[1:] for row in table.rows}
    assert by_name["correctness"] == pytest.approx([1.0, 0.25, 0.25 / 0.41, None], nan_ok=True)
    weight, std, share, correlation = by_name["trace"]
    assert (weight, std) == pytest.approx((2.0, 0.1))  # 0.2 in one group, 0 in the other
    assert share == pytest.approx(0.16 / 0.41) and correlation == pytest.approx(0, abs=1e-12)
    assert by_name["format"][2] == pytest.approx(0.0)
    assert by_name["format"][3] is None  # never varied: no correlation
    assert "share of the total" in render_markdown("t", "s", [table], tmp_path / "r.md")
    # no weights (a manifest without GRPO settings) or no completions: no table
    assert reward_spread_table(pd.DataFrame(rows), {"settings": {}}) is None
    assert reward_spread_table(None, {"settings": {"grpo": grpo}}) is None
