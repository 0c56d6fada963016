"""Rewards and answer parsing on strings, including R1-style completions."""

from __future__ import annotations

import pytest

from rlcausality.task import answer_style, follows_reasoning_format, parse_answer
from rlcausality.training.rewards import REWARDS, get_reward_functions

# Cut off by the token limit inside the think block: its reasoning mentions "Therefore, no".
UNFINISHED = "<think>A and B correlate. Therefore, no edge can be removed, and then"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", 1),
        ("No", 0),
        ("no.", 0),
        (" yes, it is consistent", 1),
        ("**Yes**", 1),
        ("<think>A and B are independent.</think>\nTherefore: No", 0),
        ("<think>Since yes is tempting...</think> Therefore: Yes.", 1),
        ("reasoning... Therefore: No. Wait. Therefore: Yes", 1),  # the last statement wins
        ("**Therefore:** Yes", 1),
        ("therefore, no", 0),
        ("The answer is unclear.", None),
        ("", None),
        ("Yesterday it rained", None),
        ("<think>unfinished reasoning without an answer", None),
        ("Nobody knows", None),
        # R1-Distill: the template opened <think>, so the completion starts inside it.
        ("Let me check the premise.\n</think>\n\nTherefore: Yes", 1),
        ("Okay, so A causes C?\n</think>\nNo", 0),
    ],
)
def test_parse_answer_sft_style(text: str, expected: int | None) -> None:
    assert parse_answer(text, style="sft") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>A and B are independent.</think>\nTherefore: No", 0),
        ("<think>Since yes is tempting...</think> Therefore: Yes.", 1),
        ("<think>x</think> Therefore: No. Wait. Therefore: Yes", 1),  # the last one wins
        ("<think>x</think>\n**Therefore:** Yes", 1),
        ("<think>x</think>\nNo", 0),
        # the template opened <think> (R1-Distill): the closing tag alone ends the reasoning
        ("Let me check the premise.\n</think>\n\nTherefore: Yes", 1),
        # an answer inside the reasoning is not the answer
        ("<think>Therefore: Yes? Let me check.</think>\nTherefore: No", 0),
        ("<think>Therefore: Yes, surely.</think>\nI cannot tell.", None),
        # open or missing think block: unparsed
        (UNFINISHED, None),
        ("Okay, so A causes C. Therefore: No", None),
        ("Yes", None),
        ("No", None),
        ("<think>x</think> Therefore: No <think> reconsider: Therefore: Yes", None),
        ("<think>x</think>", None),
        ("", None),
    ],
)
def test_parse_answer_reasoning_style(text: str, expected: int | None) -> None:
    assert parse_answer(text, style="reasoning") == expected


def test_answer_styles() -> None:
    assert answer_style("sft") == "sft" and answer_style("grpo") == "reasoning"
    assert parse_answer(UNFINISHED, style="sft") == 0  # the one-word style reads loosely
    with pytest.raises(ValueError, match="unknown answer style 'cot'"):
        parse_answer("Yes", style="cot")
    with pytest.raises(ValueError, match="unknown prompt style 'cot'"):
        answer_style("cot")


def test_format_strict_and_opened_think() -> None:
    good = "<think>A correlates with C, and A is independent of B.</think>\nTherefore: Yes"
    opened = "A correlates with C.\n</think>\n\nTherefore: No"
    assert follows_reasoning_format(good)
    assert not follows_reasoning_format(opened)
    assert follows_reasoning_format(opened, think_opened=True)
    assert follows_reasoning_format(good, think_opened=True)
    for bad in (
        "Therefore: Yes",  # no reasoning
        "<think></think>Therefore: Yes",  # empty reasoning
        "<think>x</think> Therefore: Maybe",
        "<think>x</think> Therefore: Yes and more text after",
        "<think>x <think> y</think> Therefore: No",  # nested open tag
    ):
        assert not follows_reasoning_format(bad, think_opened=True), bad


def test_reward_functions_with_conversational_completions() -> None:
    correctness, fmt = get_reward_functions(["correctness", "format"], think_opened=False)
    completions = [
        [{"role": "assistant", "content": "<think>chain</think> Therefore: Yes"}],
        [{"role": "assistant", "content": "<think>chain</think> Therefore: No"}],
        [{"role": "assistant", "content": "I am not sure"}],
        [{"role": "assistant", "content": "No"}],  # no reasoning: unparsed in this style
        [{"role": "assistant", "content": UNFINISHED}],  # cut off mid-think: unparsed
    ]
    prompts = [[{"role": "user", "content": "q"}]] * 5
    labels = [1, 1, 0, 0, 0]
    ids = ["a", "b", "c", "d", "e"]
    assert correctness(prompts, completions, label=labels, id=ids) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert fmt(prompts, completions, label=labels) == [1.0, 1.0, 0.0, 0.0, 0.0]
    (answered,) = get_reward_functions(["answered"])
    assert answered(prompts, completions) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_string_completions_and_r1_format() -> None:
    (fmt,) = get_reward_functions(["format"], think_opened=True)
    assert fmt(["p"], ["step one\n</think>\nTherefore: No"]) == [1.0]
    (strict,) = get_reward_functions(["format"], think_opened=False)
    assert strict(["p"], ["step one\n</think>\nTherefore: No"]) == [0.0]


