"""Checking a workflow config (``validate_config``): the schema (with its defaults filled in),
then what a schema cannot say.

Every problem is one line naming the key, the value and the fix; all of them are collected
and raised together as one ``ConfigError``, so a dry-run reports every mistake at once. A
model's settings are checked as its jobs will read them: resolved and typed
(``config.resolved_settings``), so a missing or unknown key is named with its path.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from typing import Any

import jsonschema

from rlcausality import launch
from rlcausality.models.families import FAMILIES
from rlcausality.models.sources import SOURCES
from rlcausality.plan.jobs import gpu_table
from rlcausality.settings.blocks import Evaluate, Format, Settings
from rlcausality.settings.config import corpus_splits, resolved_settings, schema
from rlcausality.settings.fields import ConfigError
from rlcausality.training.rewards import REWARDS


def _key_path(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _with_defaults(validator_class: type) -> type:
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(prop, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _schema_problems(config: dict[str, Any]) -> list[str]:
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema())
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        where = _key_path(error.absolute_path)
        if error.validator == "additionalProperties":
            problems.append(f"{where}: {error.message}; check the spelling of the key")
        else:
            problems.append(f"{where}: {error.message}")
    return problems


DATA_FILE_SUFFIXES = (".csv", ".jsonl", ".json")


def _data_file_problems(files: dict[str, str]) -> list[str]:
    """data.file: train and test given; every file present (relative to the working directory,
    where Snakemake runs) and a CSV or JSONL."""
    problems = [
        f"data.file.{split}: missing; with data.source 'file' give a CSV or JSONL path "
        "for every split (train, test, and validation if used)"
        for split in ("train", "test")
        if split not in files
    ]
    for split, path in files.items():
        if not os.path.isfile(path):
            problems.append(
                f"data.file.{split}: {path} does not exist (relative to the working directory "
                f"{os.getcwd()}); fix the path or create the file"
            )
        elif not path.lower().endswith(DATA_FILE_SUFFIXES):
            problems.append(f"data.file.{split}: {path} is neither .csv nor .jsonl")
    return problems


def _data_problems(data: dict[str, Any]) -> list[str]:
    if data.get("source") == "file":
        return _data_file_problems(data.get("file", {}))
    problems: list[str] = []
    if data.get("source") == "generate":
        gen = data.get("generate", {})
        low, high = (gen.get("num_variables") or [2, 6])[:2]
        if low > high:
            problems.append(
                f"data.generate.num_variables: [{low}, {high}] has min > max; write [min, max]"
            )
        total = sum((gen.get("splits") or {}).values())
        if abs(total - 1.0) > 1e-6:
            problems.append(
                f"data.generate.splits: fractions add up to {total:g}; they must sum to 1"
            )
    return problems


def _semantic_problems(config: dict[str, Any]) -> list[str]:
    models = config.get("models", {})
    problems = _run_problems(config.get("run", []), models)
    problems += _data_problems(config.get("data", {}))
    problems += _plan_problems(config.get("plan") or {})
    for name, entry in models.items():
        problems += _model_problems(config, name, entry)
    return problems


def _run_problems(run: Iterable[str], models: dict[str, Any]) -> list[str]:
    run = list(run)
    if not run:
        return [
            "run: empty, so nothing would be built; name the models to build, e.g. "
            f"run: [{next(iter(sorted(models)), 'tiny')}] (configured models: "
            + ", ".join(sorted(models))
            + ")"
        ]
    return [
        f"run: {name!r} is not a key of models; configured models: " + ", ".join(sorted(models))
        for name in run
        if name not in models
    ]


def _local_path_problems(where: str, entry: dict[str, Any]) -> list[str]:
    """A ``path`` model's folder exists and holds a config.json (relative to the working
    directory, where Snakemake runs)."""
    folder = entry.get("id")
    if entry.get("source") != "path" or not folder:
        return []
    if not os.path.isdir(folder):
        return [
            f"{where}.id: {folder} does not exist (relative to the working directory "
            f"{os.getcwd()}); source 'path' loads a local model folder: fix the path"
        ]
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return [f"{where}.id: {folder} has no config.json; give the folder of a saved model"]
    return []


def _tiny_problems(where: str, entry: dict[str, Any]) -> list[str]:
    """Dimensions a ``tiny`` model can be built with (transformers refuses the rest later)."""
    dims = entry.get("tiny") if entry.get("source") == "tiny" else None
    if not isinstance(dims, dict):
        return []
    hidden, heads, kv = dims.get("hidden_size"), dims.get("num_heads"), dims.get("num_kv_heads")
    if not all(isinstance(v, int) and v > 0 for v in (hidden, heads, kv)):
        return []  # the schema names what is missing
    problems = []
    if hidden % heads:
        nearest = heads * max(1, round(hidden / heads))
        problems.append(
            f"{where}.tiny.hidden_size: {hidden} is not a multiple of num_heads {heads}; "
            f"each head gets hidden_size / num_heads dimensions (e.g. hidden_size: {nearest})"
        )
    elif (hidden // heads) % 2:
        problems.append(
            f"{where}.tiny: hidden_size / num_heads = {hidden // heads} is odd; rotary position "
            "embeddings need an even head size"
        )
    if heads % kv:
        problems.append(
            f"{where}.tiny.num_kv_heads: {kv} does not divide num_heads {heads}; grouped "
            "attention shares each KV head among num_heads / num_kv_heads query heads"
        )
    return problems


def _model_problems(config: dict[str, Any], name: str, entry: dict[str, Any]) -> list[str]:
    """The problems of one model entry: its family and source, then its resolved settings'."""
    where = f"models.{name}"
    family = entry.get("family")
    if family not in FAMILIES:
        return [
            f"{where}.family: {family!r} is not a known family; use one of "
            + ", ".join(sorted(FAMILIES))
        ]
    problems = _source_problems(where, entry) + _tiny_problems(where, entry)
    if name in config.get("run", []):  # only the models to build need their folder now
        problems += _local_path_problems(where, entry)
    try:
        settings = resolved_settings(config, name)
    except ConfigError as err:
        return problems + [f"{where}.{problem}" for problem in err.problems]
    problems += _balance_problems(where, settings.format)
    problems += _grpo_prompt_problems(where, settings)
    problems += _grpo_problems(where, settings)
    problems += _vllm_problems(where, settings)
    problems += _sft_target_problems(where, settings)
    problems += _generation_batch_problems(where, settings)
    problems += _prepass_problems(where, settings)
    problems += _test_set_problems(where, settings.evaluate, corpus_splits(config))
    return problems


