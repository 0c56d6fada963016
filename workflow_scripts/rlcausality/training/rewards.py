"""GRPO reward functions, chosen by name in config (``grpo.rewards``).

Each reward follows TRL's interface: ``reward(prompts, completions, **columns) -> list[float]``;
dataset columns such as ``label`` arrive as keyword arguments. Rewards are scored with the same
parser evaluation uses (``rlcausality.task``), always in the reasoning style: an answer counts
only after a closed think block, so a completion cut off mid-reasoning earns nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb
from typing import Any

from rlcausality.data.corr2cause.symbolic import trace_label
from rlcausality.task import (
    completion_text,
    follows_reasoning_format,
    parse_answer,
    prompt_item,
    read_trace,
)

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


def pair_states(lists: dict[str, frozenset[str] | None]) -> dict[frozenset[str], str]:
    """What a trace says of each variable pair it names: ``-`` (adjacent, direction open) or the
    edge ``A->B`` its ``Fixed`` list states; a pair it does not name is not adjacent."""
    states: dict[frozenset[str], str] = {}
    for pair in lists["adjacent"] or ():
        states[frozenset(pair.split("-"))] = "-"
    for edge in lists["fixed"] or ():
        cause, _, effect = edge.partition("->")
        states[frozenset((cause, effect))] = edge
    return states


def trace_score(completion: str, oracle: str | None, num_variables: int | None) -> float:
    """The fraction of the N(N-1)/2 variable pairs whose state the completion's ``Adjacent`` and
    ``Fixed`` lists give as the oracle trace does (not adjacent, adjacent with its direction
    open, or oriented one way): 1.0 for the oracle's own lists. 0.0 when the completion does not
    state both lists, or the item has no oracle trace (no DAG fits its premise)."""
    if not oracle or not num_variables:
        return 0.0
    stated = read_trace(completion)
    if None in stated.values():
        return 0.0
    mine, truth = pair_states(stated), pair_states(read_trace(oracle))
    wrong = sum(mine.get(pair) != truth.get(pair) for pair in set(mine) | set(truth))
    pairs = comb(int(num_variables), 2)
    return max(0.0, 1.0 - wrong / pairs) if pairs else 0.0


def trace(
    prompts: list[Any],
    completions: list[Any],
    trace: list[str | None],
    num_variables: list[int | None],
    **_: Any,
) -> list[float]:
    """Per completion, ``trace_score`` against the row's oracle trace: a dense signal of how
    much of the premise the reasoning read right, before the one bit of the answer."""
    return [
        trace_score(completion_text(c), oracle, n)
        for c, oracle, n in zip(completions, trace, num_variables, strict=True)
    ]


def implied_answer(completion: str, prompt: Any) -> int | None:
    """The answer the completion's own ``Adjacent`` and ``Fixed`` lists imply for the prompt's
    hypothesis (``symbolic.trace_label``), None when it states no lists or they fit no DAG."""
    item = prompt_item(prompt)
    return None if item is None else trace_label(item, completion)


def consistency(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
    """1.0 when the stated answer is the one the completion's own lists imply, else 0.0 (no
    answer, no readable lists, or lists no DAG fits). The answer must follow from the reading,
    right or wrong: on the demo's SFT model the lists imply the right answer far more often
    than the stated answer is right (docs/demo.md, "The answer the lists imply")."""
    scores = []
    for prompt, completion in zip(prompts, completions, strict=True):
        text = completion_text(completion)
        answer = parse_answer(text, style=ANSWER_STYLE)
        implied = None if answer is None else implied_answer(text, prompt)
        scores.append(1.0 if implied is not None and answer == implied else 0.0)
    return scores


# name -> factory(think_opened) returning the reward function
REWARDS: dict[str, Callable[[bool], RewardFunction]] = {
    "correctness": lambda think_opened: correctness,
    "format": make_format_reward,
    "answered": lambda think_opened: answered,
    "trace": lambda think_opened: trace,
    "consistency": lambda think_opened: consistency,
}


def get_reward_functions(names: list[str], think_opened: bool = False) -> list[RewardFunction]:
    functions = []
    for name in names:
        if name not in REWARDS:
            known = ", ".join(sorted(REWARDS))
            raise KeyError(f"unknown reward {name!r}; known rewards: {known}")
        functions.append(REWARDS[name](think_opened))
    return functions
