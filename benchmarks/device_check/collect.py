"""Gather the check's figures into OUT/results.json and OUT/summary.md (run after every step, so
a run cut short still leaves what it had).  python collect.py WORK OUT"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

TRAIN_KEYS = ("train_runtime", "train_steps_per_second", "train_samples_per_second", "train_loss")
STEP_KEYS = ("loss", "grad_norm", "reward", "completions/mean_length", "step_time", "epoch", "step")
PROGRESS = re.compile(r"^progress .*$", re.M)


def read(path: Path):
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def jsonl(path: Path) -> list:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def training(run: Path) -> dict:
    history = read(run / "log_history.json") or []
    final = next((h for h in reversed(history) if "train_runtime" in h), {})
    steps = [{k: h[k] for k in STEP_KEYS if k in h} for h in history if "train_runtime" not in h]
    manifest = read(run / "manifest.json") or {}
    return {
        "finished": bool(manifest),
        "final": {k: final.get(k) for k in TRAIN_KEYS},
        "steps": steps[-6:],
        "manifest": {k: manifest.get(k) for k in ("adapter_path", "merged_path", "init", "family")}
        if manifest
        else None,
    }


def step_details(work: Path, name: str, entry: dict) -> None:
    """Add to one step's ``entry`` what its files say: peaks, log lines, training, metrics."""
    peaks = [read(p) for p in sorted((work / "peaks").glob(f"{name}.rank*.json"))]
    if peaks:
        entry["process"] = peaks
    log = work / f"{name}.log"
    if log.is_file():
        text = log.read_text("utf-8", errors="replace")
        entry["progress"] = PROGRESS.findall(text)[-3:]
        made = [line for line in text.splitlines() if line.startswith("MAKE_MODEL ")]
        if made:
            entry["model"] = json.loads(made[-1].removeprefix("MAKE_MODEL "))
        errors = [line for line in text.splitlines() if "Error" in line or "error:" in line]
        entry["error_lines"] = errors[-5:]
    run = work / "runs" / name
    if (run / "log_history.json").is_file() or (run / "manifest.json").is_file():
        entry["training"] = training(run)
    metrics = read(run / "metrics.json")
    if metrics:
        entry["metrics"] = {
            k: metrics.get(k) for k in ("accuracy", "f1", "parse_rate", "data", "generation")
        }
    bench = read(work / "bench" / f"{name}.json")
    if bench:
        entry["bench"] = bench


def bench_note(m: dict) -> str:
    """One benchmarked model's figures in a line: SFT step, GRPO rollout and update, generation."""
    sft = m.get("sft") or {}
    gens = "; ".join(
        f"{g.get('kind')} {g.get('sequences')}x{g.get('new_tokens')} "
        f"{g.get('tokens_per_s')} tok/s {g.get('peak_reserved_gib')} GiB"
        for g in m.get("generation", [])
        if "tokens_per_s" in g
    )
    grpo = m.get("grpo") or {}
    return (
        f"{m['model']} {m.get('quantization', '')[:9]}: SFT {sft.get('mean_step_s')} s "
        f"{sft.get('peak_reserved_gib')} GiB mfu {sft.get('mfu')}; GRPO "
        f"{grpo.get('sequences')}x{grpo.get('new_tokens')} rollout "
        f"{grpo.get('rollout_s')} s update {grpo.get('update_s')} s "
        f"{grpo.get('peak_reserved_gib')} GiB; {gens}; errors {m.get('errors')}"
    )


def summary_lines(results: dict) -> list[str]:
    """The summary table: a row per step (for a benchmark step, its last model's figures)."""
    lines = [
        "| step | rc | wall s | peak reserved GiB | s/step (trainer) | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, entry in results["steps"].items():
        peak = max(
            (p.get("peak_reserved_gib") or 0 for p in entry.get("process", [])), default=None
        )
        final = (entry.get("training") or {}).get("final", {})
        sps = final.get("train_steps_per_second")
        note = entry.get("skipped") or "; ".join(entry.get("error_lines", [])[-1:])[:120]
        if entry.get("bench"):
            for m in entry["bench"].get("models", []):
                note = bench_note(m)
        lines.append(
            f"| {name} | {entry.get('rc', '-')} | {entry.get('wall_s', '-')} | "
            f"{peak if peak is not None else '-'} | "
            f"{round(1 / sps, 3) if sps else '-'} | {note} |"
        )
    return lines


def main() -> None:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    results: dict = {"env": read(work / "env.json"), "steps": {}}
    for record in jsonl(work / "steps.jsonl"):
        results["steps"][record["step"]] = dict(record)
    for name, entry in results["steps"].items():
        step_details(work, name, entry)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str), "utf-8")
    lines = summary_lines(results)
    (out / "summary.md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
