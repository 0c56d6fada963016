"""Where a GRPO step's time and memory go on the CPU: rollout generation, reward scoring, the
loss's forward (log-probabilities), its backward, and the optimizer update; and the peak RSS.

This runs the GRPO job's trainer (``rlcausality.training.grpo.run``: the model's settings from
the config files, only ``max_steps``, ``save_steps``, ``logging_steps`` and the output directory
changed; ``--set grpo.KEY=VALUE`` changes a GRPO setting, ``--trainer KEY=VALUE`` a GRPOConfig
argument the settings do not have) and times TRL's own methods:

- ``generate``: ``GRPOTrainer._generate`` (the prompts' chat template, ``model.generate``,
  decoding);
- ``rewards``: ``_calculate_rewards``;
- ``rollout, rest``: the rest of ``_generate_and_score_completions`` (advantages, masks, and
  the log-probabilities computed without gradient: old or reference policy, when configured);
- ``loss forward``: ``compute_loss`` (the policy's log-probabilities, with gradient, and the loss);
- ``backward``: the rest of ``training_step`` (``loss.backward``);
- ``optimizer, rest``: the rest of the step (clipping, ``optimizer.step``, the schedule,
  callbacks, logging).

For each phase it prints the median seconds over the steps after the first (allocation and the
first generation's set-up), its share of the step, and the largest resident set size (RSS,
sampled every 10 ms) seen in it, with the RSS at the phase's start. ``saved for backward`` is the
size of the tensors autograd keeps from one forward of the loss for its backward (the largest
micro-batch of a step; storages counted once, the model's weights left out), also grouped by
their last dimension (576: SmolLM2's hidden size, 1536: its MLP width, 64: a head, ...). Run
from a workflow directory whose GRPO inputs exist (the demo's DAG up to SFT and the GRPO train
rows)::

    OMP_NUM_THREADS=1 python -m benchmarks.grpo_step --model smollm2-135m \
        --configfile config.yaml profiles/demo/demo.yaml --steps 6 --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import resource
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from benchmarks.grpo_probes import GIB, Memory, Recorder, StepRecord, instrumented
from rlcausality import launch
from rlcausality.settings import config as rlconfig
from rlcausality.settings import validation as rlvalidation
from rlcausality.training import grpo

# what each phase's own time is called in the report, in the order printed
REPORTED = (
    "generate",
    "rewards",
    "rollout, rest",
    "loss forward",
    "backward",
    "optimizer, rest",
)


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, each value read as YAML (``true``, ``4``, ``[1, 2]``)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"{pair!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


@contextlib.contextmanager
def trainer_overrides(extra: dict[str, Any]) -> Iterator[None]:
    """GRPOConfig arguments the settings do not have, set on the job's own GRPOConfig."""
    original = grpo.grpo_config

    def config(*args: Any, **kwargs: Any) -> Any:
        made = original(*args, **kwargs)
        return dataclasses.replace(made, **extra) if extra else made

    grpo.grpo_config = config  # type: ignore[assignment]
    try:
        yield
    finally:
        grpo.grpo_config = original


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def saved_by_width(step: StepRecord, shown: int = 6) -> dict[str, float]:
    """The largest groups of saved tensors by their last dimension (hidden size, MLP width,
    vocabulary, sequence length, ...), GiB; the rest summed."""
    ordered = sorted(step.saved_by_width.items(), key=lambda item: -item[1])
    out = {str(width): round(size / GIB, 2) for width, size in ordered[:shown]}
    out["rest"] = round(sum(size for _, size in ordered[shown:]) / GIB, 2)
    return out


