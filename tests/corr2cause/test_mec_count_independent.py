"""Independent count of Markov equivalence classes of DAGs on n unlabelled nodes.

Nothing here comes from ``rlcausality.data.corr2cause``; only numpy is used.

1. Every labelled DAG on n nodes is a relabelling of a DAG whose edges all go from a lower to
   a higher index (take a topological order).  So the labelled DAGs are the distinct images of
   the 2**C(n, 2) upper-triangular edge sets under the n! permutations (OEIS A003024).
2. Each DAG gets two Markov-equivalence keys (Verma & Pearl: same skeleton, same v-structures):
   * ``(skeleton, v-structure bitset)``: the skeleton over the C(n, 2) pairs and a bitset over
     the n * C(n - 1, 2) possible v-structures a -> c <- b (a < b, a and b non-adjacent);
   * the *pattern*: the skeleton with exactly the edges that take part in a v-structure kept
     directed, stored as an n x n bitmask (bit a*n+b set iff a - b or a -> b).
   The test checks that the two keys define the same partition of the DAGs, and that the
   number of classes is OEIS A084957 (labelled essential graphs).
3. Classes up to relabelling by Burnside's lemma over the cycle types of S_n, checked against a
   direct canonical form (minimum pattern key over all n! relabellings).  As a control, the
   same Burnside count over the DAGs gives the unlabelled DAGs (OEIS A003087).
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

LABELLED_DAGS = {1: 1, 2: 3, 3: 25, 4: 543, 5: 29281, 6: 3781503}  # OEIS A003024
UNLABELLED_DAGS = {1: 1, 2: 2, 3: 6, 4: 31, 5: 302, 6: 5984}  # OEIS A003087
LABELLED_MECS = {1: 1, 2: 2, 3: 11, 4: 185, 5: 8782, 6: 1067825}  # OEIS A084957
UNLABELLED_MECS = {2: 2, 3: 5, 4: 20, 5: 142, 6: 2201}  # n = 6: this file's own result

CHUNK = 12  # bits per lookup table when relabelling n*n-bit keys
CHUNK_ROWS = 1 << 19  # DAGs per block when computing keys (bounds memory)


def dag_recurrence(n: int) -> int:
    """A003024 by Robinson's recurrence: a(m) = sum_k (-1)^(k+1) C(m,k) 2^(k(m-k)) a(m-k)."""
    a = [1]
    for m in range(1, n + 1):
        a.append(
            sum(
                (-1) ** (k + 1) * math.comb(m, k) * 2 ** (k * (m - k)) * a[m - k]
                for k in range(1, m + 1)
            )
        )
    return a[n]


