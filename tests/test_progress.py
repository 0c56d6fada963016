"""The progress line a job log shows: done/total, seconds per unit, ETA, at a steady interval."""

import io

from rlcausality.progress import ProgressLog, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert format_duration(5) == "5s"
    assert format_duration(245) == "4m05s"
    assert format_duration(3 * 3600 + 4 * 60 + 5) == "3h04m05s"


def test_lines_come_at_the_interval_with_rate_and_eta() -> None:
    clock, out = Clock(), io.StringIO()
    log = ProgressLog("grpo", total=100, interval_s=60, stream=out, clock=clock)
    for _ in range(10):
        clock.now += 2.0
        log.update()
    assert out.getvalue() == ""  # 20 s < 60 s: nothing yet
    for _ in range(20):
        clock.now += 2.0
        log.update()
    assert log.lines == ["progress grpo: step 30/100 (30.0%) 2 s/step, elapsed 1m00s, ETA 2m20s"]
    assert log.close().startswith("progress grpo: step 30/100")


def test_a_resumed_job_counts_only_its_own_units_in_the_rate() -> None:
    clock = Clock()
    log = ProgressLog("sft", total=10, start=6, interval_s=0, stream=io.StringIO(), clock=clock)
    clock.now = 8.0
    log.update(done=8)
    assert log.lines[-1] == "progress sft: step 8/10 (80.0%) 4 s/step, elapsed 8s, ETA 8s"


def test_restart_leaves_the_loading_time_out_of_the_rate() -> None:
    clock = Clock()
    log = ProgressLog("evaluate", total=10, unit="item", start=2, stream=io.StringIO(), clock=clock)
    clock.now = 100.0  # a model loads
    log.restart()
    clock.now = 104.0
    log.update(2)
    assert log.rate() == 2.0  # 4 s for the 2 items generated since, not 104 s
    assert log.counted == 2  # a log that has counted keeps its clock (generate_transformers)
    assert log.line().startswith("progress evaluate: item 4/10 (40.0%) 2 s/item")


def test_signal_line_of_a_grpo_log() -> None:
    from rlcausality.progress import signal_line

    logs = {"reward": 0.625, "frac_reward_zero_std": 0.5, "rewards/format/mean": 1.0, "loss": 0}
    assert signal_line("grpo", 4, logs) == (
        "signal grpo: step 4: zero-variance groups 0.5, reward 0.625, format 1"
    )
    assert signal_line("sft", 4, {"loss": 1.0}) is None
