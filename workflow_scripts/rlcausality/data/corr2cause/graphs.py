"""DAGs on a few variables: enumeration up to isomorphism, Markov equivalence, d-separation.

Encoding: a directed graph on ``n`` nodes is an int ``code`` whose bit ``i * n + j`` is set
iff there is an edge ``i -> j``.  A Markov equivalence class (MEC) is identified by its
*pattern*: the skeleton with the edges of v-structures directed and all others undirected
(an undirected edge sets both bits).  Patterns are equivariant under relabelling, so two
MECs are isomorphic iff their patterns are; the canonical form of a graph is the smallest
code over all node permutations.

Counts for n = 2..6: DAGs up to isomorphism 2, 6, 31, 302, 5984; MECs up to isomorphism
2, 5, 20, 142, 2201.  The published Corr2Cause paper reports 2,207 classes for n = 6; the
2,201 here is confirmed by grouping the 5,984 DAGs by canonicalised (skeleton, v-structure
set) in plain Python and, separately, by canonicalised d-separation statement sets, and for
n <= 5 by the brute force in tests/corr2cause (every labelled DAG, grouped by d-separation).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

MAX_NODES = 6
RELATIONS: tuple[str, ...] = (
    "parent",
    "child",
    "non-parent ancestor",
    "non-child descendant",
    "collider",
    "confounder",
)


def _check_n(n: int) -> None:
    if not 2 <= n <= MAX_NODES:
        raise ValueError(f"number of variables must be in 2..{MAX_NODES}, got {n}")


# ---------------------------------------------------------------------------
# codes <-> adjacency
# ---------------------------------------------------------------------------


def to_adjacency(codes: np.ndarray, n: int) -> np.ndarray:
    """(K,) int codes -> (K, n, n) bool adjacency, ``adj[k, i, j]`` = edge i -> j."""
    codes = np.asarray(codes, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(n * n, dtype=np.int64)) & 1
    return bits.reshape(-1, n, n).astype(bool)


def from_adjacency(adj: np.ndarray) -> np.ndarray:
    """(K, n, n) bool adjacency -> (K,) int64 codes."""
    k, n, _ = adj.shape
    weights = np.left_shift(np.int64(1), np.arange(n * n, dtype=np.int64))
    return adj.reshape(k, n * n).astype(np.int64) @ weights


def edges(code: int, n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(n) if code >> (i * n + j) & 1]


def code_from_edges(edge_list: list[tuple[int, int]] | tuple[tuple[int, int], ...], n: int) -> int:
    code = 0
    for i, j in edge_list:
        code |= 1 << (i * n + j)
    return code


def children_masks(code: int, n: int) -> list[int]:
    """Per node, the bitmask of its children (``code`` may be any directed graph)."""
    row = (1 << n) - 1
    return [(code >> (i * n)) & row for i in range(n)]


# ---------------------------------------------------------------------------
# enumeration and canonical forms
# ---------------------------------------------------------------------------


def upper_dags(n: int) -> np.ndarray:
    """Codes of all DAGs whose edges all go from a lower to a higher index (2^(n(n-1)/2))."""
    _check_n(n)
    pairs = list(itertools.combinations(range(n), 2))
    weights = np.array([1 << (i * n + j) for i, j in pairs], dtype=np.int64)
    masks = np.arange(1 << len(pairs), dtype=np.int64)
    bits = (masks[:, None] >> np.arange(len(pairs), dtype=np.int64)) & 1
    return bits @ weights


@functools.cache
def _perm_tables(n: int) -> tuple[tuple[tuple[int, ...], ...], np.ndarray]:
    """For every permutation, byte lookup tables that relabel a code: shape (P, B, 256)."""
    perms = tuple(itertools.permutations(range(n)))
    nbytes = (n * n + 7) // 8
    tables = np.zeros((len(perms), nbytes, 256), dtype=np.int64)
    values = np.arange(256, dtype=np.int64)
    for p, perm in enumerate(perms):
        for b in range(nbytes):
            for bit in range(8):
                pos = b * 8 + bit
                if pos >= n * n:
                    break
                i, j = divmod(pos, n)
                target = np.int64(1) << np.int64(perm[i] * n + perm[j])
                tables[p, b] |= np.where((values >> bit) & 1, target, 0)
    return perms, tables


def permute_code(code: int, perm: tuple[int, ...] | list[int], n: int) -> int:
    """Relabel node ``i`` as ``perm[i]``."""
    return code_from_edges([(perm[i], perm[j]) for i, j in edges(code, n)], n)


def canonical_codes(codes: np.ndarray, n: int) -> np.ndarray:
    """Smallest relabelled code of each graph (an isomorphism invariant that decides it)."""
    codes = np.asarray(codes, dtype=np.int64)
    _, tables = _perm_tables(n)
    byte_idx = [(codes >> (8 * b)) & 255 for b in range(tables.shape[1])]
    best = np.full(codes.shape, np.iinfo(np.int64).max, dtype=np.int64)
    for p in range(tables.shape[0]):
        out = tables[p, 0][byte_idx[0]]
        for b in range(1, tables.shape[1]):
            out |= tables[p, b][byte_idx[b]]
        np.minimum(best, out, out=best)
    return best


def patterns(codes: np.ndarray, n: int) -> np.ndarray:
    """Pattern code (skeleton + v-structure orientations) of each DAG code."""
    adj = to_adjacency(codes, n)
    skel = adj | adj.transpose(0, 2, 1)
    nonadj = ~skel & ~np.eye(n, dtype=bool)
    # v[g, i, k]: i -> k is in a v-structure i -> k <- j with i, j nonadjacent
    shared = np.matmul(nonadj.astype(np.int16), adj.astype(np.int16)) > 0
    v_edge = adj & shared
    pat = skel & ~v_edge.transpose(0, 2, 1)
    return from_adjacency(pat)


def dags_up_to_isomorphism(n: int) -> np.ndarray:
    """Canonical codes of all DAGs on ``n`` nodes up to isomorphism (2, 6, 31, 302, 5984)."""
    return np.unique(canonical_codes(upper_dags(n), n))


# ---------------------------------------------------------------------------
# Markov equivalence classes
# ---------------------------------------------------------------------------


def _pattern_edges(pattern: int, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The pattern's directed edges ``(tail, head)`` and undirected edges ``(i, j)``, i < j."""
    directed: list[tuple[int, int]] = []
    undirected: list[tuple[int, int]] = []
    for i in range(n):
        for j in range(i + 1, n):
            a = pattern >> (i * n + j) & 1
            b = pattern >> (j * n + i) & 1
            if a and b:
                undirected.append((i, j))
            elif a:
                directed.append((i, j))
            elif b:
                directed.append((j, i))
    return directed, undirected


