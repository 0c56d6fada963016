"""The run plan: steps, GPU memory and time of every SFT, GRPO and evaluation job, checked
against what the job asks of SLURM (``resources``: gpus, runtime, mem_mb) on the partition's
GPU (``plan.gpu`` in config.yaml, per rule ``plan.rules``).

Pure arithmetic on the resolved settings, the model's architecture (``plan.arch``) and the GPU
table (``gpus.yaml``), so it runs at parse time: every dry-run prints one ``TRAIN`` line per
training job, one ``PLAN:`` line per job that does not fit and a summary; ``plan: {strict:
true}`` makes a job that does not fit a parse error. ``snakemake results/plan.md`` writes the
table (``plan.render``). Step counts are ``rlcausality.training.budget``'s, the trainers'
arithmetic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import yaml

from rlcausality import launch
from rlcausality.plan import arch as archs
from rlcausality.plan import memory as mem
from rlcausality.plan import stages, timing
from rlcausality.plan.timing import Gpu
from rlcausality.settings.blocks import Resource, Settings
from rlcausality.settings.config import resolved_settings
from rlcausality.training import budget

GPU_RULES = ("sft", "grpo", "evaluate")


@functools.cache
def gpu_table() -> dict[str, dict[str, Any]]:
    text = resources.files("rlcausality.plan").joinpath("gpus.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def gpu(name: str) -> Gpu:
    table = gpu_table()
    if name not in table:
        raise KeyError(f"unknown GPU {name!r}; known: {', '.join(table)}")
    return Gpu.from_entry(name, table[name])


def rule_gpu(config: dict[str, Any], rule: str) -> Gpu:
    plan = config.get("plan") or {}
    return gpu((plan.get("rules") or {}).get(rule) or plan.get("gpu") or "A100-80GB")


@dataclass
class JobPlan:
    rule: str
    model: str
    stage: str
    gpus: int
    gpu: str
    steps: int | None
    effective_batch: int | None
    est_gpu_mem_gb: float | None
    mem_breakdown_gb: dict[str, float]
    est_hours: float | None
    runtime_h: float
    fits: bool
    reasons: list[str]
    test_set: str | None = None
    launcher: str = ""
    rows: int | None = None
    tokens_per_step: int | None = None
    seconds_per_step: float | None = None
    seconds_per_step_source: str | None = None
    activations_gb: dict[str, float] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)
    host_mem_gb: float | None = None
    mem_mb: int | None = None
    gpu_memory_gb: float | None = None
    architecture: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        where = f" {self.stage} {self.test_set}" if self.rule == "evaluate" else ""
        return f"{self.rule} {self.model}{where}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def host_bytes(setup: mem.Setup, estimate: stages.Estimate, merge: bool) -> int:
    """Host memory of the job: per process the interpreter and libraries, plus an unquantised
    base loaded on the CPU before it moves to the GPU; a merge loads it once more. On the CPU
    the process holds everything the breakdown counts."""
    if setup.compute_bytes != 2:
        return mem.PYTHON_HOST_BYTES + sum(estimate.parts.values())
    weights = 0 if setup.quantized else setup.arch.parameters * 2
    return setup.processes * (mem.PYTHON_HOST_BYTES + weights) + (2 * weights if merge else 0)


def effective_batch(settings: Settings, rule: str, processes: int) -> int:
    stage = settings.of(rule)
    return stage.per_device_train_batch_size * stage.gradient_accumulation_steps * processes


def new_job_plan(
    rule: str, model: str, stage: str, res: Resource, device: Gpu | None, **fields: Any
) -> JobPlan:
    """A job's plan before any estimate: what it asks SLURM for (``res``), on ``device``."""
    return JobPlan(
        rule=rule,
        model=model,
        stage=stage,
        gpus=res.gpus,
        gpu=device.name if device else "CPU",
        est_gpu_mem_gb=None,
        mem_breakdown_gb={},
        est_hours=None,
        runtime_h=res.runtime / 60,
        fits=True,
        reasons=[],
        mem_mb=res.mem_mb,
        **fields,
    )


def factors_for(calibration: Any, model: str, device: Gpu | None) -> Any:
    """The calibration's ratios for ``model`` on ``device`` (plan.calibration), or None."""
    if calibration is None or device is None:
        return None
    return calibration.factors(model, device.name)


def training_job(
    config: dict[str, Any], settings: Settings, rule: str, calibration: Any = None
) -> JobPlan:
    job = budget.job_budget(config, settings, rule)
    res = settings.resources.of(rule)
    device = rule_gpu(config, rule) if res.gpus else None
    plan = new_job_plan(
        rule,
        job.model,
        rule,
        res,
        device,
        steps=job.steps,
        effective_batch=effective_batch(settings, rule, job.processes),
        launcher=job.launcher,
        rows=job.rows,
    )
    arch = archs.for_model(config, settings.model)
    if arch is None:
        plan.notes.append("architecture unknown: memory and time not planned")
        return plan
    estimate = getattr(stages, rule)(settings, arch, device)
    merge = rule == "sft" and settings.sft.merge
    setup = stages.setup_for(settings, arch, rule, device)
    fill(plan, estimate, device, host_bytes(setup, estimate, merge), arch.source)
    plan.tokens_per_step = estimate.lengths.get("tokens_per_step")
    measured = res.seconds_per_step
    factors = factors_for(calibration, settings.model.name, device)
    plan.seconds_per_step = measured or estimate.calibrated(factors)
    source = "plan, calibrated (gpu_bench)" if factors else "plan"
    plan.seconds_per_step_source = "config (measured)" if measured else source
    if plan.seconds_per_step is not None and job.steps is not None:
        seconds = job.steps * plan.seconds_per_step + timing.JOB_START_S
        seconds += prepass_seconds(plan, settings, estimate, factors, job)
        plan.est_hours = round(seconds / 3600, 2)
    check(plan, device)
    return plan


