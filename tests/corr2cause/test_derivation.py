"""The reasoner's derivation (the oracle trace's facts) against the brute force, and the trace
text: its format is the one the rewards and evaluation read, and it reads back."""

from __future__ import annotations

import itertools

import brute_force as bf
import numpy as np
import pytest

from rlcausality.data.corr2cause import graphs, symbolic
from rlcausality.data.corr2cause.text import ORIGINAL
from rlcausality.task import (
    follows_reasoning_format,
    parse_answer,
    read_trace,
    trace_body,
    trace_completion,
)

HYPOTHESES = ORIGINAL  # the published hypothesis templates, by relation


def carries(n: int, dag: bf.Dag, relation: str, x: int, y: int, m: int) -> bool:
    """Whether ``m`` carries ``relation`` of (x, y) in ``dag`` (brute-force paths)."""
    if relation in ("non-parent ancestor", "non-child descendant"):
        cause, effect = (x, y) if relation == "non-parent ancestor" else (y, x)
        return (cause, m) in dag and (m == effect or bool(bf.directed_paths(dag, m, effect)))
    if relation == "collider":
        return bool(bf.directed_paths(dag, x, m, avoid=y) and bf.directed_paths(dag, y, m, avoid=x))
    return bool(bf.directed_paths(dag, m, x, avoid=y) and bf.directed_paths(dag, m, y, avoid=x))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_derivation_agrees_with_brute_force(n: int) -> None:
    names = [chr(ord("A") + i) for i in range(n)]
    checked = 0
    for stmts, members in bf.labelled_classes(n).items():
        premise = bf.premise_text(n, stmts, names)
        skeleton = {tuple(sorted(e)) for e in members[0]}
        fixed = set.intersection(*(set(dag) for dag in members))
        for (x, y), relation in itertools.product(itertools.combinations(range(n), 2), HYPOTHESES):
            hyp = HYPOTHESES[relation].format(x=names[x], y=names[y])
            derivation = symbolic.derive(f"Premise: {premise}\nHypothesis: {hyp}")
            assert derivation is not None
            assert set(derivation.adjacent) == skeleton
            assert set(derivation.fixed) == fixed
            assert derivation.label == bf.class_label(n, members, relation, x, y)
            for m in derivation.witnesses:
                assert all(carries(n, dag, relation, x, y, m) for dag in members)
            if relation in ("collider", "confounder", "non-parent ancestor"):
                common = [
                    m
                    for m in range(n)
                    if m not in (x, y) and all(carries(n, d, relation, x, y, m) for d in members)
                ]
                assert list(derivation.witnesses) == common
            checked += 1
    assert checked == len(bf.labelled_classes(n)) * n * (n - 1) // 2 * 6


def test_inconsistent_premise_has_no_derivation() -> None:
    # A and C correlate, yet A is independent of C given nothing: no DAG says both
    text = (
        "Premise: Suppose there is a closed system of 3 variables, A, B and C. All the "
        "statistical relations among these 3 variables are as follows: A correlates with B. "
        "B correlates with C. However, A is independent of C given B. A is independent of B."
        "\nHypothesis: A directly causes B."
    )
    assert symbolic.derive(text) is None


COLLIDER = (
    "Premise: Suppose there is a closed system of 3 variables, A, B and C. All the statistical "
    "relations among these 3 variables are as follows: A correlates with C. B correlates with "
    "C. However, A is independent of B.\nHypothesis: There exists at least one collider "
    "(i.e., common effect) of A and B."
)


def test_trace_of_a_v_structure() -> None:
    derivation = symbolic.derive(COLLIDER)
    assert derivation is not None and derivation.label == 1
    body = trace_body(derivation)
    assert body == (
        "Adjacent: A-C, B-C. Fixed: A->C, B->C. Check common effect of A and B: yes, via C."
    )
    assert read_trace(body) == {
        "adjacent": frozenset({"A-C", "B-C"}),
        "fixed": frozenset({"A->C", "B->C"}),
    }


@pytest.mark.parametrize("think_opened", [False, True])
def test_trace_completion_is_the_rewarded_format(think_opened: bool) -> None:
    corpus_rows = [
        (COLLIDER, 1),
        (COLLIDER.replace("collider (i.e., common effect)", "confounder (i.e., common cause)"), 0),
    ]
    for text, label in corpus_rows:
        derivation = symbolic.derive(text)
        assert derivation is not None and derivation.label == label
        completion = trace_completion(trace_body(derivation), label, think_opened)
        assert follows_reasoning_format(completion, think_opened=think_opened)
        assert parse_answer(completion, style="reasoning") == label
        assert completion.startswith("Adjacent" if think_opened else "<think>Adjacent")


def test_read_trace_of_text_without_one() -> None:
    assert read_trace("<think>no idea</think> Therefore: No") == {"adjacent": None, "fixed": None}
    assert read_trace("Adjacent: none. Fixed: none.") == {
        "adjacent": frozenset(),
        "fixed": frozenset(),
    }
    # adjacency pairs read the same whichever name comes first
    assert read_trace("Adjacent: C-A. Fixed: A->C.")["adjacent"] == frozenset({"A-C"})