class _PartialDag:
    """A DAG built edge by edge on a fixed skeleton; per node bitmasks of children/parents."""

    def __init__(self, n: int, skeleton: list[tuple[int, int]]) -> None:
        self.n = n
        self.adjacent = [0] * n
        for i, j in skeleton:
            self.adjacent[i] |= 1 << j
            self.adjacent[j] |= 1 << i
        self.children = [0] * n
        self.parents = [0] * n

    def reaches(self, src: int, dst: int) -> bool:
        """Whether a directed path leads from ``src`` to ``dst``."""
        children = self.children
        seen = 0
        frontier = 1 << src
        while frontier:
            seen |= frontier
            nxt = 0
            f = frontier
            while f:
                low = f & -f
                nxt |= children[low.bit_length() - 1]
                f ^= low
            if nxt >> dst & 1:
                return True
            frontier = nxt & ~seen
        return False

    def add(self, u: int, v: int, check_vstruct: bool) -> bool:
        """Add ``u -> v`` unless it closes a cycle (or, checked, makes a new v-structure)."""
        if self.reaches(v, u):
            return False
        if check_vstruct and self.parents[v] & ~self.adjacent[u] & ~(1 << u):
            return False
        self.children[u] |= 1 << v
        self.parents[v] |= 1 << u
        return True

    def remove(self, u: int, v: int) -> None:
        self.children[u] &= ~(1 << v)
        self.parents[v] &= ~(1 << u)

    def code(self) -> int:
        code = 0
        for i in range(self.n):
            code |= self.children[i] << (i * self.n)
        return code


