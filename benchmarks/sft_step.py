"""Seconds per SFT step: TRL's fused LM head on its full path against its compact one, or fp32
against bf16 autocast.

TRL projects every position of the padded batch through the LM head on a CPU and only the
labelled ones on CUDA (``rlcausality.training.lm_head``); the SFT job takes the compact path on a
CPU too. This runs the SFT job's trainer (``rlcausality.training.sft.run``: the model's settings
from config.yaml, only ``max_steps``, ``save_steps`` and the output directory changed) for
``--steps`` steps on each path, the same batches in the same order, and prints the median step
time of each, their ratio, and the first logged loss of each (they agree to float rounding).
The first step of a run (allocation) is left out of the median. ``--compare dtype`` runs the
compact path twice instead: with ``model.dtype: float32`` and with ``bfloat16`` (on a CPU, fp32
weights under bf16 autocast: ``models.loading.choose_precision``); the first losses then differ
by bf16's rounding. Run from a workflow directory whose formatted data and base model exist
(e.g. after the demo)::

    OMP_NUM_THREADS=2 python benchmarks/sft_step.py --model smollm2-135m \
        --configfile config.yaml profiles/demo/demo.yaml --steps 9 --threads 2 [--compare dtype]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlcausality import launch
from rlcausality.settings import config as rlconfig
from rlcausality.settings import validation as rlvalidation
from rlcausality.stages import train_format
from rlcausality.training import sft
from rlcausality.training import stage as training


@contextlib.contextmanager
def full_head() -> Iterator[None]:
    """The SFT job with TRL's own choice on a CPU: every position through the head."""
    original = training.label_positions_only
    training.label_positions_only = contextlib.nullcontext  # type: ignore[assignment]
    try:
        yield
    finally:
        training.label_positions_only = original


def step_times(settings: Any, train: str, work: Path) -> tuple[list[float], float | None]:
    """Per-step seconds and the first logged loss of one short SFT run."""
    from transformers import TrainerCallback

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            times.append(time.perf_counter() - self.start)

    shutil.rmtree(work, ignore_errors=True)
    original = sft.trainer_callback  # the progress lines give way to the clock here
    sft.trainer_callback = lambda *a: Clock()  # type: ignore[assignment]
    try:
        manifest = sft.run(settings, train, str(work), str(work / "manifest.json"))
    finally:
        sft.trainer_callback = original
    history = (manifest or {}).get("log_history_path")
    loss = None
    if history:
        logged = [e for e in json.loads(Path(history).read_text()) if "loss" in e]
        loss = float(logged[0]["loss"]) if logged else None
    shutil.rmtree(work, ignore_errors=True)
    return times, loss


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"])
    parser.add_argument("--steps", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="results/sft_step")
    parser.add_argument("--compare", choices=("head", "dtype"), default="head")
    args = parser.parse_args(argv)
    launch.configure_threads(args.threads)
    config = rlconfig.read_config_files(args.configfile)
    config = rlvalidation.validate_config(config, " + ".join(args.configfile))
    settings = rlconfig.resolved_settings(config, args.model)
    stage = dataclasses.replace(
        settings.sft, max_steps=args.steps, save_steps=10 * args.steps, logging_steps=1
    )
    settings = dataclasses.replace(settings, sft=stage)
    fmt = train_format("sft", settings.format.sft_target)
    train = f"results/data/{args.model}/{fmt}/train.jsonl"
    fp32, bf16 = (dataclasses.replace(settings.model, dtype=d) for d in ("float32", "bfloat16"))
    variants = {
        "head": [("full head", settings, full_head), ("compact head", settings, None)],
        "dtype": [
            ("fp32", dataclasses.replace(settings, model=fp32), None),
            ("bf16 autocast", dataclasses.replace(settings, model=bf16), None),
        ],
    }[args.compare]
    medians = {}
    for name, variant, context in variants:
        with (context or contextlib.nullcontext)():
            times, loss = step_times(variant, train, Path(args.work) / name.replace(" ", "_"))
        medians[name] = statistics.median(times[1:] or times)
        print(
            f"{name:13s}: median {medians[name]:.2f} s/step over {len(times) - 1} steps "
            f"(all: {', '.join(f'{t:.2f}' for t in times)}); first loss {loss}",
            flush=True,
        )
    (first, _, _), (second, _, _) = variants
    print(f"{second} / {first}: {medians[second] / medians[first]:.2f}")


if __name__ == "__main__":
    main()
