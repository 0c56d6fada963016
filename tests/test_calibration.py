"""The run plan fitted to the H200 measurements, and calibrated by a cluster's own benchmark
(rlcausality.plan.calibration): the file's ratios reach every job's time, and the dry-run's line
says which times the plan used."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.gpu_bench import fit
from rlcausality.plan import calibration
from rlcausality.plan import jobs as plan
from rlcausality.settings.validation import validate_config

REPO = Path(__file__).resolve().parents[1]
H200 = REPO / "docs" / "gpu-runs" / "h200-2026-12-04"
REAL = ["qwen2.5-1.5b", "phi-3.5-mini", "deepseek-r1-7b"]


def bench_results() -> list[dict[str, Any]]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(H200.glob("gpu_bench-*.json"))]


def merged(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One gpu_bench file of every model, as rule gpu_bench writes it."""
    out = copy.deepcopy(results[0])
    out["models"] = [m for r in results for m in r["models"]]
    return out


def config(gpu: str = "H200", path: str | None = None) -> dict[str, Any]:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text("utf-8"))
    cfg["run"] = REAL
    cfg["plan"] = {"gpu": gpu, "calibration": path}
    return validate_config(cfg)


def test_every_h200_figure_is_within_25_percent_of_the_fitted_plan() -> None:
    results = bench_results()
    assert sorted(m["model"] for r in results for m in r["models"]) == sorted(REAL)
    seen = 0
    for result in results:
        for entry in result["models"]:
            ratios = calibration.model_ratios(entry, result["options"], "H200")
            assert set(ratios) == {"sft", "rollout", "update", "eval"}, entry["model"]
            for kind, ratio in ratios.items():
                assert 0.75 <= ratio <= 1.25, (entry["model"], kind, ratio)
                seen += 1
    assert seen == 12
    for row in fit.peaks(results)[2:]:  # memory: measured reserved / planned
        assert 0.85 <= float(row.split("|")[-2]) <= 1.15, row


def test_the_fit_reproduces_the_constants() -> None:
    fitted = fit.fit(bench_results())
    for key in ("LAYER_LAUNCH_S", "QUANT_LAUNCH_S", "QUANT_ROLLOUT_LAUNCH_S", "MICROBATCH_S"):
        assert fitted[key] == pytest.approx(getattr(plan.timing, key), rel=0.1), key


def by_name(jobs: list[plan.JobPlan]) -> dict[str, plan.JobPlan]:
    return {job.name: job for job in jobs}


def test_a_calibration_file_scales_each_part_of_each_job(tmp_path: Path) -> None:
    data = merged(bench_results())
    for entry in data["models"]:  # this cluster: rollouts twice as slow as the H200's
        if entry["model"] == "qwen2.5-1.5b":
            entry["grpo"]["rollout_s"] *= 2
    path = tmp_path / "gpu_bench.json"
    path.write_text(json.dumps(data), "utf-8")
    cal = calibration.load(path)
    assert cal is not None and not cal.problems and cal.gpu == "H200"
    qwen = cal.models["qwen2.5-1.5b"]
    base = by_name(plan.plan_jobs(config()))
    calibrated = by_name(plan.plan_jobs(config(), cal))
    grpo, grpo_cal = base["grpo qwen2.5-1.5b"], calibrated["grpo qwen2.5-1.5b"]
    assert grpo_cal.seconds_per_step_source == "plan, calibrated (gpu_bench)"
    rollout, update = (
        float(x) for x in grpo.notes[-1].split()[1:6:4]
    )  # "rollout R s + update U s"
    expected = rollout * qwen.of("rollout") + update * qwen.of("update")
    assert grpo_cal.seconds_per_step == pytest.approx(expected, rel=0.02)
    assert qwen.of("rollout") == pytest.approx(2 * 5.945 / 5.950, rel=0.01)
    sft, sft_cal = base["sft qwen2.5-1.5b"], calibrated["sft qwen2.5-1.5b"]
    assert sft_cal.seconds_per_step == pytest.approx(sft.seconds_per_step * qwen.of("sft"))
    line = calibration.describe(cal, ["H200"])
    assert line.startswith(f"PLAN: times calibrated by {path} (H200, 2026-12-04)")
    assert "qwen2.5-1.5b (×1.1 SFT, ×2 rollout" in line
    # priced on another GPU than the one measured: the plan's constants, and the line says why
    a100 = by_name(plan.plan_jobs(config("A100-80GB"), cal))["grpo qwen2.5-1.5b"]
    assert a100.seconds_per_step_source == "plan"
    assert "measured H200, the plan prices jobs on A100-80GB" in calibration.describe(
        cal, ["A100-80GB"]
    )


def test_files_that_cannot_calibrate_say_why(tmp_path: Path) -> None:
    assert calibration.load(tmp_path / "absent.json") is None
    assert "measures them on your GPU" in calibration.describe(None, ["A100-80GB"])
    cut = merged(bench_results())
    cut["complete"] = False
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(cut), "utf-8")
    cal = calibration.load(path)
    assert cal is not None and not cal.models
    assert "did not finish" in calibration.describe(cal, ["H200"])
    (tmp_path / "bad.json").write_text("{", "utf-8")
    assert "unreadable" in calibration.describe(calibration.load(tmp_path / "bad.json"), ["H200"])