def _source_problems(where: str, entry: dict[str, Any]) -> list[str]:
    source = SOURCES[entry["source"]]
    if source.requires and not entry.get(source.requires):
        return [
            f"{where}.{source.requires}: missing; source {entry['source']!r} needs " + source.hint
        ]
    return []


def _balance_problems(where: str, fmt: Format) -> list[str]:
    return [
        f"{where}.format.{key}: {str(getattr(fmt, key)).lower()} needs "
        "format.max_train_samples (the size of the balanced train sample); set it, or set "
        f"{key}: false"
        for key in ("balance", "grpo_balance")
        if getattr(fmt, key) and not fmt.max_train_samples
    ]


def _grpo_prompt_problems(where: str, settings: Settings) -> list[str]:
    """``format.grpo_prompts: unseen`` leaves SFT's sample out of GRPO's: there must be one."""
    if settings.format.grpo_prompts != "unseen":
        return []
    key = f"{where}.format.grpo_prompts"
    if not settings.format.max_train_samples:
        return [
            f"{key}: unseen needs format.max_train_samples (without a cap SFT trains on every "
            "train row and none is left for GRPO); set it, or set grpo_prompts: same"
        ]
    if "sft" not in settings.model.stages or "grpo" not in settings.model.stages:
        return [
            f"{key}: unseen leaves SFT's train rows out of GRPO's prompts; it needs both sft "
            f"and grpo in stages (got {list(settings.model.stages)}); set grpo_prompts: same"
        ]
    return []


def _grpo_problems(where: str, settings: Settings) -> list[str]:
    """GRPO's init target, its rewards and their weights."""
    problems: list[str] = []
    stages, grpo = list(settings.model.stages), settings.grpo
    if "grpo" in stages and grpo.init == "sft" and "sft" not in stages:
        problems.append(
            f"{where}.grpo.init: 'sft' but the model's stages {stages} have no sft; "
            "add sft to stages or set grpo.init: base"
        )
    problems += [
        f"{where}.grpo.rewards: {reward!r} is not a known reward; known: "
        + ", ".join(sorted(REWARDS))
        for reward in grpo.rewards
        if reward not in REWARDS
    ]
    weights = grpo.reward_weights
    if weights is not None and len(weights) != len(grpo.rewards):
        problems.append(
            f"{where}.grpo.reward_weights: {len(weights)} weight(s) for "
            f"{len(grpo.rewards)} reward(s); give one weight per reward or null"
        )
    return problems


