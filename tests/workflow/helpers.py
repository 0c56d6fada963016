"""Run the real workflow (a copy of this checkout) with the real Snakemake."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = (
    "Snakefile",
    "rules",
    "config.yaml",
    "profiles",
    "workflow_scripts",
    "envs",
    "benchmarks",  # rule gpu_bench runs benchmarks.gpu_bench
)
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "whl"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def run_snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    timeout: float = 1800,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **(extra_env or {}))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.run(
        [SNAKEMAKE, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry-run as {rule: count} (without 'total')."""
    match = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\n\s*\n", output, re.DOTALL)
    if not match:
        return {}
    counts = {}
    for line in match.group(1).splitlines():
        name, count = line.split()
        if name != "total":
            counts[name] = int(count)
    return counts


def dry_run(workdir: Path, *args: str) -> dict[str, int]:
    proc = run_snakemake(workdir, "-n", *args)
    return job_counts(proc.stdout + proc.stderr)


def hub_cache(cache_dir: Path, repo_id: str, model_dir: Path, commit: str) -> Path:
    """Lay ``model_dir``'s files out as the hub cache does: blobs named by content hash,
    snapshots/{commit}/ of relative symlinks into them, refs/main naming the commit."""
    import hashlib

    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot = repo / "snapshots" / commit
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / path.relative_to(model_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def complete_checkpoints(directory: Path) -> list[int]:
    """Steps of the checkpoints in ``directory`` whose trainer_state.json parses."""
    steps = []
    for child in directory.glob("checkpoint-*"):
        state = child / "trainer_state.json"
        try:
            json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        steps.append(int(child.name.split("-")[1]))
    return sorted(steps)