def test_no_witness_for_invalid_hypotheses() -> None:
    for n in (3, 4):
        names = [chr(ord("A") + i) for i in range(n)]
        for stmts in bf.labelled_classes(n):
            premise = bf.premise_text(n, stmts, names)
            for relation in ("collider", "confounder"):
                hyp = HYPOTHESES[relation].format(x="A", y="B")
                d = symbolic.derive(f"Premise: {premise}\nHypothesis: {hyp}")
                assert d is not None
                assert d.label or not d.witnesses
    assert tuple(HYPOTHESES) == graphs.RELATIONS


@pytest.mark.parametrize("n", [3, 4])
def test_lists_label_of_the_oracle_lists_is_the_exact_label(n: int) -> None:
    names = [chr(ord("A") + i) for i in range(n)]
    for stmts in bf.labelled_classes(n):
        premise = bf.premise_text(n, stmts, names)
        for (x, y), relation in itertools.product(itertools.combinations(range(n), 2), HYPOTHESES):
            text = f"Premise: {premise}\nHypothesis: " + HYPOTHESES[relation].format(
                x=names[x], y=names[y]
            )
            derivation = symbolic.derive(text)
            assert derivation is not None
            lists = read_trace(trace_body(derivation))
            assert symbolic.lists_label(text, lists["adjacent"], lists["fixed"]) == derivation.label


def test_lists_label_reads_the_stated_graph_not_the_premise() -> None:
    def label(adjacent: set[str], fixed: set[str], text: str = COLLIDER) -> int | None:
        return symbolic.lists_label(text, frozenset(adjacent), frozenset(fixed))

    # the premise's own graph: A -> C <- B, so A and B have a common effect
    assert label({"A-C", "B-C"}, {"A->C", "B->C"}) == 1
    # a chain stated instead: no v-structure fixed, so no DAG has a common effect of A and B
    assert label({"A-C", "B-C"}, set()) == 0
    # a fixed edge is adjacent even where the adjacencies leave it out
    assert label({"A-C"}, {"A->C", "B->C"}) == 1
    # fixed edges that state a v-structure the pattern lacks fit one DAG: still read
    assert label({"A-B", "A-C", "B-C"}, {"A->C", "B->C"}) == 1
    # no DAG fits: a cycle, an edge both ways, a self-loop, a variable the premise lacks
    assert label(set(), {"A->B", "B->C", "C->A"}) is None
    assert label({"A-C"}, {"A->C", "C->A"}) is None
    assert label({"A-C", "C-C"}, set()) is None
    assert label({"A-E"}, set()) is None
    # one edge into C fixed: B -> C would make a v-structure the lists do not state, so the
    # only DAG is A -> C -> B, where A and B have no common effect
    assert label({"A-C", "B-C"}, {"A->C"}) == 0
    assert symbolic.lists_label("not an item", frozenset(), frozenset()) is None


def _listed(part: str) -> set[str]:
    """The names a lookup step lists after its arrow (``A ~> C, D`` -> {C, D})."""
    names = part.split(">" if ">" in part else "~", 1)[1].strip()
    return set() if names == "none" else {name.strip() for name in names.split(",")}


@pytest.mark.parametrize("n", [3, 4])
def test_lookup_check_spells_what_the_fixed_edges_show(n: int) -> None:
    """``format.trace_lookup``: the lists the Check writes show the relation exactly
    when it holds in the graph of the fixed edges alone (the relation tables on that graph),
    the lists and the answer read back as from the plain trace, and the verdict is the label."""
    names = [chr(ord("A") + i) for i in range(n)]
    for stmts in bf.labelled_classes(n):
        premise = bf.premise_text(n, stmts, names)
        for (x, y), relation in itertools.product(itertools.permutations(range(n), 2), HYPOTHESES):
            hyp = HYPOTHESES[relation].format(x=names[x], y=names[y])
            derivation = symbolic.derive(f"Premise: {premise}\nHypothesis: {hyp}")
            assert derivation is not None
            body = trace_body(derivation, [derivation.relation])  # "child" may read as parent
            plain = trace_body(derivation)
            others = [other for other in HYPOTHESES if other != derivation.relation]
            assert trace_body(derivation, others) == plain  # the other relations' lookups
            assert read_trace(body) == read_trace(plain)
            step = body.split(": ", 3)[3].rsplit("; ", 1)[0]  # after "Check ...:"
            parts = [_listed(part) for part in step.split("; ")]
            if relation in ("collider", "confounder"):
                shown = bool(parts[0] & parts[1])
            else:
                effect = names[x if relation in ("child", "non-child descendant") else y]
                shown = effect in parts[0]
            code = graphs.code_from_edges(derivation.fixed, n)
            table = graphs.relation_tables(np.array([code], dtype=np.int64), n)[0]
            on_fixed = bool(table[graphs.RELATIONS.index(relation), x, y])
            assert shown == on_fixed, body
            completion = trace_completion(body, derivation.label)
            assert follows_reasoning_format(completion)
            assert parse_answer(completion, style="reasoning") == derivation.label
