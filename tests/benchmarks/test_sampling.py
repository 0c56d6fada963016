"""benchmarks/sampling.py: the shares it prints, from completions scored by GRPO's rewards."""

from __future__ import annotations

from benchmarks import sampling

PROMPT = [{"role": "user", "content": "Premise: Suppose there is a closed system of 2 variables, "
           "A and B. All the statistical relations among these 2 variables are as follows: A "
           "correlates with B.\nHypothesis: A directly causes B."}]  # fmt: skip
ROW = {"prompt": PROMPT, "label": 0, "trace": "Adjacent: A-B. Fixed: none.", "num_variables": 2}


def test_scores_count_answers_groups_and_the_reading() -> None:
    oracle = "<think>Adjacent: A-B. Fixed: none. Check A->B: no.</think>\n\nTherefore: "
    listless = "<think>No lists.</think>\n\nTherefore: No"
    texts = [oracle + "No", oracle + "Yes", oracle + "No", oracle + "No",  # this group disagrees
             oracle + "No", oracle + "No", oracle + "No", listless]  # fmt: skip
    found = sampling.scores([ROW], texts, samples=8, group=4)
    assert found["No"] == 7 / 8 and found["right"] == 7 / 8
    assert found["groups disagreeing"] == 0.5
    assert found["trace"] == 7 / 8  # the last states no lists
    assert 0.0 <= found["consistent"] <= 1.0