def report(steps: list[StepRecord], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-phase medians (steps after the first), shares, RSS figures, and completions."""
    kept = steps[1:] or steps
    own = [step.own() for step in kept]
    seconds = {phase: median([o[phase] for o in own]) for phase in REPORTED}
    total = median([step.seconds.get("optimizer step", 0.0) for step in kept])
    owner = {
        "generate": "generate",
        "rewards": "rewards",
        "rollout, rest": "rollout",
        "loss forward": "loss forward",
        "backward": "step",
        "optimizer, rest": "optimizer step",
    }
    logged = [entry for entry in history if "completions/mean_length" in entry]
    return {
        "step_s": total,
        "all_steps_s": [round(step.seconds.get("optimizer step", 0.0), 2) for step in steps],
        "phases": {
            phase: {
                "s": round(seconds[phase], 2),
                "share": round(seconds[phase] / total, 3) if total else None,
                "rss_start_gib": round(
                    max(s.rss_start.get(owner[phase], 0) for s in steps) / GIB, 2
                ),
                "rss_peak_gib": round(max(s.rss_peak.get(owner[phase], 0) for s in steps) / GIB, 2),
            }
            for phase in REPORTED
        },
        "saved_for_backward_gib": round(max(s.saved_bytes for s in steps) / GIB, 2),
        "saved_by_last_dimension_gib": saved_by_width(max(steps, key=lambda s: s.saved_bytes)),
        "rss_before_first_step_gib": round(
            steps[0].rss_start.get("optimizer step", 0) / GIB if steps else 0.0, 2
        ),
        "rss_after_step_gib": [round(s.rss_start.get("after step", 0) / GIB, 2) for s in steps],
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "completion_mean_length": [e.get("completions/mean_length") for e in logged],
        "completion_clipped_ratio": [e.get("completions/clipped_ratio") for e in logged],
        "reward": [e.get("reward") for e in logged],
        "loss": [e.get("loss") for e in logged],
    }


def print_report(result: dict[str, Any]) -> None:
    print(f"\nGRPO step: median {result['step_s']:.2f} s over the steps after the first")
    print(f"  all steps, s: {result['all_steps_s']}")
    print(f"  {'phase':16s} {'s':>7s} {'share':>6s} {'RSS start':>10s} {'RSS peak':>9s}")
    for phase, row in result["phases"].items():
        share = f"{row['share']:.0%}" if row["share"] is not None else "-"
        print(
            f"  {phase:16s} {row['s']:7.2f} {share:>6s} {row['rss_start_gib']:8.2f} G"
            f" {row['rss_peak_gib']:7.2f} G"
        )
    print(f"  saved for backward (largest step): {result['saved_for_backward_gib']:.2f} GiB")
    print(f"  saved for backward by last dimension, GiB: {result['saved_by_last_dimension_gib']}")
    print(f"  RSS before the first step: {result['rss_before_first_step_gib']:.2f} GiB")
    print(f"  RSS after each step, GiB: {result['rss_after_step_gib']}")
    print(f"  peak RSS of the process: {result['peak_rss_gib']:.2f} GiB")
    print(f"  completion mean length: {result['completion_mean_length']}")
    print(f"  clipped ratio: {result['completion_clipped_ratio']}")
    print(f"  reward: {result['reward']}; loss: {result['loss']}", flush=True)


def benchmark_settings(
    configfiles: list[str], model: str, assignments: list[str], steps: int
) -> Any:
    """The model's validated settings with ``grpo.KEY=VALUE`` changes, ``steps`` steps, a
    log line each step and no checkpoint."""
    config = rlconfig.read_config_files(configfiles)
    config = rlvalidation.validate_config(config, " + ".join(configfiles))
    settings = rlconfig.resolved_settings(config, model)
    changes = {key.removeprefix("grpo."): v for key, v in parse_assignments(assignments).items()}
    for key, value in changes.items():  # a block (lora) from a mapping: its other keys kept
        current = getattr(settings.grpo, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = dataclasses.replace(current, **value)
    stage = dataclasses.replace(
        settings.grpo, max_steps=steps, save_steps=10 * steps, logging_steps=1, **changes
    )
    return dataclasses.replace(settings, grpo=stage)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", default="results/grpo_step")
    parser.add_argument("--set", nargs="*", default=[], help="grpo.KEY=VALUE: a GRPO setting")
    parser.add_argument("--trainer", nargs="*", default=[], help="KEY=VALUE: a GRPOConfig arg")
    parser.add_argument("--json", default=None, help="write the figures here too")
    args = parser.parse_args(argv)
    launch.configure_threads(args.threads)
    settings = benchmark_settings(args.configfile, args.model, args.set, args.steps)
    stage = settings.grpo
    train = f"results/data/{args.model}/grpo/train.jsonl"
    init = f"results/models/{args.model}/sft/manifest.json" if stage.init == "sft" else None
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    memory = Memory()
    trainers: list[Any] = []

    def weights() -> set[int]:
        model = trainers[0].model if trainers else None
        if model is None:
            return set()
        return {p.untyped_storage().data_ptr() for p in model.parameters()}

    recorder = Recorder(memory, weights)
    from trl import GRPOTrainer

    init_original = GRPOTrainer.__init__

    @functools.wraps(init_original)
    def remember(self: Any, *a: Any, **kw: Any) -> None:
        init_original(self, *a, **kw)
        trainers.append(self)

    GRPOTrainer.__init__ = remember  # type: ignore[method-assign]
    try:
        with instrumented(recorder), trainer_overrides(parse_assignments(args.trainer)):
            manifest = grpo.run(settings, train, str(work), str(work / "manifest.json"), init)
    finally:
        GRPOTrainer.__init__ = init_original  # type: ignore[method-assign]
        memory.stop()
    history = json.loads(Path((manifest or {})["log_history_path"]).read_text())
    result = report(recorder.steps, history)
    result["settings"] = {
        "grpo": parse_assignments(args.set),
        "trainer": parse_assignments(args.trainer),
    }
    result["threads"] = args.threads
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
