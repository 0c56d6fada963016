"""The project's benchmarks, run from the repository root: ``python -m benchmarks.gpu_bench``
(docs/performance.md) and ``python benchmarks/generate_corpus.py``."""
