"""Which test items are scored: all of them, or a stratified sample that every model, stage and
baseline shares.

With ``max_samples`` N the items are grouped into strata by (relation, number of variables) and
each stratum gets a share of N proportional to its size, rounded by the largest-remainder
method (ties go to the stratum whose name sorts first). Within a stratum the items with the
smallest stable hash of (seed, id) are taken. The sample depends only on the items' ids,
relations and sizes, never on the order of the file, so each model's file yields the same
items as the corpus file the baselines read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

SUBSET_SEED = 0
STRATUM_KEYS = ("relation", "num_variables")

Row = Mapping[str, Any]


def subset_key(row_id: Any, seed: int = SUBSET_SEED) -> str:
    """The stable hash that orders items within a stratum (and the sample as a whole)."""
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def stratum(row: Row) -> tuple[str, ...]:
    """The stratum of an item: its relation and number of variables, as strings."""
    return tuple(str(row.get(key)) for key in STRATUM_KEYS)


def allocate(sizes: Mapping[tuple[str, ...], int], total: int) -> dict[tuple[str, ...], int]:
    """``total`` items shared among strata in proportion to ``sizes`` (largest remainder)."""
    population = sum(sizes.values())
    if total >= population:
        return dict(sizes)
    quotas = {name: size * total / population for name, size in sizes.items()}
    counts = {name: int(quota) for name, quota in quotas.items()}
    left = total - sum(counts.values())
    by_remainder = sorted(quotas, key=lambda name: (-(quotas[name] - counts[name]), name))
    for name in by_remainder[:left]:
        counts[name] += 1
    return counts


def select_rows(rows: Sequence[Row], max_samples: int | None, seed: int = SUBSET_SEED) -> list[Row]:
    """All rows in file order; with ``max_samples``, the stratified sample in hash order."""
    if max_samples is None:
        return list(rows)
    strata: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        strata.setdefault(stratum(row), []).append(row)
    counts = allocate({name: len(members) for name, members in strata.items()}, max_samples)
    chosen: list[Row] = []
    for name, members in strata.items():
        members.sort(key=lambda row: subset_key(row["id"], seed))
        chosen += members[: counts[name]]
    return sorted(chosen, key=lambda row: subset_key(row["id"], seed))
