"""The probes of ``benchmarks.grpo_step``: TRL's GRPOTrainer methods timed phase by phase,
the resident set size sampled by a thread, and the tensors one loss forward saves for its
backward; one ``StepRecord`` per optimizer step."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil

from rlcausality.training import grpo

# (phase, TRL method) pairs timed; nested calls are taken out of their caller's own time
TIMED = (
    ("step", "training_step"),
    ("rollout", "_generate_and_score_completions"),
    ("generate", "_generate"),
    ("rewards", "_calculate_rewards"),
    ("loss forward", "compute_loss"),
    ("log-probs", "_get_per_token_logps_and_entropies"),
)
GIB = 1024**3


class Memory:
    """RSS sampled by a thread: the largest value seen while each phase is open."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.process = psutil.Process()
        self.interval_s = interval_s
        self.open: dict[str, int] = {}  # phase -> largest RSS while it is open
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _sample(self) -> None:
        while not self.stopped.wait(self.interval_s):
            rss = self.rss()
            with self.lock:
                for phase, peak in self.open.items():
                    self.open[phase] = max(peak, rss)

    def enter(self, phase: str) -> int:
        rss = self.rss()
        with self.lock:
            self.open[phase] = rss
        return rss

    def leave(self, phase: str) -> int:
        rss = self.rss()
        with self.lock:
            return max(self.open.pop(phase, rss), rss)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


@dataclasses.dataclass
class StepRecord:
    """One optimizer step: each phase's inclusive seconds, RSS at its start and its peak."""

    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    rss_start: dict[str, int] = dataclasses.field(default_factory=dict)
    rss_peak: dict[str, int] = dataclasses.field(default_factory=dict)
    saved_bytes: int = 0  # the largest loss forward's (one micro-batch's)
    saved_by_width: dict[int, int] = dataclasses.field(default_factory=dict)  # last dim -> bytes

    def add(self, phase: str, seconds: float, start: int, peak: int) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        self.rss_start.setdefault(phase, start)
        self.rss_peak[phase] = max(self.rss_peak.get(phase, 0), peak)

    def own(self) -> dict[str, float]:
        """Each reported phase's own seconds (nested phases taken out)."""
        s = self.seconds.get
        return {
            "generate": s("generate", 0.0),
            "rewards": s("rewards", 0.0),
            "rollout, rest": s("rollout", 0.0) - s("generate", 0.0) - s("rewards", 0.0),
            "loss forward": s("loss forward", 0.0),
            "backward": s("step", 0.0) - s("rollout", 0.0) - s("loss forward", 0.0),
            "optimizer, rest": s("optimizer step", 0.0) - s("step", 0.0),
        }


class Recorder:
    """Wraps TRL's methods and the trainer's steps; one ``StepRecord`` per optimizer step."""

    def __init__(self, memory: Memory, weights: Callable[[], set[int]]) -> None:
        self.memory = memory
        self.weights = weights
        self.steps: list[StepRecord] = []
        self.current = StepRecord()

    def timed(self, phase: str, method: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        @functools.wraps(method)
        def wrapper(trainer: Any, *args: Any, **kwargs: Any) -> Any:
            import torch

            name = phase
            if phase == "log-probs" and torch.is_grad_enabled():
                name = "log-probs, grad"
            start = recorder.memory.enter(name)
            began = time.perf_counter()
            saving = recorder.saving() if phase == "loss forward" else contextlib.nullcontext()
            try:
                with saving:
                    return method(trainer, *args, **kwargs)
            finally:
                seconds = time.perf_counter() - began
                recorder.current.add(name, seconds, start, recorder.memory.leave(name))
                if name == "log-probs, grad":  # counted in "log-probs" as well
                    recorder.current.add("log-probs", seconds, start, start)

        return wrapper

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Count the bytes of the tensors autograd saves for the backward (not the weights)."""
        import torch

        weights = self.weights()
        seen: dict[int, tuple[int, int]] = {}  # storage -> (bytes, last dimension)

        def pack(tensor: Any) -> Any:
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in weights:
                width = int(tensor.shape[-1]) if tensor.dim() else 0
                seen[storage.data_ptr()] = (storage.nbytes(), width)
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            yield
        saved = sum(size for size, _ in seen.values())
        if saved > self.current.saved_bytes:  # the largest forward (micro-batch) of the step
            self.current.saved_bytes = saved
            self.current.saved_by_width = {}
            for size, width in seen.values():
                by_width = self.current.saved_by_width
                by_width[width] = by_width.get(width, 0) + size

    def callback(self) -> Any:
        from transformers import TrainerCallback

        recorder = self

        class Clock(TrainerCallback):
            began = 0.0
            start = 0

            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                recorder.current = StepRecord()
                self.start = recorder.memory.enter("optimizer step")
                self.began = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                seconds = time.perf_counter() - self.began
                peak = recorder.memory.leave("optimizer step")
                recorder.current.add("optimizer step", seconds, self.start, peak)
                recorder.current.rss_start["after step"] = recorder.memory.rss()
                recorder.steps.append(recorder.current)

        return Clock()


@contextlib.contextmanager
def instrumented(recorder: Recorder) -> Iterator[None]:
    """TRL's GRPOTrainer methods timed, and the job's progress callback replaced by the clock."""
    from trl import GRPOTrainer

    originals = {method: getattr(GRPOTrainer, method) for _, method in TIMED}
    callback = grpo.trainer_callback
    for phase, method in TIMED:
        setattr(GRPOTrainer, method, recorder.timed(phase, originals[method]))
    grpo.trainer_callback = lambda *a: recorder.callback()  # type: ignore[assignment]
    try:
        yield
    finally:
        for method, original in originals.items():
            setattr(GRPOTrainer, method, original)
        grpo.trainer_callback = callback