def prepass_seconds(
    plan: JobPlan,
    settings: Settings,
    estimate: stages.Estimate,
    factors: Any,
    job: budget.JobBudget,
) -> float:
    """GRPO's pre-pass (``grpo.prepass_samples``), once before the first step; 0 without one.
    Its planned completions go in the plan's notes."""
    if plan.rule != "grpo":
        return 0.0
    completions = stages.prepass_completions(settings, job.steps, job.rows, job.processes)
    if completions is None:
        return 0.0
    seconds = stages.prepass_seconds(estimate, factors, completions)
    took = ""
    if seconds is not None:
        took = f", ~{seconds / 60:.0f} min" if seconds < 7200 else f", ~{seconds / 3600:.1f} h"
    share = f"{stages.PREPASS_DISAGREEING:.0%}"
    plan.notes.append(f"pre-pass: {completions:,} completions{took} ({share} of prompts kept)")
    return seconds or 0.0


def fill(plan: JobPlan, estimate: stages.Estimate, device, host: int, source: str) -> None:
    plan.mem_breakdown_gb = mem.gib(estimate.parts)
    plan.activations_gb = mem.gib(estimate.activations)
    plan.lengths = {k: v for k, v in estimate.lengths.items() if k != "tokens_per_step"}
    plan.notes += estimate.notes
    plan.architecture = source
    plan.host_mem_gb = round(host / mem.GIB, 1)
    if device is not None:
        plan.est_gpu_mem_gb = round(sum(estimate.parts.values()) / mem.GIB, 1)
        plan.gpu_memory_gb = device.memory_gib


def check(plan: JobPlan, device: Gpu | None) -> None:
    """``fits`` and the reasons a job would die: GPU memory, runtime, host memory."""
    gpu_gb = plan.est_gpu_mem_gb
    if device is not None and gpu_gb is not None and gpu_gb > device.memory_gib:
        article = "an" if device.name[0] in "AEFHILMNORSX" else "a"
        plan.reasons.append(
            f"~{plan.est_gpu_mem_gb:.0f} GB/GPU > {device.memory_gib:g} GB of "
            f"{article} {device.name}"
        )
    if plan.est_hours is not None and plan.est_hours > plan.runtime_h:
        if plan.rule == "evaluate":
            what = f"for {plan.lengths.get('items', 0):,} items"
        else:
            what = f"at ~{plan.seconds_per_step:.3g} s/step × {plan.steps:,} steps"
        plan.reasons.append(f"~{plan.est_hours:.1f} h {what} > runtime {plan.runtime_h:g} h")
    host = plan.host_mem_gb
    if host is not None and plan.mem_mb is not None and host * 1024 > plan.mem_mb:
        plan.reasons.append(f"~{plan.host_mem_gb:.0f} GB host memory > mem_mb {plan.mem_mb}")
    plan.fits = not plan.reasons


def evaluation_jobs(
    config: dict[str, Any], settings: Settings, calibration: Any = None
) -> list[JobPlan]:
    res = settings.resources.evaluate
    device = rule_gpu(config, "evaluate") if res.gpus else None
    arch = archs.for_model(config, settings.model)
    jobs = []
    for stage in settings.model.stages:
        for test_set in settings.evaluate.test_sets:
            rows = budget.corpus_split_rows(config, test_set)
            cap = settings.evaluate.max_samples
            items = min(x for x in (rows, cap) if x is not None) if (rows or cap) else 0
            plan = new_job_plan(
                "evaluate",
                settings.model.name,
                stage,
                res,
                device,
                steps=None,
                effective_batch=settings.evaluate.batch_size,
                test_set=test_set,
                launcher=launch.describe(min(res.gpus, 1)),
                rows=items,
            )
            if arch is None:
                plan.notes.append("architecture unknown: memory and time not planned")
            else:
                estimate = stages.evaluation(settings, arch, device, stage, test_set, items)
                setup = stages.setup_for(settings, arch, "evaluate", device)
                fill(plan, estimate, device, host_bytes(setup, estimate, False), arch.source)
                factors = factors_for(calibration, settings.model.name, device)
                if estimate.seconds_per_step is not None:
                    seconds = estimate.calibrated(factors) + timing.JOB_START_S
                    plan.est_hours = round(seconds / 3600, 2)
                check(plan, device)
            jobs.append(plan)
    return jobs