def _orient(dag: _PartialDag, undirected: list[tuple[int, int]], k: int, out: list[int]) -> None:
    """Append to ``out`` every acyclic orientation of ``undirected[k:]`` with no new v-structure.

    An undirected edge oriented into a node must not meet a nonadjacent parent there; of two
    edges into one node, the one added later checks the earlier one.
    """
    if k == len(undirected):
        out.append(dag.code())
        return
    i, j = undirected[k]
    for u, v in ((i, j), (j, i)):
        if dag.add(u, v, check_vstruct=True):
            _orient(dag, undirected, k + 1, out)
            dag.remove(u, v)


def pattern_members(pattern: int, n: int) -> list[int]:
    """All DAG codes with the pattern's skeleton and exactly its v-structures.

    ``pattern`` sets both bits for an undirected edge and one bit for a directed one.  Works
    for any candidate pattern (e.g. one read off independence statements): a DAG is returned
    only if it is acyclic and creates no v-structure beyond the directed edges' own.
    """
    directed, undirected = _pattern_edges(pattern, n)
    dag = _PartialDag(n, directed + undirected)
    # the directed edges' v-structures are the pattern's own
    for u, v in directed:
        if not dag.add(u, v, check_vstruct=False):
            return []
    results: list[int] = []
    _orient(dag, undirected, 0, results)
    return results


@dataclass(frozen=True)
class MecClasses:
    """The Markov equivalence classes on ``n`` nodes, one labelled representative each."""

    n: int
    patterns: np.ndarray  # (C,) labelled pattern of each class's chosen labelling
    representatives: np.ndarray  # (C,) an upper-triangular DAG of that labelled class
    canonical: np.ndarray  # (C,) canonical pattern code (sorted ascending: class order)


@functools.cache
def mec_classes(n: int) -> MecClasses:
    """MECs up to isomorphism (2, 5, 20, 142, 2201 for n = 2..6).

    The labelling of a class is that of its first upper-triangular DAG in enumeration order,
    so every class has a member whose edges all point from a lower to a higher index (the
    published convention: A, B, C, ... is a topological order of some member).
    """
    dags = upper_dags(n)
    pats = patterns(dags, n)
    uniq_pats, first = np.unique(pats, return_index=True)
    canon = canonical_codes(uniq_pats, n)
    order = np.lexsort((first, canon))
    canon_sorted = canon[order]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = canon_sorted[1:] != canon_sorted[:-1]
    chosen = order[keep]
    return MecClasses(
        n=n,
        patterns=uniq_pats[chosen],
        representatives=dags[first][chosen],
        canonical=canon_sorted[keep],
    )


# ---------------------------------------------------------------------------
# relations and d-separation (vectorised over many graphs)
# ---------------------------------------------------------------------------


def closure(adj: np.ndarray) -> np.ndarray:
    """Strict reachability (paths of length >= 1) for a stack of DAG adjacencies."""
    reach = adj.copy()
    n = adj.shape[-1]
    steps = 1
    while steps < n:
        reach = reach | (np.matmul(reach.astype(np.int16), reach.astype(np.int16)) > 0)
        steps *= 2
    return reach


def closure_avoiding(adj: np.ndarray, node: int) -> np.ndarray:
    """Strict reachability of a stack of DAG adjacencies on paths that avoid ``node``."""
    kept = adj.copy()
    kept[:, node, :] = False
    kept[:, :, node] = False
    return closure(kept)