def relabel_tables(n: int, perm: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
    """Lookup tables moving bit i*n+j of a key to bit perm[i]*n+perm[j]."""
    values = np.arange(1 << CHUNK, dtype=np.int64)
    tables = []
    for shift in range(0, n * n, CHUNK):
        table = np.zeros(1 << CHUNK, dtype=np.int64)
        for b in range(CHUNK):
            src = shift + b
            if src >= n * n:
                break
            i, j = divmod(src, n)
            table |= ((values >> b) & 1) << (perm[i] * n + perm[j])
        tables.append((shift, table))
    return tables


def relabel(keys: np.ndarray, tables: list[tuple[int, np.ndarray]]) -> np.ndarray:
    out = np.zeros_like(keys)
    for shift, table in tables:
        out |= table[(keys >> shift) & ((1 << CHUNK) - 1)]
    return out


def labelled_dags(n: int) -> np.ndarray:
    """Sorted n*n-bit adjacency keys (bit i*n+j: edge i -> j) of all labelled DAGs."""
    pairs = list(itertools.combinations(range(n), 2))
    masks = np.arange(1 << len(pairs), dtype=np.int64)
    upper = np.zeros_like(masks)
    for p, (i, j) in enumerate(pairs):
        upper |= ((masks >> p) & 1) << (i * n + j)
    images = [relabel(upper, relabel_tables(n, perm)) for perm in itertools.permutations(range(n))]
    return np.unique(np.concatenate(images))


def mec_keys(n: int, dags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per DAG: pattern key, skeleton over pairs, v-structure bitset (all int64)."""
    pattern = np.zeros_like(dags)
    skeleton = np.zeros_like(dags)
    vstructs = np.zeros_like(dags)
    pairs = list(itertools.combinations(range(n), 2))
    triples = [(c, a, b) for c in range(n) for a, b in pairs if c not in (a, b)]
    assert len(triples) == n * math.comb(n - 1, 2) <= 63
    for start in range(0, len(dags), CHUNK_ROWS):
        keys = dags[start : start + CHUNK_ROWS]
        adj = np.empty((len(keys), n, n), dtype=bool)
        for i in range(n):
            for j in range(n):
                adj[:, i, j] = (keys >> (i * n + j)) & 1
        assert not adj[:, range(n), range(n)].any()
        skel = adj | adj.transpose(0, 2, 1)
        nonadj = ~skel
        nonadj[:, range(n), range(n)] = False
        # vedge[a, c]: a -> c and some other parent b of c is not adjacent to a.
        has_partner = np.zeros_like(adj)
        for b in range(n):
            has_partner |= nonadj[:, :, b, None] & adj[:, None, b, :]
        vedge = adj & has_partner
        mark = skel & ~vedge.transpose(0, 2, 1)  # a - b undirected, or a -> b in a v-structure
        sl = slice(start, start + len(keys))
        for i in range(n):
            for j in range(n):
                pattern[sl] |= mark[:, i, j].astype(np.int64) << (i * n + j)
        for p, (i, j) in enumerate(pairs):
            skeleton[sl] |= skel[:, i, j].astype(np.int64) << p
        for t, (c, a, b) in enumerate(triples):
            v = adj[:, a, c] & adj[:, b, c] & nonadj[:, a, b]
            vstructs[sl] |= v.astype(np.int64) << t
    return pattern, skeleton, vstructs


def count_distinct(*columns: np.ndarray) -> int:
    order = np.lexsort(columns)
    new = np.zeros(len(order), dtype=bool)
    new[0] = True
    for col in columns:
        s = col[order]
        new[1:] |= s[1:] != s[:-1]
    return int(new.sum())


def cycle_types(n: int):
    """(representative permutation, number of permutations) for each cycle type of S_n."""

    def partitions(m: int, largest: int):
        if m == 0:
            yield []
            return
        for k in range(min(m, largest), 0, -1):
            for rest in partitions(m - k, k):
                yield [k, *rest]

    for parts in partitions(n, n):
        perm, start = [], 0
        for k in parts:
            perm += [start + (t + 1) % k for t in range(k)]
            start += k
        size = math.factorial(n)
        for k in set(parts):
            mult = parts.count(k)
            size //= k**mult * math.factorial(mult)
        yield tuple(perm), size


def burnside(n: int, keys: np.ndarray) -> int:
    total, weights = 0, 0
    for perm, size in cycle_types(n):
        fixed = int(np.count_nonzero(relabel(keys, relabel_tables(n, perm)) == keys))
        total += size * fixed
        weights += size
    assert weights == math.factorial(n)
    assert total % weights == 0
    return total // weights


def canonical_count(n: int, keys: np.ndarray) -> int:
    best = keys.copy()
    for perm in itertools.permutations(range(n)):
        np.minimum(best, relabel(keys, relabel_tables(n, perm)), out=best)
    return len(np.unique(best))


def check(n: int, canonical: bool) -> int:
    t0 = time.perf_counter()
    dags = labelled_dags(n)
    assert len(dags) == LABELLED_DAGS[n] == dag_recurrence(n)
    assert burnside(n, dags) == UNLABELLED_DAGS[n]
    pattern, skeleton, vstructs = mec_keys(n, dags)
    classes = count_distinct(pattern)
    # The two keys induce the same partition: each alone has as many classes as both together.
    assert classes == count_distinct(skeleton, vstructs) == count_distinct(pattern, vstructs)
    assert classes == LABELLED_MECS[n]
    mecs = np.unique(pattern)
    unlabelled = burnside(n, mecs)
    if canonical:
        assert canonical_count(n, mecs) == unlabelled
    print(
        f"n={n}: {len(dags)} labelled DAGs, {classes} labelled MECs, "
        f"{unlabelled} MECs up to isomorphism ({time.perf_counter() - t0:.1f} s)"
    )
    return unlabelled


def test_cycle_types():
    for n in range(1, 7):
        types = list(cycle_types(n))
        assert sum(size for _, size in types) == math.factorial(n)
        assert all(sorted(perm) == list(range(n)) for perm, _ in types)
    assert len(list(cycle_types(6))) == 11


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_mec_count_small(n):
    assert check(n, canonical=True) == UNLABELLED_MECS[n]


def test_mec_count_six():
    """About 30 s on one core; Corr2Cause's published N=6 data has 2,207 classes, not 2,201."""
    assert check(6, canonical=True) == UNLABELLED_MECS[6]
