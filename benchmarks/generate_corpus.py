"""Time generating the full Corr2Cause corpus (N = 2..6): in memory, then with JSONL output.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generate_corpus.py [--settings JSON]
Runs cold (a fresh process, no cache) and prints wall time and items/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from rlcausality.data.corr2cause.generate import corpus_stats, generate_corpus, write_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", default='{"num_variables": [2, 6]}')
    args = parser.parse_args()
    settings = json.loads(args.settings)

    start = time.perf_counter()
    corpus = generate_corpus(settings)
    in_memory = time.perf_counter() - start
    items = sum(len(rows) for rows in corpus.values())
    print(f"settings: {json.dumps(settings)}")
    print(f"splits: {json.dumps({k: len(v) for k, v in corpus.items()})}")
    print(f"in memory: {in_memory:.2f} s for {items} items ({items / in_memory:,.0f} items/s)")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_corpus(corpus, tmp, {"splits": corpus_stats(corpus)})
        writing = time.perf_counter() - start
    total = in_memory + writing
    print(f"writing JSONL + stats: {writing:.2f} s")
    print(f"generate + write: {total:.2f} s ({items / total:,.0f} items/s)")


if __name__ == "__main__":
    main()