def plan_jobs(config: dict[str, Any], calibration: Any = None) -> list[JobPlan]:
    """Every SFT, GRPO and evaluation job of the selected models (``run``), in model order;
    times scaled by ``calibration`` (``plan.calibration.load``) where it measured the model on
    the job's GPU."""
    jobs: list[JobPlan] = []
    for name in config["run"]:
        settings = resolved_settings(config, name)
        for rule in ("sft", "grpo"):
            if rule in settings.model.stages:
                jobs.append(training_job(config, settings, rule, calibration))
        jobs += evaluation_jobs(config, settings, calibration)
    return jobs


# Targets that name one model's stage, and what of it they need (rlcausality's file layout).
_STAGE_TARGETS = (
    re.compile(r"^results/reports/(?P<model>[^/]+)/(?P<stage>base|sft|grpo)\.html$"),
    re.compile(r"^results/models/(?P<model>[^/]+)/(?P<stage>sft|grpo)/manifest\.json$"),
    re.compile(
        r"^results/eval/(?P<model>[^/]+)/(?P<stage>base|sft|grpo)/(?P<test_set>[^/]+)/"
        r"(metrics\.json|predictions\.jsonl)$"
    ),
)
# Targets of one model that need none of its GPU jobs (data, base model, download).
_NO_GPU_TARGETS = re.compile(r"^results/(data/[^/]+/|models/[^/]+/(base|hub)/)")


def _wanted(config: dict[str, Any], target: str) -> set[tuple[str, str, str, str | None]] | None:
    """The (rule, model, stage, test set) of every planned job ``target`` needs (test set None:
    any); None when the target is not one model's (a summary, the plan: every job)."""
    if _NO_GPU_TARGETS.match(target):
        return set()
    for pattern in _STAGE_TARGETS:
        found = pattern.match(target)
        if not found or found["model"] not in config["run"]:
            continue
        model, stage = found["model"], found["stage"]
        chain = {"base": [], "sft": ["sft"], "grpo": ["grpo"]}[stage]
        if stage == "grpo" and resolved_settings(config, model).grpo.init == "sft":
            chain.append("sft")
        wanted = {(rule, model, rule, None) for rule in chain}
        if not pattern.pattern.startswith("^results/models"):
            wanted.add(("evaluate", model, stage, found.groupdict().get("test_set")))
        return wanted
    return None


def for_targets(
    jobs: list[JobPlan], config: dict[str, Any], targets: Iterable[str]
) -> list[JobPlan]:
    """The jobs of ``jobs`` that the targets' DAG holds: all of them unless every target names
    one model's stage, data or base model (e.g. ``results/reports/deepseek-r1-7b/grpo.html``)."""
    targets = list(targets)
    wanted: set[tuple[str, str, str, str | None]] = set()
    for target in targets:
        needs = _wanted(config, target)
        if needs is None:
            return jobs
        wanted |= needs
    if not targets:
        return jobs

    def needed(job: JobPlan) -> bool:
        return (job.rule, job.model, job.stage, job.test_set) in wanted or (
            job.rule,
            job.model,
            job.stage,
            None,
        ) in wanted

    return [job for job in jobs if needed(job)]


def train_line(job: JobPlan) -> str:
    steps = f"{job.steps:,} steps" if job.steps is not None else "steps unknown"
    head = f"TRAIN {job.rule} {job.model}: {job.launcher}, {steps}"
    if job.est_hours is not None:
        prepass = [note for note in job.notes if note.startswith("pre-pass:")]
        extra = f" + {prepass[0]}" if prepass else ""
        head += f" × ~{job.seconds_per_step:.3g} s{extra} = {job.est_hours:.1f} h"
    head += f" of runtime {job.runtime_h:.1f} h"
    if job.est_gpu_mem_gb is not None:
        head += f", ~{job.est_gpu_mem_gb:.0f} GB/GPU of {job.gpu_memory_gb:g} ({job.gpu})"
    return f"{head}: {'fits' if job.fits else 'DOES NOT FIT'}"


def misfit_line(job: JobPlan) -> str:
    return f"PLAN: {job.name}: " + "; ".join(job.reasons)


def summary_line(jobs: list[JobPlan]) -> str:
    bad = [j for j in jobs if not j.fits]
    gpus = sorted({j.gpu for j in jobs})
    where = ", ".join(gpus) or "no GPU"
    if not bad:
        checked = "GPU memory, runtime and mem_mb" if gpus != ["CPU"] else "mem_mb; no CPU times"
        return (
            f"PLAN: all {len(jobs)} training and evaluation jobs fit ({where}: {checked}); "
            "the table: snakemake results/plan.md"
        )
    return (
        f"PLAN: {len(bad)} of {len(jobs)} jobs do not fit ({where}); plan: {{strict: true}} "
        "makes this an error; the table: snakemake results/plan.md"
    )


def dry_run_lines(jobs: list[JobPlan]) -> list[str]:
    lines = [train_line(j) for j in jobs if j.rule != "evaluate"]
    lines += [misfit_line(j) for j in jobs if not j.fits]
    return [*lines, summary_line(jobs)]
