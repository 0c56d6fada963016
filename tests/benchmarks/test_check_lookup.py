"""benchmarks/check_lookup.py: the label read off the fixed edges alone, on real items."""

from __future__ import annotations

from benchmarks import check_lookup
from rlcausality.data.corr2cause.generate import generate_corpus
from rlcausality.data.corr2cause.symbolic import derive

COLLIDER = (
    "Premise: Suppose there is a closed system of 3 variables, A, B and C. All the statistical "
    "relations among these 3 variables are as follows: A correlates with C. B correlates with "
    "C. However, A is independent of B.\nHypothesis: There exists at least one collider (i.e., "
    "common effect) of A and B."
)


def test_a_v_structure_is_read_off_its_fixed_edges() -> None:
    derivation = derive(COLLIDER)
    assert derivation is not None and derivation.label == 1
    assert check_lookup.fixed_graph_holds(derivation) == 1
    chain = COLLIDER.replace(
        "C. However, A is independent of B.",
        "C. A correlates with B. However, A and B are independent given C.",
    )
    unfixed = derive(chain)  # A - C - B, no edge fixed: no common effect in every DAG
    assert unfixed is not None and unfixed.fixed == () and unfixed.label == 0
    assert check_lookup.fixed_graph_holds(unfixed) == 0


def test_direct_edges_are_exact_and_the_table_counts_every_item() -> None:
    rows = generate_corpus({"num_variables": [2, 4], "robustness": False})["train"]
    counts = check_lookup.tally(row["input"] for row in rows)
    assert sum(c["items"] for c in counts.values()) == len(rows)
    for relation in ("parent", "child"):  # a direct edge in every DAG is a fixed edge
        assert counts[relation]["agree"] == counts[relation]["items"]
    lines = check_lookup.table(counts)
    assert lines[0].startswith("| relation |") and len(lines) == 2 + len(counts)
