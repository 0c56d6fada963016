"""`benchmarks/grpo_signal.py`: the zero-variance shares and rewards of a GRPO output folder, in
the layout the GRPO job writes (log_history.json, completions/*.parquet as TRL logs them)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks import grpo_signal
from rlcausality.io import write_json


def test_by_part_splits_into_near_equal_slices() -> None:
    assert grpo_signal.by_part([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], parts=3) == [2.0, 4.5, 6.5]
    assert grpo_signal.by_part([1.0, 3.0], parts=5) == [1.0, 3.0]


def test_a_group_all_right_or_all_wrong_is_a_tie(tmp_path: Path) -> None:
    prompts = [[{"role": "user", "content": f"premise {i}"}] for i in range(2)]
    rows = []
    for step, correctness in ((1, [1, 1, 1, 1, 0, 1, 0, 1]), (2, [0, 0, 0, 0, 1, 1, 1, 1])):
        for index, value in enumerate(correctness):
            rows.append(
                {"step": step, "prompt": prompts[index // 4], "completion": "c",
                 "correctness": float(value), "trace": index / 8, "advantage": 0.0}
            )  # fmt: skip
    (tmp_path / "completions").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "completions/completions_00001.parquet")
    history = [
        {"step": step, "reward": 1.0, "frac_reward_zero_std": zero, "step_time": 2.0,
         "rewards/correctness/mean": 0.5, "completions/mean_length": 70.0}
        for step, zero in ((1, 0.0), (2, 0.5))
    ] + [{"train_runtime": 4.0}]  # fmt: skip
    write_json(tmp_path / "log_history.json", history)

    ties = grpo_signal.answer_ties(pd.read_parquet(tmp_path / "completions"))
    assert ties.to_dict() == {1: 0.5, 2: 1.0}
    lines = grpo_signal.summary(tmp_path)
    assert lines[0].endswith("2 logged steps")
    assert "  zero-variance groups (total reward): 0.250 (by fifth: 0.000, 0.500)" in lines
    assert "  groups all right or all wrong: 0.750 (by fifth: 0.500, 1.000)" in lines
    assert "  step time: median 2.0 s" in lines


def test_summary_gives_each_rewards_share_with_the_jobs_weights(tmp_path: Path) -> None:
    rows = [
        {"step": 1, "prompt": [{"role": "user", "content": "p"}], "completion": "c",
         "correctness": c, "format": 1.0, "trace": t, "advantage": 0.0}
        for c, t in ((1.0, 0.75), (0.0, 0.75), (1.0, 0.25), (0.0, 0.25))
    ]  # fmt: skip
    (tmp_path / "completions").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "completions/completions_00001.parquet")
    step = {"step": 1, "reward": 1.0, "frac_reward_zero_std": 0.0, "completions/mean_length": 9}
    write_json(tmp_path / "log_history.json", [step])
    settings = {"rewards": ["correctness", "trace"], "reward_weights": [1.0, 2.0]}
    prepass = {"samples": 4, "needed": 100, "visited": 180, "kept": 100, "completions": 720,
               "disagreeing_share": 0.6, "all_right": 50, "all_wrong": 22}  # fmt: skip
    manifest = {"settings": {"grpo": settings}, "data": {"train": {"prepass": prepass}}}
    write_json(tmp_path / "manifest.json", manifest)
    lines = grpo_signal.summary(tmp_path)
    assert lines[-1] == (
        "  pre-pass: 4 answers per prompt; 180 prompts visited, 0.60 of them disagreeing "
        "(50 all right, 22 all wrong); 100 kept of 100 needed; 720 completions"
    )
    share = "share of the total's within-group variance"
    assert f"  correctness (weight 1): within-group std 0.500, {share} 0.50" in lines
    trace = f"  trace (weight 2): within-group std 0.250, {share} 0.50, within-group correlation"
    assert f"{trace} with correctness +0.00" in lines