def test_unknown_reward_is_named() -> None:
    known = r"known rewards: answered, consistency, correctness, format, trace"
    with pytest.raises(KeyError, match=rf"'bogus'.*{known}"):
        get_reward_functions(["bogus"])
    assert set(REWARDS) == {"answered", "consistency", "correctness", "format", "trace"}


# The oracle trace of an item on A, B, C, D: A-B, A-C, B-C adjacent; C->D fixed (4 variables,
# 6 pairs: A-B, A-C, A-D, B-C, B-D, C-D).
ORACLE = "Adjacent: A-B, A-C, B-C, C-D. Fixed: C->D. Check A->C: no."


def _trace_rewards(completions: list[str], oracle: str | None = ORACLE, n: int = 4) -> list:
    (reward,) = get_reward_functions(["trace"])
    rows = len(completions)
    return reward([None] * rows, completions, trace=[oracle] * rows, num_variables=[n] * rows)


def test_trace_reward_scores_each_variable_pair() -> None:
    perfect = f"<think>{ORACLE}</think>\n\nTherefore: No"
    one_wrong = "<think>Adjacent: A-B, A-C, B-C, B-D, C-D. Fixed: C->D.</think>\n\nTherefore: No"
    reversed_edge = "<think>Adjacent: B-A, A-C, B-C, C-D. Fixed: D->C.</think>Therefore: No"
    unoriented = "<think>Adjacent: A-B, A-C, B-C, C-D. Fixed: none.</think>Therefore: No"
    everything = "<think>Adjacent: A-B, A-C, A-D, B-C, B-D, C-D. Fixed: none.</think>"
    assert _trace_rewards([perfect, one_wrong, reversed_edge, unoriented, everything]) == [
        1.0,
        pytest.approx(5 / 6),  # B-D stated adjacent: one pair of six wrong
        pytest.approx(5 / 6),  # the names of a pair in either order are the same pair
        pytest.approx(5 / 6),  # C-D adjacent but its fixed direction not stated
        pytest.approx(3 / 6),  # A-D, B-D wrong, C-D unoriented; A-B, A-C, B-C right
    ]


def test_trace_reward_is_zero_without_a_readable_trace() -> None:
    missing_fixed = "<think>Adjacent: A-B, A-C, B-C, C-D.</think>\n\nTherefore: No"
    open_think = "<think>Adjacent: A-B, A-C, B-C, C-D. Fixed: C->D. Check"  # cut off: still read
    no_lists = "<think>A and B correlate.</think>\n\nTherefore: Yes"
    assert _trace_rewards([missing_fixed, no_lists, open_think]) == [0.0, 0.0, 1.0]
    assert _trace_rewards([f"<think>{ORACLE}</think>"], oracle=None) == [0.0]  # no oracle trace


# An item whose premise is the v-structure A -> C <- B, asking for a common effect of A and B
COLLIDER_PROMPT = [
    {"role": "system", "content": "You are an expert in causal reasoning."},
    {
        "role": "user",
        "content": "Premise and Hypothesis:\nPremise: Suppose there is a closed system of 3 "
        "variables, A, B and C. All the statistical relations among these 3 variables are as "
        "follows: A correlates with C. B correlates with C. However, A is independent of B."
        "\nHypothesis: There exists at least one collider (i.e., common effect) of A and B."
        "\n\nBegin your response with <think>",
    },
]


def _consistency(completions: list[str]) -> list[float]:
    (reward,) = get_reward_functions(["consistency"])
    return reward([COLLIDER_PROMPT] * len(completions), completions)


def test_consistency_rewards_the_answer_the_stated_lists_imply() -> None:
    v_structure = "<think>Adjacent: A-C, B-C. Fixed: A->C, B->C. Check: yes.</think>\n"
    chain = "<think>Adjacent: A-C, B-C. Fixed: A->C. Check: no.</think>\n"
    assert _consistency(
        [
            v_structure + "Therefore: Yes",  # right lists, the answer they imply
            v_structure + "Therefore: No",  # right lists, the other answer
            chain + "Therefore: No",  # wrong lists (a chain), the answer they imply
            chain + "Therefore: Yes",  # right by the label, not by its own reading
        ]
    ) == [1.0, 0.0, 1.0, 0.0]


def test_consistency_is_zero_without_lists_an_answer_or_a_fitting_graph() -> None:
    assert _consistency(
        [
            "<think>Adjacent: A-C, B-C.</think>\nTherefore: Yes",  # no Fixed list
            "<think>Adjacent: A-C, B-C. Fixed: A->C, B->C. Check",  # open think block
            "<think>Adjacent: A-B, B-C. Fixed: A->B, B->C, C->A.</think>\nTherefore: No",  # cycle
            "<think>Adjacent: A-D. Fixed: none.</think>\nTherefore: No",  # no variable D
        ]
    ) == [0.0, 0.0, 0.0, 0.0]
    (reward,) = get_reward_functions(["consistency"])
    assert reward(["no item here"], ["<think>Adjacent: none. Fixed: none.</think>No"]) == [0.0]
    # conversational completions read as their text
    consistent = "<think>Adjacent: A-C, B-C. Fixed: A->C, B->C.</think>Therefore: Yes"
    assert reward([COLLIDER_PROMPT], [[{"role": "assistant", "content": consistent}]]) == [1.0]
