"""An independent, deliberately plain reference for Corr2Cause (no code from rlcausality).

Every labelled DAG by trying every orientation of every pair, d-separation by the moralised
ancestral graph, classes by identical d-separation statements, relations by path search.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from functools import cache

Dag = frozenset[tuple[int, int]]


def is_acyclic(n: int, edges: Dag) -> bool:
    indegree = [0] * n
    for _, j in edges:
        indegree[j] += 1
    ready = [v for v in range(n) if indegree[v] == 0]
    seen = 0
    while ready:
        v = ready.pop()
        seen += 1
        for a, b in edges:
            if a == v:
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
    return seen == n


@cache
def all_dags(n: int) -> tuple[Dag, ...]:
    pairs = list(itertools.combinations(range(n), 2))
    out = []
    for choice in itertools.product((0, 1, 2), repeat=len(pairs)):
        edges = frozenset(
            (i, j) if c == 1 else (j, i) for (i, j), c in zip(pairs, choice, strict=True) if c
        )
        if is_acyclic(n, edges):
            out.append(edges)
    return tuple(out)


def ancestors(edges: Dag, nodes: set[int]) -> set[int]:
    result = set(nodes)
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if b in result and a not in result:
                result.add(a)
                changed = True
    return result


def d_separated(edges: Dag, x: int, y: int, given: frozenset[int]) -> bool:
    """Textbook: moralise the ancestral graph of {x, y} | given, delete given, test paths."""
    keep = ancestors(edges, {x, y} | set(given))
    sub = [(a, b) for a, b in edges if a in keep and b in keep]
    undirected: dict[int, set[int]] = defaultdict(set)
    for a, b in sub:
        undirected[a].add(b)
        undirected[b].add(a)
    for child in keep:
        parents = [a for a, b in sub if b == child]
        for p, q in itertools.combinations(parents, 2):
            undirected[p].add(q)
            undirected[q].add(p)
    stack, seen = [x], {x}
    while stack:
        v = stack.pop()
        if v == y:
            return False
        for w in undirected[v]:
            if w not in seen and w not in given:
                seen.add(w)
                stack.append(w)
    return True


def statements(n: int, edges: Dag) -> frozenset[tuple[int, int, frozenset[int]]]:
    out = set()
    for x, y in itertools.combinations(range(n), 2):
        rest = [v for v in range(n) if v not in (x, y)]
        for size in range(len(rest) + 1):
            for given in itertools.combinations(rest, size):
                if d_separated(edges, x, y, frozenset(given)):
                    out.add((x, y, frozenset(given)))
    return frozenset(out)


@cache
def labelled_classes(n: int) -> dict[frozenset, list[Dag]]:
    classes: dict[frozenset, list[Dag]] = defaultdict(list)
    for dag in all_dags(n):
        classes[statements(n, dag)].append(dag)
    return dict(classes)


def directed_paths(edges: Dag, start: int, end: int, avoid: int | None = None) -> list[list[int]]:
    out = []

    def walk(path: list[int]) -> None:
        v = path[-1]
        if v == end and len(path) > 1:
            out.append(list(path))
            return
        for a, b in edges:
            if a == v and b not in path and b != avoid:
                walk([*path, b])

    walk([start])
    return out


def relation_holds(n: int, edges: Dag, relation: str, x: int, y: int) -> bool:
    if relation == "parent":
        return (x, y) in edges
    if relation == "child":
        return (y, x) in edges
    if relation == "non-parent ancestor":
        return any(len(p) >= 3 for p in directed_paths(edges, x, y))
    if relation == "non-child descendant":
        return any(len(p) >= 3 for p in directed_paths(edges, y, x))
    others = [m for m in range(n) if m not in (x, y)]
    if relation == "collider":
        return any(
            directed_paths(edges, x, m, avoid=y) and directed_paths(edges, y, m, avoid=x)
            for m in others
        )
    if relation == "confounder":
        return any(
            directed_paths(edges, c, x, avoid=y) and directed_paths(edges, c, y, avoid=x)
            for c in others
        )
    raise ValueError(relation)


def class_label(n: int, members: list[Dag], relation: str, x: int, y: int) -> int:
    return int(all(relation_holds(n, dag, relation, x, y) for dag in members))


def permute(statement_set: frozenset, perm: tuple[int, ...]) -> frozenset:
    out = set()
    for x, y, given in statement_set:
        a, b = sorted((perm[x], perm[y]))
        out.add((a, b, frozenset(perm[v] for v in given)))
    return frozenset(out)


def premise_text(n: int, stmts: frozenset, names: list[str]) -> str:
    """The published premise, written out independently of rlcausality.data.corr2cause.text."""

    def listed(items: list[str]) -> str:
        return (
            " and ".join(items) if len(items) <= 2 else ", ".join(items[:-1]) + " and " + items[-1]
        )

    marginal = {(x, y) for x, y, g in stmts if not g}
    corr = [
        f"{names[x]} correlates with {names[y]}."
        for x, y in itertools.combinations(range(n), 2)
        if (x, y) not in marginal
    ]
    ind = []
    for x, y, g in sorted(stmts, key=lambda s: (s[0], s[1], sorted(s[2]))):
        if g:
            given = listed([names[v] for v in sorted(g)])
            ind.append(f"{names[x]} and {names[y]} are independent given {given}.")
        else:
            ind.append(f"{names[x]} is independent of {names[y]}.")
    text = (
        f"Suppose there is a closed system of {n} variables, {listed(names)}. All the statistical "
        f"relations among these {n} variables are as follows: "
    )
    if corr and ind:
        return text + " ".join(corr) + " However, " + " ".join(ind)
    return text + " ".join(corr + ind)
