"""The machine the benchmark runs on: GPU peaks and memory, package versions, scratch space."""

from __future__ import annotations

import contextlib
import gc
import resource
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rlcausality import provenance
from rlcausality.plan import bench
from rlcausality.plan import jobs as plan


def cuda() -> bool:
    return torch.cuda.is_available()


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def memory_gib() -> dict[str, float | None]:
    """Peak allocated/reserved GPU memory since the last reset (None on a CPU)."""
    if not torch.cuda.is_available():
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3),
    }


def allocated_gib() -> float | None:
    """GPU memory allocated now (None on a CPU)."""
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.memory_allocated() / 2**30, 3)


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def peak_tflops(env: dict[str, Any], override: float | None) -> float | None:
    """``override``, else the dense tensor peak (TFLOP/s, bf16; fp16 before Ampere) of this GPU
    in the plan's table (gpus.yaml); None without a GPU or for one the table does not have."""
    if override:
        return override
    name = bench.match_gpu(env["gpu"], env["gpu_memory_gib"])
    return round(plan.gpu(name).peak_flops(2) / 1e12, 1) if name else None


def environment(command: list[str]) -> dict[str, Any]:
    """The GPU, the package versions and git commit (``rlcausality.provenance``), the command."""
    made = provenance.provenance()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "gpu": gpu,
        "gpu_count": torch.cuda.device_count(),
        "gpu_memory_gib": (
            round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if gpu else None
        ),
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "versions": made["versions"],
        "python": made["versions"]["python"],
        "git_commit": made["git_commit"],
        "host": made["host"],
        "command": shlex.join([sys.executable, *command]),
        "created": made["created"],
    }


@contextlib.contextmanager
def scratch_dir(needed_bytes: int, preferred: str | None) -> Iterator[Path]:
    """A temporary folder: ``preferred``, else /dev/shm when it has room, else the system's."""
    root = preferred
    if root is None and Path("/dev/shm").is_dir():
        with contextlib.suppress(OSError):
            if shutil.disk_usage("/dev/shm").free > 1.3 * needed_bytes:
                root = "/dev/shm"
    with tempfile.TemporaryDirectory(prefix="gpu_bench_", dir=root) as tmp:
        yield Path(tmp)


class Budget:
    """The run's time budget: later generation runs are skipped once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> bool:
        return self.elapsed() < self.seconds
