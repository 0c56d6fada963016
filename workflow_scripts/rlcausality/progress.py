"""Progress a person can read in a job log: done/total, seconds per unit, elapsed and ETA.

A 12-hour job must say where it is without a progress bar (SLURM logs are files, not
terminals). ``ProgressLog`` prints one line at a steady interval (and at the end)::

    progress grpo: step 120/2000 (6.0%) 4.52 s/step, elapsed 9m02s, ETA 2h21m40s

GRPO's log entries add a ``signal`` line: the share of groups with zero reward variance and
the rewards (``signal_line``). Training reports through ``rlcausality.training.stage``'s callback,
evaluation through the generation loop; both use this one class.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    """``3h04m05s``, ``4m05s`` or ``5s``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressLog:
    """Counts units of work and prints a progress line at most every ``interval_s`` seconds.

    ``start`` counts units already done before this process began (a resumed job): they are
    shown in done/total but left out of the rate, which measures this process alone.
    """

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "step",
        interval_s: float = 60.0,
        start: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = max(0, int(total))
        self.unit = unit
        self.interval_s = interval_s
        self.done = int(start)
        self._start_done = int(start)
        self._stream = stream
        self._clock = clock
        self._began = clock()
        self._last_print = self._began
        self.lines: list[str] = []

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def rate(self) -> float | None:
        """Seconds per unit in this process, or None before the first unit."""
        counted = self.done - self._start_done
        if counted <= 0:
            return None
        return (self._clock() - self._began) / counted

    def line(self) -> str:
        elapsed = self._clock() - self._began
        share = f" ({100 * self.done / self.total:.1f}%)" if self.total else ""
        text = f"progress {self.label}: {self.unit} {self.done}/{self.total}{share}"
        rate = self.rate()
        if rate is None:
            return f"{text}, elapsed {format_duration(elapsed)}"
        remaining = max(0, self.total - self.done) * rate
        return (
            f"{text} {rate:.3g} s/{self.unit}, elapsed {format_duration(elapsed)}, "
            f"ETA {format_duration(remaining)}"
        )

    def emit(self) -> str:
        text = self.line()
        self.lines.append(text)
        print(text, file=self.stream, flush=True)
        self._last_print = self._clock()
        return text

    @property
    def counted(self) -> int:
        """Units counted since the clock started."""
        return self.done - self._start_done

    def restart(self) -> None:
        """Start the clock again, keeping the counts (e.g. once a model has loaded)."""
        self._began = self._last_print = self._clock()
        self._start_done = self.done

    def update(self, n: int = 1, done: int | None = None) -> None:
        """Count ``n`` more units (or set the count to ``done``); print when the interval passed."""
        self.done = int(done) if done is not None else self.done + n
        if self._clock() - self._last_print >= self.interval_s:
            self.emit()

    def close(self) -> str:
        """The final line (always printed)."""
        return self.emit()


SIGNAL_KEYS = (
    ("frac_reward_zero_std", "zero-variance groups"),
    ("reward", "reward"),
    ("rewards/correctness/mean", "correctness"),
    ("rewards/format/mean", "format"),
)


def signal_line(label: str, step: int, logs: dict[str, Any]) -> str | None:
    """``signal grpo: step 4: zero-variance groups 0.5, reward 0.62, ...`` for a GRPO log entry
    (the share of groups whose completions all earned the same reward: no advantage, no
    gradient); None for a log without them (SFT)."""
    if "frac_reward_zero_std" not in logs:
        return None
    parts = [f"{name} {float(logs[key]):.3g}" for key, name in SIGNAL_KEYS if key in logs]
    return f"signal {label}: step {step}: " + ", ".join(parts)


def trainer_callback(label: str, interval_s: float = 60.0) -> Any:
    """A transformers ``TrainerCallback`` printing progress lines on the main process."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        log: ProgressLog | None = None

        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.is_world_process_zero:
                self.log = ProgressLog(
                    label, state.max_steps, "step", interval_s, start=state.global_step
                )
                self.log.emit()

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if self.log is not None:
                self.log.update(done=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            line = signal_line(label, state.global_step, logs or {})
            if line is not None and state.is_world_process_zero:
                print(line, file=sys.stderr, flush=True)

        def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if self.log is not None:
                self.log.update(done=state.global_step)
                self.log.close()

    return ProgressCallback()
