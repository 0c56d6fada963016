"""What a GPU job really sees: run once per process of the job's launcher.

``python -m rlcausality.cluster.gpu_check --out F`` (or under ``torchrun --nproc_per_node=N``)
writes one JSON with, for every process, its rank, CUDA_VISIBLE_DEVICES, the device count and names,
and the SLURM job variables, so a user can check a cluster before a long run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from rlcausality.io import write_json
from rlcausality.provenance import package_versions
from rlcausality.settings import cli

SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_JOB_PARTITION",
    "SLURM_GPUS",
    "SLURM_GPUS_ON_NODE",
    "SLURM_JOB_GPUS",
    "SLURM_CPUS_PER_TASK",
    "SLURM_MEM_PER_NODE",
    "SLURM_NTASKS",
)


def probe() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0
    return {
        "rank": int(os.environ.get("RANK", "0")),
        "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "host": socket.gethostname(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_available": cuda,
        "device_count": count,
        "devices": [torch.cuda.get_device_name(i) for i in range(count)],
        "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
        "cpu_count": len(os.sched_getaffinity(0)),
        "slurm": {k: os.environ[k] for k in SLURM_VARS if k in os.environ},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    info = probe()
    world = info["world_size"]
    parts = args.out.parent / f".{args.out.name}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    write_json(parts / f"rank{info['rank']}.json", info)
    if info["rank"] != 0:
        return
    deadline = time.monotonic() + 120
    while len(list(parts.glob("rank*.json"))) < world and time.monotonic() < deadline:
        time.sleep(0.5)
    processes = [json.loads(p.read_text()) for p in sorted(parts.glob("rank*.json"))]
    for part in parts.glob("rank*.json"):
        part.unlink()
    parts.rmdir()
    write_json(
        args.out,
        {
            "processes": sorted(processes, key=lambda p: p["rank"]),
            "world_size": world,
            "versions": package_versions(),
        },
    )
    print(json.dumps(processes, indent=2))


if __name__ == "__main__":
    cli.entry(main)
