"""How often an item's label can be read off its fixed edges alone, relation by relation.

An oracle trace states the skeleton (``Adjacent``) and the edges every DAG of the premise
orients alike (``Fixed``), then its ``Check``. The label is "the relation holds in every DAG";
this script asks how often it equals "the relation holds in the graph of the fixed edges
alone" (the same relation tables, ``graphs.relation_tables``, on that one graph), that is
how often the ``Check`` is a lookup in the ``Fixed`` list that precedes it. Where it is, a
trace can spell the lookup out (the fixed edges out of x and y for a common effect, into
them for a common cause) and a model has only to copy and compare. Prints a table per split::

    python benchmarks/check_lookup.py results/data/corr2cause/train.jsonl \
        results/data/corr2cause/test.jsonl
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from rlcausality.data.corr2cause import graphs
from rlcausality.data.corr2cause.symbolic import derive
from rlcausality.io import read_jsonl
from rlcausality.task import Derivation


def fixed_graph_holds(derivation: Derivation) -> int:
    """1 when the hypothesis' relation holds in the graph of the fixed edges alone."""
    n = len(derivation.names)
    code = graphs.code_from_edges(derivation.fixed, n)
    table = graphs.relation_tables(np.array([code], dtype=np.int64), n)[0]
    return int(table[graphs.RELATIONS.index(derivation.relation), derivation.x, derivation.y])


def tally(texts: Iterable[str]) -> dict[str, Counter[str]]:
    """Per relation: items, valid ones, lookup equal to the label, valid ones the lookup finds."""
    out: dict[str, Counter[str]] = {}
    for text in texts:
        derivation = derive(text)
        if derivation is None:  # an inconsistent premise has no label
            continue
        lookup = fixed_graph_holds(derivation)
        counts = out.setdefault(derivation.relation, Counter())
        counts["items"] += 1
        counts["valid"] += derivation.label
        counts["agree"] += lookup == derivation.label
        counts["valid found"] += lookup and derivation.label
    return out


def table(counts: dict[str, Counter[str]]) -> list[str]:
    lines = ["| relation | items | valid | lookup = label | valid ones the lookup finds |",
             "|---|---|---|---|---|"]  # fmt: skip
    for relation in graphs.RELATIONS:
        if relation not in counts:
            continue
        c = counts[relation]
        found = f"{c['valid found']} of {c['valid']}" if c["valid"] else "-"
        lines.append(f"| {relation} | {c['items']} | {c['valid']} | "
                     f"{c['agree'] / c['items']:.3f} | {found} |")  # fmt: skip
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("splits", nargs="+", help="corpus splits (JSONL rows with an input)")
    args = parser.parse_args(argv)
    for path in args.splits:
        print(f"{path}:")
        print("\n".join(table(tally(str(row["input"]) for row in read_jsonl(path)))))


if __name__ == "__main__":
    main()
