"""GRPO reward functions, chosen by name in config (``grpo.rewards``).

Each reward follows TRL's interface: ``reward(prompts, completions, **columns) -> list[float]``;
dataset columns such as ``label`` arrive as keyword arguments. Rewards are scored with the same
parser evaluation uses (``rlcausality.task``), always in the reasoning style: an answer counts
only after a closed think block, so a completion cut off mid-reasoning earns nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlcausality.task import completion_text, follows_reasoning_format, parse_answer

RewardFunction = Callable[..., list[float]]
ANSWER_STYLE = "reasoning"  # GRPO prompts ask for <think>…</think> then Therefore: Yes|No


def correctness(
    prompts: list[Any], completions: list[Any], label: list[int], **_: Any
) -> list[float]:
    """1.0 when the parsed answer equals the label, else 0.0 (no answer scores 0)."""
    scores = []
    for completion, truth in zip(completions, label, strict=True):
        answer = parse_answer(completion_text(completion), style=ANSWER_STYLE)
        scores.append(1.0 if answer is not None and answer == int(truth) else 0.0)
    return scores


def make_format_reward(think_opened: bool) -> RewardFunction:
    def format_reward(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        """1.0 for ``<think>…</think>`` followed by ``Therefore: Yes|No``, else 0.0."""
        return [
            1.0 if follows_reasoning_format(completion_text(c), think_opened) else 0.0
            for c in completions
        ]

    format_reward.__name__ = "format"
    return format_reward


def answered(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
    """1.0 when an answer follows a closed think block (a softer format signal for small models)."""
    return [
        0.0 if parse_answer(completion_text(c), style=ANSWER_STYLE) is None else 1.0
        for c in completions
    ]


# name -> factory(think_opened) returning the reward function
REWARDS: dict[str, Callable[[bool], RewardFunction]] = {
    "correctness": lambda think_opened: correctness,
    "format": make_format_reward,
    "answered": lambda think_opened: answered,
}


def get_reward_functions(names: list[str], think_opened: bool = False) -> list[RewardFunction]:
    functions = []
    for name in names:
        if name not in REWARDS:
            known = ", ".join(sorted(REWARDS))
            raise KeyError(f"unknown reward {name!r}; known rewards: {known}")
        functions.append(REWARDS[name](think_opened))
    return functions
