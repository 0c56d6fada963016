"""An exact symbolic reasoner for Corr2Cause items, working from the text alone.

From the premise's independences it reads the skeleton (pairs never separated) and the
v-structures (a common neighbour outside the separating set), enumerates every DAG with that
pattern, and keeps the premise only if those DAGs have *exactly* the stated independences
(and the stated correlations are exactly the marginally dependent pairs).  Any DAG with
exactly those independences has that pattern, so an empty result means no DAG fits: the
premise is inconsistent.  A hypothesis is valid iff its relation holds in every DAG.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from rlcausality.data.corr2cause import graphs
from rlcausality.data.corr2cause.text import (
    Hypothesis,
    ParsedInput,
    ParseError,
    Premise,
    parse_input,
)
from rlcausality.task import Derivation, read_trace

MAX_VARIABLES = 8


def _pattern_from_statements(premise: Premise) -> int | None:
    n = premise.num_variables
    sepset: dict[tuple[int, int], int] = {}
    for i, j, given in sorted(premise.independences):
        sepset.setdefault((i, j), given)
    adjacent = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            adjacent[i][j] = adjacent[j][i] = (i, j) not in sepset
    into = [[False] * n for _ in range(n)]  # into[a][k]: a -> k is forced
    for (i, j), given in sepset.items():
        for k in range(n):
            if adjacent[i][k] and adjacent[j][k] and not given >> k & 1:
                into[i][k] = into[j][k] = True
    code = 0
    for a in range(n):
        for b in range(n):
            if a == b or not adjacent[a][b]:
                continue
            if into[a][b] and into[b][a]:
                return None
            if not into[b][a]:
                code |= 1 << (a * n + b)
    return code


@functools.lru_cache(maxsize=65536)
def premise_members(premise: Premise) -> tuple[int, ...] | None:
    """The codes of every DAG with exactly the premise's statements, or None when none has."""
    n = premise.num_variables
    if not 2 <= n <= MAX_VARIABLES:
        raise ValueError(f"the reasoner handles 2..{MAX_VARIABLES} variables, got {n}")
    pattern = _pattern_from_statements(premise)
    if pattern is None:
        return None
    members = graphs.pattern_members(pattern, n)
    if not members:
        return None
    queries = graphs.dsep_queries(n)
    separated = graphs.dsep_table(np.array(members[:1], dtype=np.int64), n)[0]
    implied = {q for q, sep in zip(queries, separated, strict=True) if sep}
    if implied != set(premise.independences):
        return None
    marginal = {(i, j) for i, j, given in implied if given == 0}
    dependent = {(i, j) for i in range(n) for j in range(i + 1, n)} - marginal
    if dependent != set(premise.correlations):
        return None
    return tuple(members)


@functools.lru_cache(maxsize=65536)
def premise_relations(premise: Premise) -> np.ndarray | None:
    """(6, n, n) bool table of relations valid in every DAG fitting the premise, or None."""
    members = premise_members(premise)
    if members is None:
        return None
    tables = graphs.relation_tables(np.array(members, dtype=np.int64), n=premise.num_variables)
    return tables.all(axis=0)


def _witnesses(adj: np.ndarray, relation: str, x: int, y: int) -> np.ndarray:
    """(K, n) bool: per DAG, the variables through which ``relation`` of (x, y) holds."""
    n = adj.shape[-1]
    if relation in ("non-parent ancestor", "non-child descendant"):
        cause, effect = (x, y) if relation == "non-parent ancestor" else (y, x)
        reach = graphs.closure(adj)
        return adj[:, cause, :] & reach[:, :, effect]  # cause -> m ~> effect

    avoid_x, avoid_y = graphs.closure_avoiding(adj, x), graphs.closure_avoiding(adj, y)
    if relation == "collider":
        return avoid_y[:, x, :] & avoid_x[:, y, :]  # x ~> m and y ~> m
    if relation == "confounder":
        return avoid_y[:, :, x] & avoid_x[:, :, y]  # m ~> x and m ~> y
    return np.zeros((len(adj), n), dtype=bool)


