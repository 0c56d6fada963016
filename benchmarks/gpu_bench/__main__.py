"""``python -m benchmarks.gpu_bench``: the benchmark's command line (``cli``)."""

import sys

from benchmarks.gpu_bench.cli import main

sys.exit(main())
