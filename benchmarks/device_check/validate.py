"""The device check's own training and evaluation steps beside the fitted plan: figures the
fit did not use (real prompts, DeepSpeed, the SFT adapter continued), so they test it.

    python benchmarks/device_check/validate.py docs/gpu-runs/h200-2026-12-04/check-results.json

Measured: the steady-state seconds per step (per batch for evaluation) read from each step's
progress lines in the check's log (the first step, which warms up, left out where there were
more); planned: ``rlcausality.plan.timing`` on the step's settings (``settings/``) and the
median lengths of its data (``data/*.stats.json``), on the GPU that was measured.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from rlcausality import launch
from rlcausality.models.families import get_family
from rlcausality.plan import arch as archs
from rlcausality.plan import bench, timing
from rlcausality.plan import jobs as rlplan
from rlcausality.plan import memory as mem

KIT = Path(__file__).parent
QWEN = "Qwen/Qwen2.5-1.5B-Instruct"  # the check's random model has this architecture
PROGRESS = re.compile(r"progress (\w+): (?:step|item) (\d+)/(\d+) .*?elapsed (?:(\d+)m)?(\d+)s")


def median(fmt_split: str) -> int:
    stats = json.loads((KIT / "data" / f"{fmt_split}.stats.json").read_text("utf-8"))
    return int(stats["length_out"]["p50"])


def settings(name: str) -> dict[str, Any]:
    return json.loads((KIT / "settings" / f"{name}.json").read_text("utf-8"))


def setup(name: str, section: str) -> tuple[mem.Setup, Any, int]:
    """The step's plan setup, its LoRA targets and rank."""
    s = settings(name)
    facts = archs.from_config(archs.shipped()[QWEN], QWEN)
    stage = s[section]
    quant = s["model"]["quantization"]
    deepspeed = launch.deepspeed_stage(stage.get("deepspeed"), quant != "none")
    lora = stage["lora"]
    if section == "grpo" and stage["init"] == "sft":  # the SFT adapter is continued
        lora = settings("sft_z2")["sft"]["lora"]
    targets = lora["target_modules"] or list(get_family(s["model"]["family"]).lora_targets)
    return mem.Setup(facts, quant, 2, 1, deepspeed), targets, int(lora["r"])


def planned(gpu: timing.Gpu) -> dict[str, float]:
    """Seconds per step (per batch of 16 for evaluation) of each check step, by the plan."""
    out = {}
    for name in ("sft_z2", "sft_q4_z2"):
        st, targets, rank = setup(name, "sft")
        stage = settings(name)["sft"]
        seq, mbs = median("trace_train"), stage["gradient_accumulation_steps"]
        flops = timing.train_flops(st, mbs * seq, seq, st.arch.lora_parameters(targets, rank), True)
        out[name] = timing.train_seconds(st, gpu, flops, mbs)
    for name in ("grpo", "grpo_q4_z2"):
        st, targets, rank = setup(name, "grpo")
        stage = settings(name)["grpo"]
        prompt, new = median("grpo_train"), stage["max_completion_length"]
        rollouts = stage["per_device_train_batch_size"] * stage["gradient_accumulation_steps"]
        lora = st.arch.lora_parameters(targets, rank)
        gen = timing.generation_seconds(st, gpu, rollouts, prompt, new, lora, rollout=True)
        flops = timing.train_flops(st, rollouts * (prompt + new), prompt + new, lora, True)
        out[name] = gen + timing.train_seconds(st, gpu, flops, rollouts)
    ev = settings("eval")["evaluate"]
    st = mem.Setup(archs.from_config(archs.shipped()[QWEN], QWEN), "none", 2, kbit_prepared=False)
    prompt, new = median("grpo_test"), ev["max_new_tokens"]["grpo"]
    out["eval"] = timing.generation_seconds(st, gpu, ev["batch_size"], prompt, new, 0)  # merged
    return out


def measured(log: str) -> dict[str, float]:
    """Steady-state seconds per step from each step's progress lines (the first step left out
    when a later one was logged); evaluation: per batch of 16 items."""
    out: dict[str, float] = {}
    sections = re.split(r"^--- (\w+) rc=", log, flags=re.M)
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        first: dict[int, int] = {}  # step -> seconds elapsed when it was first logged
        for m in PROGRESS.finditer(body):
            first.setdefault(int(m[2]), 60 * int(m[4] or 0) + int(m[5]))
        points = sorted((n, t) for n, t in first.items() if n > 0)
        if len(points) >= 2:
            (n0, t0), (n1, t1) = points[0], points[-1]
            per = (t1 - t0) / (n1 - n0)
        elif points:
            per = points[0][1] / points[0][0]
        else:
            continue
        out[name] = per * (16 if name == "eval" else 1)
    return out


def main() -> int:
    results = json.loads(Path(sys.argv[1]).read_text("utf-8"))
    log = Path(sys.argv[1]).with_name("check-log.txt").read_text("utf-8")
    env = results["env"]["gpu"]
    gpu = rlplan.gpu(bench.match_gpu(env["name"], env["memory_gib"]))
    plan_s, got = planned(gpu), measured(log)
    print("| check step | measured s | plan s | measured / plan |")
    print("|---|---:|---:|---:|")
    for name, seconds in plan_s.items():
        if name in got:
            print(f"| {name} | {got[name]:.2f} | {seconds:.2f} | {got[name] / seconds:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
