"""Which GPU type a GPU job asks SLURM for, and whether the plan prices it on the same GPU.

The SLURM executor plugin turns a job's ``gpu_model`` resource into ``sbatch --gpus=TYPE:N``
(with ``gpu``: N). The type is the site's name for it (``sinfo -o %G``: ``gpu:h100:4``), set:

* per model and stage in config, ``resources.<stage>.gpu_model`` (or under ``defaults:``), or
* for a rule in the profile, ``set-resources: {grpo: {gpu_model: h100}}``, which wins.

A job without GPUs asks for no type. The plan (``rlcausality.plan``) prices jobs on
``plan.gpu`` / ``plan.rules.<rule>``; where the site's type names a GPU the plan knows (the same
name up to case and ``-``/``_``/``.``: ``h200`` is ``H200``, ``h100_80gb`` is ``H100-80GB``),
one setting serves both: ``plan_rules_from_requests`` lets the plan price that rule on it,
unless ``plan.rules`` names a GPU for the rule. The dry-run shows each request beside the GPU
the plan priced it on (``request_lines``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rlcausality.settings.config import resolve_model

GPU_RULES = ("sft", "grpo", "evaluate")  # rule name = the stage of its resources


def _key(name: str) -> str:
    return re.sub(r"[-_.]", "", name).lower()


def plan_name(gpu_model: str | None, known: Iterable[str]) -> str | None:
    """The plan's name of the site's GPU type ``gpu_model``, None when the plan has none."""
    if not gpu_model:
        return None
    return {_key(name): name for name in known}.get(_key(gpu_model))


def _value(resource: Any) -> Any:
    """A plain value, or a Snakemake Resource's: a profile's string is an expression Snakemake
    evaluates in each job (``h100`` is a name error there, so the string); its text is it."""
    if not hasattr(resource, "is_evaluable"):
        return resource
    if not resource.is_evaluable():
        return resource.value
    return str(resource.raw).strip("'\"")


def profile_gpu_model(overwrite_resources: Mapping[str, Any], rule: str) -> str | None:
    """The ``gpu_model`` a profile's ``set-resources`` (or ``--set-resources``) gives ``rule``."""
    resources = overwrite_resources.get(rule) or {}
    value = _value(resources.get("gpu_model")) if "gpu_model" in resources else None
    return str(value) if value else None


def gpu_model(
    resolved: Mapping[str, Any], rule: str, overwrite_resources: Mapping[str, Any]
) -> str | None:
    """The GPU type a job of ``rule`` asks for: the profile's, else the model's config; None
    for a job without GPUs."""
    resource = resolved["resources"][rule]
    if not resource.get("gpus"):
        return None
    return profile_gpu_model(overwrite_resources, rule) or resource.get("gpu_model")


def requested_types(
    config: Mapping[str, Any], overwrite_resources: Mapping[str, Any]
) -> dict[tuple[str, str], str | None]:
    """The GPU type every GPU rule's job of every selected model asks for, by (rule, model)."""
    resolved = {model: resolve_model(dict(config), model) for model in config["run"]}
    return {
        (rule, model): gpu_model(settings, rule, overwrite_resources)
        for rule in GPU_RULES
        for model, settings in resolved.items()
    }


def plan_rules_from_requests(
    plan: Mapping[str, Any],
    requests: Mapping[tuple[str, str], str | None],
    known: Iterable[str],
) -> dict[str, str]:
    """``plan.rules`` with, for each GPU rule it leaves out whose jobs all ask for one type
    the plan knows, that GPU: the request and the plan then name the same GPU."""
    rules = dict(plan.get("rules") or {})
    for rule in GPU_RULES:
        asked = {kind for (r, _), kind in requests.items() if r == rule and kind}
        if rule in rules or len(asked) != 1:
            continue
        name = plan_name(asked.pop(), list(known))
        if name is not None:
            rules[rule] = name
    return rules


def request_lines(jobs: Iterable[Any], requests: Mapping[tuple[str, str], str | None]) -> list[str]:
    """``GPU grpo qwen: sbatch --gpus=h100:2; plan: H100-80GB (same GPU)``, one per rule and
    model of the plan's ``jobs`` (``rule, model, gpus, gpu``) whose request names a type."""
    lines, seen = [], set()
    for job in jobs:
        rule, model, gpus, priced = job.rule, job.model, job.gpus, job.gpu
        model_type = requests.get((rule, model))
        if not model_type or not gpus or (rule, model) in seen:
            continue
        seen.add((rule, model))
        agree = plan_name(model_type, [priced]) is not None
        note = "same GPU" if agree else "check that they are the same GPU"
        lines.append(
            f"GPU {rule} {model}: sbatch --gpus={model_type}:{gpus}; plan: {priced} ({note})"
        )
    return lines