def _prepass_problems(where: str, settings: Settings) -> list[str]:
    """GRPO's pre-pass generates in one process before the trainer starts: one GPU at most,
    and not under ZeRO-3 (a quantised base runs ZeRO-2: ``launch.deepspeed_stage``)."""
    grpo, gpus = settings.grpo, settings.resources.grpo.gpus
    if not grpo.prepass_samples or not gpus:
        return []
    key = f"{where}.grpo.prepass_samples"
    if gpus > 1:
        return [
            f"{key}: the pre-pass runs in one process and GRPO has {gpus} GPUs "
            "(resources.grpo.gpus); give it one GPU or leave prepass_samples out"
        ]
    if launch.deepspeed_stage(grpo.deepspeed, settings.model.quantized) == "zero3":
        return [
            f"{key}: under DeepSpeed ZeRO-3 the weights are partitioned until the trainer "
            "starts, so the pre-pass cannot generate; set grpo.deepspeed: zero2 or null"
        ]
    return []


def _generation_batch_problems(where: str, settings: Settings) -> list[str]:
    """GRPO's generation batch (per device × gpus × accumulation) by ``num_generations``."""
    grpo = settings.grpo
    problems: list[str] = []
    gpus = max(1, settings.resources.grpo.gpus)
    batch, accumulation = grpo.per_device_train_batch_size, grpo.gradient_accumulation_steps
    generation_batch = batch * gpus * accumulation
    if generation_batch % grpo.num_generations:
        problems.append(
            f"{where}.grpo: per_device_train_batch_size × gpus × gradient_accumulation_steps "
            f"= {batch} × {gpus} × {accumulation} = {generation_batch} is not divisible by "
            f"num_generations = {grpo.num_generations}; change one of them so it is"
        )
    return problems


def _test_set_problems(where: str, evaluate: Evaluate, available: list[str]) -> list[str]:
    return [
        f"{where}.evaluate.test_sets: {test_set!r} is not a split of the corpus; "
        "available: " + ", ".join(available)
        for test_set in evaluate.test_sets
        if test_set not in available
    ]


def _plan_problems(plan: dict[str, Any]) -> list[str]:

    known = gpu_table()
    named = {"plan.gpu": plan.get("gpu")}
    named.update({f"plan.rules.{r}": g for r, g in (plan.get("rules") or {}).items()})
    return [
        f"{where}: {name!r} is not a GPU the plan knows; use one of {', '.join(known)} "
        "(or add it to workflow_scripts/rlcausality/plan/gpus.yaml with its datasheet figures)"
        for where, name in named.items()
        if name is not None and name not in known
    ]


def _sft_target_problems(where: str, settings: Settings) -> list[str]:
    """A trace-trained SFT model is asked with the reasoning prompt it was trained on; a trace
    check style needs trace targets."""
    if settings.format.trace_lookup and settings.format.sft_target != "trace":
        return [
            f"{where}.format.trace_lookup: {list(settings.format.trace_lookup)} writes the Check "
            f"of oracle traces, but format.sft_target is {settings.format.sft_target!r}; set "
            "sft_target: trace or leave trace_lookup out"
        ]
    if settings.format.sft_target != "trace" or "sft" not in settings.model.stages:
        return []
    prompt = settings.evaluate.prompt.sft
    if prompt == "grpo":
        return []
    return [
        f"{where}.evaluate.prompt.sft: {prompt!r}, but format.sft_target 'trace' trains SFT on "
        "the reasoning prompt (grpo) and its trace; set evaluate.prompt.sft: grpo"
    ]


def _vllm_problems(where: str, settings: Settings) -> list[str]:
    """vLLM with a quantised base: GRPO+QLoRA+vLLM is an open TRL bug (trl#4973), and vLLM
    would evaluate the unquantised weights, not the model that was trained."""
    quantization = settings.model.quantization
    if quantization == "none":
        return []
    return [
        f"{where}.{section}.use_vllm: true with quantization {quantization!r} is not supported "
        "(GRPO+QLoRA+vLLM: trl#4973; vLLM would not run the quantised model that was trained); "
        f"set {section}.use_vllm: false or quantization: none"
        for section in ("grpo", "evaluate")
        if settings.of(section).use_vllm
    ]


def validate_config(config: dict[str, Any], source: str = "config.yaml") -> dict[str, Any]:
    """Fill schema defaults into ``config`` (in place); raise ConfigError listing every problem."""
    problems = _schema_problems(config)
    if problems:
        raise ConfigError(problems, source)
    problems = _semantic_problems(config)
    if problems:
        raise ConfigError(problems, source)
    return config