@functools.lru_cache(maxsize=65536)
def derive(text: str) -> Derivation | None:
    """The reasoner's derivation for a model input, or None if its premise is inconsistent.
    Raises ``text.ParseError`` for text that is not a Corr2Cause item."""
    parsed = parse_input(text)
    premise, hyp = parsed.premise, parsed.hypothesis
    members = premise_members(premise)
    if members is None:
        return None
    n = premise.num_variables
    adj = graphs.to_adjacency(np.array(members, dtype=np.int64), n)
    sepset = {(i, j) for i, j, _ in premise.independences}
    adjacent = tuple((i, j) for i in range(n) for j in range(i + 1, n) if (i, j) not in sepset)
    always = adj.all(axis=0)
    fixed = tuple((a, b) for a in range(n) for b in range(n) if always[a, b])
    label = exact_label(parsed)
    assert label is not None  # the premise has members
    common = _witnesses(adj, hyp.relation, hyp.x, hyp.y).all(axis=0)
    return Derivation(
        names=premise.names,
        adjacent=adjacent,
        fixed=fixed,
        relation=hyp.relation,
        x=hyp.x,
        y=hyp.y,
        witnesses=tuple(int(m) for m in np.flatnonzero(common)),
        label=label,
    )


def label(text: str) -> int | None:
    """Exact label (1 valid, 0 invalid) of a model input, or None if its premise is
    inconsistent.  Raises ``text.ParseError`` for text that is not a Corr2Cause item."""
    return exact_label(parse_input(text))


def exact_label(parsed: ParsedInput) -> int | None:
    """Exact label of a parsed item, or None if its premise is inconsistent."""
    table = premise_relations(parsed.premise)
    if table is None:
        return None
    return _holds(table, parsed.hypothesis)


def _holds(table: np.ndarray, hyp: Hypothesis) -> int:
    """1 when ``table`` ((6, n, n), relations valid in every DAG) holds ``hyp``'s relation."""
    return int(table[graphs.RELATIONS.index(hyp.relation), hyp.x, hyp.y])


def predict(text: str) -> int:
    """Baseline prediction: the exact label, 0 for an inconsistent premise."""
    value = label(text)
    return 0 if value is None else value


@functools.lru_cache(maxsize=65536)
def _parsed(text: str) -> ParsedInput | None:
    try:
        return parse_input(text)
    except (ParseError, ValueError):
        return None


def _stated_pattern(
    names: tuple[str, ...], adjacent: Iterable[str], fixed: Iterable[str]
) -> int | None:
    """The pattern code of stated lists (``A-B`` undirected, ``A->B`` directed; a fixed edge
    is adjacent whether or not the adjacencies list it), None when an item names a variable
    the premise lacks, a pair twice the same or an edge both ways."""
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    code = 0
    try:
        for pair in adjacent:
            a, b = (index[name.strip()] for name in pair.split("-"))
            if a == b:
                return None
            code |= 1 << (a * n + b) | 1 << (b * n + a)
        oriented: set[tuple[int, int]] = set()
        for edge in fixed:
            cause, _, effect = edge.partition("->")
            a, b = index[cause.strip()], index[effect.strip()]
            oriented.add((a, b))
    except (KeyError, ValueError):
        return None
    for a, b in oriented:
        if a == b or (b, a) in oriented:
            return None
        code = (code | 1 << (a * n + b)) & ~(1 << (b * n + a))
    return code


@functools.lru_cache(maxsize=65536)
def lists_label(text: str, adjacent: frozenset[str], fixed: frozenset[str]) -> int | None:
    """The label the reasoner gives the hypothesis of ``text`` (a model input) on the graph a
    trace states instead of the premise's: every DAG whose skeleton is the ``adjacent`` pairs
    (``A-B``) and the ``fixed`` edges (``A->B``), with the fixed edges oriented as stated and no
    v-structure but theirs, and 1 when the relation holds in all of them. None when the text
    is not an item, the lists name a variable the premise lacks, or no DAG fits them (a cycle,
    or a v-structure the fixed edges do not state). On the oracle trace's lists it is the
    exact label (tests/corr2cause)."""
    parsed = _parsed(text)
    if parsed is None:
        return None
    n = parsed.num_variables
    pattern = _stated_pattern(parsed.premise.names, adjacent, fixed)
    if pattern is None or not 2 <= n <= graphs.MAX_NODES:
        return None
    members = graphs.pattern_members(pattern, n)
    if not members:
        return None
    table = graphs.relation_tables(np.array(members, dtype=np.int64), n).all(axis=0)
    return _holds(table, parsed.hypothesis)


def trace_label(text: str, completion: str) -> int | None:
    """``lists_label`` of the ``Adjacent`` and ``Fixed`` lists ``completion`` states (the answer
    its own reading implies), None when it does not state both."""
    stated = read_trace(completion)
    if stated["adjacent"] is None or stated["fixed"] is None:
        return None
    return lists_label(text, stated["adjacent"], stated["fixed"])