def relation_tables(codes: np.ndarray, n: int) -> np.ndarray:
    """(K, 6, n, n) bool: ``out[k, r, x, y]`` = relation ``RELATIONS[r]`` holds for (x, y)."""
    adj = to_adjacency(codes, n)
    desc = closure(adj)
    out = np.zeros((len(codes), len(RELATIONS), n, n), dtype=bool)
    out[:, 0] = adj
    out[:, 1] = adj.transpose(0, 2, 1)
    longer = np.matmul(adj.astype(np.int16), desc.astype(np.int16)) > 0
    out[:, 2] = longer
    out[:, 3] = longer.transpose(0, 2, 1)
    # closures avoiding each node r: drop r's edges
    avoid = np.empty((n, *desc.shape), dtype=bool)
    for r in range(n):
        avoid[r] = closure_avoiding(adj, r)
    for x in range(n):
        for y in range(n):
            if x == y:
                continue
            dx_no_y = avoid[y][:, x, :]  # x ~> m avoiding y
            dy_no_x = avoid[x][:, y, :]
            out[:, 4, x, y] = (dx_no_y & dy_no_x).any(axis=1)
            ax_no_y = avoid[y][:, :, x]  # c ~> x avoiding y
            ay_no_x = avoid[x][:, :, y]
            out[:, 5, x, y] = (ax_no_y & ay_no_x).any(axis=1)
    return out


@functools.cache
def dsep_queries(n: int) -> tuple[tuple[int, int, int], ...]:
    """All (x, y, conditioning bitmask) with x < y, sorted like the published premises:
    by pair, then by the conditioning set as a sorted index list (``[] < [0] < [0, 2] < [1]``).
    """
    out = []
    for x, y in itertools.combinations(range(n), 2):
        rest = [v for v in range(n) if v not in (x, y)]
        subsets = sorted(
            s for size in range(len(rest) + 1) for s in itertools.combinations(rest, size)
        )
        out.extend((x, y, sum(1 << v for v in subset)) for subset in subsets)
    return tuple(out)


def dsep_table(codes: np.ndarray, n: int) -> np.ndarray:
    """(K, Q) bool: query ``dsep_queries(n)[q]`` is a d-separation in DAG ``codes[k]``.

    Uses the moralised ancestral graph: x and y are d-separated by S iff they are
    disconnected in the moral graph of An({x, y} | S) once S is removed.
    """
    codes = np.asarray(codes, dtype=np.int64)
    adj = to_adjacency(codes, n)
    anc_refl = closure(adj) | np.eye(n, dtype=bool)  # anc_refl[k, a, v]: a ~> v or a == v
    w = 1 << np.arange(n, dtype=np.int64)
    ch = adj.astype(np.int64) @ w  # (K, n) children masks
    pa = adj.transpose(0, 2, 1).astype(np.int64) @ w
    anc = anc_refl.transpose(0, 2, 1).astype(np.int64) @ w  # ancestors of v (incl. v)
    skel = ch | pa
    queries = np.array(dsep_queries(n), dtype=np.int64)
    qx, qy, qs = queries[:, 0], queries[:, 1], queries[:, 2]
    wmask = (1 << qx) | (1 << qy) | qs
    k = len(codes)
    an = np.zeros((k, len(queries)), dtype=np.int64)
    for v in range(n):
        an |= np.where(((wmask >> v) & 1).astype(bool)[None, :], anc[:, v, None], 0)
    keep = an & ~qs[None, :]
    nbr = []
    for v in range(n):
        m = np.broadcast_to(skel[:, v, None], an.shape).copy()
        for c in range(n):
            sel = (((ch[:, v] >> c) & 1)[:, None] & ((an >> c) & 1)).astype(bool)
            m |= np.where(sel, pa[:, c, None], 0)
        nbr.append(m & keep & ~(1 << v))
    reach = np.broadcast_to((1 << qx)[None, :], an.shape).copy()
    for _ in range(n - 1):
        new = reach.copy()
        for v in range(n):
            new |= np.where(((reach >> v) & 1).astype(bool), nbr[v], 0)
        reach = new
    return ((reach >> qy[None, :]) & 1) == 0
