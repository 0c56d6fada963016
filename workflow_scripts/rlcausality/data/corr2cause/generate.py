"""Generate the Corr2Cause corpus: every Markov equivalence class on 2..6 variables, split by
whole classes, with exact labels computed over all labelled DAGs of each class.

* Each class has one labelling (``graphs.mec_classes``): A, B, C, ... is a topological order
  of one of its members, so in ``canonical`` naming ``child`` and ``non-child descendant``
  are never valid (the published shortcut).
* ``shuffled`` relabels every class by a seeded random permutation of its letters (the
  premise still lists A, B, C, ... and every pair is named in alphabetical order), which
  removes the shortcut; ``refactored`` renames A, B, C, ... to Z, Y, X, ... keeping the
  published order (variables listed ``Z, Y and X``, statements and pairs in that order).
* Items of a class: for every pair (x before y in listing order) the six relations of
  ``graphs.RELATIONS``.  Ids ``corr2cause-n{N}-c{class:04d}-{x}{y}-{relation}`` use node
  positions, so they do not depend on the naming; robustness copies add ``-paraphrased`` /
  ``-refactored``.
* Splits: classes are shuffled per N (seeded) and dealt, N by N, to the split furthest behind
  its fraction, so each N is split in proportion up to one class (N = 2's two classes both
  go to train with 0.8/0.1/0.1).  ``max_items`` caps sample items with the seed; the
  robustness sets are rendered from the test classes and capped with the same sample.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlcausality.data.corr2cause import graphs, text
from rlcausality.io import atomic_open
from rlcausality.stages import ROBUSTNESS_SOURCE, ROBUSTNESS_VARIANTS

Row = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    num_variables: tuple[int, int] = (2, 6)
    naming: str = "canonical"
    phrasing: str = "original"
    splits: dict[str, float] = field(
        default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1}
    )
    seed: int = 0
    max_items: dict[str, int | None] = field(default_factory=dict)
    robustness: bool = True


def parse_settings(obj: Mapping[str, Any] | None) -> Settings:
    """``config["data"]["generate"]`` -> Settings; missing keys take the defaults."""
    obj = dict(obj or {})
    default = Settings()
    known = set(Settings.__dataclass_fields__)
    unknown = set(obj) - known
    if unknown:
        raise ValueError(f"unknown generate settings: {sorted(unknown)}")
    lo, hi = obj.get("num_variables", default.num_variables)
    if not (isinstance(lo, int) and isinstance(hi, int) and 2 <= lo <= hi <= graphs.MAX_NODES):
        raise ValueError(f"num_variables must be [min, max] within 2..{graphs.MAX_NODES}")
    naming = obj.get("naming", default.naming)
    if naming not in text.NAMINGS:
        raise ValueError(f"naming must be one of {text.NAMINGS}, got {naming!r}")
    phrasing = obj.get("phrasing", default.phrasing)
    if phrasing not in text.TEMPLATES:
        raise ValueError(f"phrasing must be one of {tuple(text.TEMPLATES)}, got {phrasing!r}")
    splits = {str(k): float(v) for k, v in obj.get("splits", default.splits).items()}
    if not splits or any(v < 0 for v in splits.values()) or abs(sum(splits.values()) - 1) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {splits}")
    robustness = bool(obj.get("robustness", default.robustness))
    if robustness and ROBUSTNESS_SOURCE not in splits:
        raise ValueError("robustness sets need a 'test' split")
    clash = set(splits) & set(ROBUSTNESS_VARIANTS)
    if clash:
        raise ValueError(f"split names reserved for robustness sets: {sorted(clash)}")
    max_items = dict(obj.get("max_items") or {})
    for name, cap in max_items.items():
        if cap is not None and (not isinstance(cap, int) or cap < 0):
            raise ValueError(f"max_items[{name!r}] must be null or a non-negative integer")
    return Settings(
        num_variables=(lo, hi),
        naming=naming,
        phrasing=phrasing,
        splits=splits,
        seed=int(obj.get("seed", default.seed)),
        max_items=max_items,
        robustness=robustness,
    )


# ---------------------------------------------------------------------------
# classes with their tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassTables:
    """All classes on ``n`` variables in one labelling each."""

    n: int
    separated: np.ndarray  # (C, Q) bool over graphs.dsep_queries(n)
    relations: np.ndarray  # (C, 6, n, n) bool: relation valid in every member


def class_tables(n: int, naming: str, seed: int) -> ClassTables:
    classes = graphs.mec_classes(n)
    members = [graphs.pattern_members(int(p), n) for p in classes.patterns]
    reps = [int(r) for r in classes.representatives]
    if naming == "shuffled":
        rng = random.Random(f"{seed}:shuffle:{n}")
        for c in range(len(reps)):
            perm = rng.sample(range(n), n)
            reps[c] = graphs.permute_code(reps[c], perm, n)
            members[c] = [graphs.permute_code(m, perm, n) for m in members[c]]
    flat = np.array([m for ms in members for m in ms], dtype=np.int64)
    offsets = np.cumsum([0] + [len(ms) for ms in members[:-1]])
    per_dag = graphs.relation_tables(flat, n)
    relations = np.logical_and.reduceat(per_dag, offsets, axis=0)
    separated = graphs.dsep_table(np.array(reps, dtype=np.int64), n)
    return ClassTables(n, separated, relations)


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------


class Renderer:
    """Texts for one number of variables, one set of names and one phrasing."""

    def __init__(self, n: int, names: tuple[str, ...], phrasing: str) -> None:
        self.n = n
        self.names = names
        self.head = text.header(names)
        queries = graphs.dsep_queries(n)
        self.independence = np.array(
            [
                text.independence_sentence(
                    names[x], names[y], [names[v] for v in range(n) if s >> v & 1]
                )
                for x, y, s in queries
            ],
            dtype=object,
        )
        self.marginal = np.array([s == 0 for _, _, s in queries])
        self.pairs = list(itertools.combinations(range(n), 2))
        self.correlation = np.array(
            [text.correlation_sentence(names[x], names[y]) for x, y in self.pairs], dtype=object
        )
        self.hypotheses = [
            [text.hypothesis(rel, names[x], names[y], phrasing) for rel in graphs.RELATIONS]
            for x, y in self.pairs
        ]

    def premise(self, separated: np.ndarray) -> str:
        dependent = ~separated[self.marginal]
        return text.join_premise(
            self.head,
            list(self.correlation[dependent]),
            list(self.independence[separated]),
        )


_SLUG = {rel: rel.replace(" ", "_").replace("-", "_") for rel in graphs.RELATIONS}


def class_rows(tables: ClassTables, c: int, renderer: Renderer, id_suffix: str = "") -> list[Row]:
    n = tables.n
    premise = renderer.premise(tables.separated[c])
    prefix = f"Premise: {premise}\nHypothesis: "
    class_id = f"n{n}-c{c:04d}"
    rel = tables.relations[c]
    rows = []
    for p, (x, y) in enumerate(renderer.pairs):
        hyps = renderer.hypotheses[p]
        for r, relation in enumerate(graphs.RELATIONS):
            rows.append(
                {
                    "id": f"corr2cause-{class_id}-{x}{y}-{_SLUG[relation]}{id_suffix}",
                    "input": prefix + hyps[r],
                    "label": int(rel[r, x, y]),
                    "premise": premise,
                    "hypothesis": hyps[r],
                    "relation": relation,
                    "num_variables": n,
                    "class_id": class_id,
                }
            )
    return rows


# ---------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------


def assign_splits(
    class_counts: Mapping[int, int], fractions: Mapping[str, float], seed: int
) -> dict[str, list[tuple[int, int]]]:
    """Whole classes (n, index) -> split.  Classes are shuffled within each n and dealt in
    order of n to the split furthest behind its share, so every n is split in proportion
    (up to one class) and small n still land somewhere."""
    names = list(fractions)
    assigned: dict[str, list[tuple[int, int]]] = {name: [] for name in names}
    dealt = 0
    for n in sorted(class_counts):
        order = list(range(class_counts[n]))
        random.Random(f"{seed}:split:{n}").shuffle(order)
        for c in order:
            dealt += 1
            best = max(names, key=lambda s: fractions[s] * dealt - len(assigned[s]))
            assigned[best].append((n, c))
    return assigned


def _cap(rows: list[Row], cap: int | None, seed: int, split: str) -> list[Row]:
    if cap is None or cap >= len(rows):
        return rows
    keep = sorted(random.Random(f"{seed}:cap:{split}").sample(range(len(rows)), cap))
    return [rows[i] for i in keep]


# ---------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------


def _names(naming: str, n: int) -> tuple[str, ...]:
    return text.refactored_names(n) if naming == "refactored" else text.canonical_names(n)


def generate_corpus(settings: Settings | Mapping[str, Any] | None = None) -> dict[str, list[Row]]:
    """{split: rows} for every split (plus the robustness sets when asked for)."""
    if not isinstance(settings, Settings):
        settings = parse_settings(settings)
    lo, hi = settings.num_variables
    tables = {n: class_tables(n, settings.naming, settings.seed) for n in range(lo, hi + 1)}
    counts = {n: len(t.relations) for n, t in tables.items()}
    assignment = assign_splits(counts, settings.splits, settings.seed)

    def render(
        classes: list[tuple[int, int]], naming: str, phrasing: str, suffix: str
    ) -> list[Row]:
        renderers = {n: Renderer(n, _names(naming, n), phrasing) for n in range(lo, hi + 1)}
        rows: list[Row] = []
        for n, c in sorted(classes):
            rows.extend(class_rows(tables[n], c, renderers[n], suffix))
        return rows

    corpus: dict[str, list[Row]] = {}
    for split, classes in assignment.items():
        rows = render(classes, settings.naming, settings.phrasing, "")
        corpus[split] = _cap(rows, settings.max_items.get(split), settings.seed, split)
    if settings.robustness:
        test_classes = assignment[ROBUSTNESS_SOURCE]
        cap = settings.max_items.get(ROBUSTNESS_SOURCE)
        for split, variant in ROBUSTNESS_VARIANTS.items():
            suffix = "-" + split.removeprefix("test_")
            naming = variant.naming or settings.naming
            phrasing = variant.phrasing or settings.phrasing
            rows = render(test_classes, naming, phrasing, suffix)
            corpus[split] = _cap(rows, cap, settings.seed, ROBUSTNESS_SOURCE)
    return corpus


def corpus_stats(corpus: Mapping[str, list[Row]]) -> dict[str, Any]:
    """Counts per split, number of variables and relation, with label balance."""

    def tally(rows: list[Row]) -> dict[str, Any]:
        positive = sum(row["label"] for row in rows)
        return {
            "items": len(rows),
            "positive": positive,
            "positive_rate": positive / len(rows) if rows else None,
        }

    out: dict[str, Any] = {}
    for split, rows in corpus.items():
        by_n: dict[str, list[Row]] = defaultdict(list)
        by_rel: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_n[str(row["num_variables"])].append(row)
            by_rel[row["relation"]].append(row)
        out[split] = {
            **tally(rows),
            "classes": len({row["class_id"] for row in rows}),
            "by_num_variables": {n: tally(r) for n, r in sorted(by_n.items())},
            "by_relation": {rel: tally(by_rel[rel]) for rel in graphs.RELATIONS if rel in by_rel},
        }
    return out


def write_corpus(
    corpus: Mapping[str, list[Row]], outdir: str | os.PathLike[str], stats: Mapping[str, Any]
) -> list[Path]:
    """Write ``{split}.jsonl`` and ``stats.json``; files are renamed into place only after
    every one of them was written completely."""
    outdir = Path(outdir)
    paths = [outdir / f"{split}.jsonl" for split in corpus] + [outdir / "stats.json"]
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(atomic_open(path)) for path in paths]
        for handle, rows in zip(handles, corpus.values(), strict=False):
            dumps = json.JSONEncoder(ensure_ascii=False).encode
            handle.writelines(dumps(row) + "\n" for row in rows)
        handles[-1].write(json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n")
    return paths
