"""Configuration: JSON-schema validation, semantic checks and per-model settings.

Used by the Snakefile at parse time (so ``snakemake -n`` reports every mistake before a job is
queued) and by the entry points. Each problem is reported once, naming the key path, the value
and what is expected.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable
from importlib import resources
from typing import Any

import jsonschema
import yaml

from rlcausality.models.families import FAMILIES
from rlcausality.models.sources import BLOCKS, BUILT_SOURCES, SOURCES
from rlcausality.rewards import REWARDS
from rlcausality.stages import ROBUSTNESS_VARIANTS, STAGES

SETTING_SECTIONS = ("format", "sft", "grpo", "evaluate", "resources")


class ConfigError(ValueError):
    """One or more problems in the configuration; ``problems`` lists them one per line."""

    def __init__(self, problems: Iterable[str], source: str = "config.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


@functools.cache
def _load_yaml_resource(name: str) -> Any:
    return yaml.safe_load(resources.files("rlcausality").joinpath(name).read_text("utf-8"))


def schema() -> dict[str, Any]:
    """The JSON schema, with the model sources taken from their registry."""
    loaded = copy.deepcopy(_load_yaml_resource("config.schema.yaml"))
    model = loaded["properties"]["models"]["additionalProperties"]["properties"]
    model["source"]["enum"] = list(SOURCES)
    model.update(copy.deepcopy(BLOCKS))
    return loaded


def recipe_defaults() -> dict[str, Any]:
    return copy.deepcopy(_load_yaml_resource("recipe_defaults.yaml"))


def deep_merge(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A new dict: ``base`` with ``override`` merged in key by key (override wins)."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


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


MODEL_DEFAULTS = {"quantization": "none", "dtype": "auto", "trust_remote_code": False,
                  "revision": None}  # fmt: skip


def model_defaults(model: dict[str, Any]) -> dict[str, Any]:
    """A model block with the keys every stage reads (the family's system prompt included)."""
    completed = {**MODEL_DEFAULTS, **model}
    if "system_prompt" not in completed:
        family = FAMILIES.get(completed.get("family"))
        completed["system_prompt"] = family.default_system_prompt if family else None
    return completed


def complete_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A job's settings with every key its sections may read: the recipe's values under each
    section it has, the model defaults under its model block. Entry points read settings through
    this (``cli``), so no code needs a fallback of its own and the recipe stays the one home
    of every default."""
    recipe = recipe_defaults()
    completed = {
        key: deep_merge(recipe[key], value) if key in recipe and isinstance(value, dict) else value
        for key, value in settings.items()
    }
    if isinstance(completed.get("model"), dict):
        completed["model"] = model_defaults(completed["model"])
    return completed


def resolve_model(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The full settings of one model: recipe defaults < config ``defaults`` < the model's own."""
    if name not in config.get("models", {}):
        known = ", ".join(sorted(config.get("models", {})))
        raise ConfigError([f"models.{name}: no such model; configured models: {known}"])
    entry = config["models"][name]
    settings = deep_merge(recipe_defaults(), config.get("defaults"))
    settings = deep_merge(settings, {k: v for k, v in entry.items() if k in SETTING_SECTIONS})
    model = model_defaults({k: v for k, v in entry.items() if k not in SETTING_SECTIONS})
    if "stages" not in model:
        # SFT is part of a model's chain only when its GRPO starts from it.
        sft_in_chain = settings["grpo"]["init"] == "sft"
        model["stages"] = [s for s in STAGES if s != "sft" or sft_in_chain]
    model["name"] = name
    model["path"] = base_model_path(config, name)
    if settings["evaluate"]["test_sets"] is None:
        settings["evaluate"]["test_sets"] = test_splits(config)
    settings["model"] = model
    return settings


def base_model_path(config: dict[str, Any], name: str) -> str:
    """Where the base model loads from: a hub id, a local folder, or the folder a rule builds."""
    entry = config["models"][name]
    if entry["source"] in BUILT_SOURCES:
        return f"results/models/{name}/base"
    return entry.get("id", "")


BASE_MODEL_KEYS = ("name", "source", "family", *BLOCKS)


def base_model_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """What the base_model job (models.tiny, models.gguf) reads: the model's name, source,
    family and its ``tiny`` dims or ``gguf`` block, nothing else, so that a change to format or
    training settings does not rebuild the base model."""
    model = resolve_model(config, name)["model"]
    return {"model": {k: model[k] for k in BASE_MODEL_KEYS if k in model}}


def offline_hub_models(config: dict[str, Any]) -> list[str]:
    """Models downloaded by the hub_model rule and loaded offline by their jobs."""
    if not config.get("hub", {}).get("offline_jobs", True):
        return []
    return sorted(n for n, entry in config.get("models", {}).items() if entry["source"] == "hub")


def hub_download_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """What the hub_model job depends on: the hub id, the requested revision, the hub block."""
    entry = config["models"][name]
    model = {"name": name, "id": entry["id"], "revision": entry.get("revision")}
    return {"model": model, "hub": config["hub"]}


def stage_settings(config: dict[str, Any], name: str, stage: str) -> dict[str, Any]:
    """The slice of settings one job of ``stage`` depends on (its params: a change reruns it)."""
    resolved = resolve_model(config, name)
    section = {"format": "format", "sft": "sft", "grpo": "grpo", "evaluate": "evaluate"}[stage]
    return {"model": resolved["model"], section: resolved[section]}


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
    return [
        f"run: {name!r} is not a key of models; configured models: " + ", ".join(sorted(models))
        for name in run
        if name not in models
    ]


def _model_problems(config: dict[str, Any], name: str, entry: dict[str, Any]) -> list[str]:
    """The problems of one model entry, checked on its resolved settings."""
    where = f"models.{name}"
    family = entry.get("family")
    if family not in FAMILIES:
        return [
            f"{where}.family: {family!r} is not a known family; use one of "
            + ", ".join(sorted(FAMILIES))
        ]
    problems = _source_problems(where, entry)
    settings = resolve_model(config, name)
    problems += _balance_problems(where, settings["format"])
    problems += _grpo_problems(where, settings)
    problems += _vllm_problems(where, settings)
    problems += _sft_target_problems(where, settings)
    problems += _generation_batch_problems(where, settings)
    problems += _test_set_problems(where, settings["evaluate"], corpus_splits(config))
    problems += _resource_problems(where, settings["resources"])
    return problems


def _source_problems(where: str, entry: dict[str, Any]) -> list[str]:
    source = SOURCES[entry["source"]]
    if source.requires and not entry.get(source.requires):
        return [
            f"{where}.{source.requires}: missing; source {entry['source']!r} needs " + source.hint
        ]
    return []


def _balance_problems(where: str, fmt: dict[str, Any]) -> list[str]:
    if fmt.get("balance") and not fmt.get("max_train_samples"):
        return [
            f"{where}.format.balance: true needs format.max_train_samples (the size of the "
            "balanced train sample); set it, or set balance: false"
        ]
    return []


def _grpo_problems(where: str, settings: dict[str, Any]) -> list[str]:
    """GRPO's starting point, reward names and reward weights."""
    problems: list[str] = []
    stages = settings["model"]["stages"]
    grpo = settings["grpo"]
    if "grpo" in stages and grpo["init"] == "sft" and "sft" not in stages:
        problems.append(
            f"{where}.grpo.init: 'sft' but the model's stages {stages} have no sft; "
            "add sft to stages or set grpo.init: base"
        )
    for reward in grpo["rewards"]:
        if reward not in REWARDS:
            problems.append(
                f"{where}.grpo.rewards: {reward!r} is not a known reward; known: "
                + ", ".join(sorted(REWARDS))
            )
    weights = grpo.get("reward_weights")
    if weights is not None and len(weights) != len(grpo["rewards"]):
        problems.append(
            f"{where}.grpo.reward_weights: {len(weights)} weight(s) for "
            f"{len(grpo['rewards'])} reward(s); give one weight per reward or null"
        )
    return problems


def _generation_batch_problems(where: str, settings: dict[str, Any]) -> list[str]:
    """GRPO's generation batch must hold whole groups of ``num_generations`` completions."""
    grpo = settings["grpo"]
    gpus = max(1, settings["resources"]["grpo"]["gpus"])
    generation_batch = (
        grpo["per_device_train_batch_size"] * gpus * grpo["gradient_accumulation_steps"]
    )
    if generation_batch % grpo["num_generations"]:
        return [
            f"{where}.grpo: per_device_train_batch_size × gpus × gradient_accumulation_steps "
            f"= {grpo['per_device_train_batch_size']} × {gpus} × "
            f"{grpo['gradient_accumulation_steps']} = {generation_batch} is not divisible by "
            f"num_generations = {grpo['num_generations']}; change one of them so it is"
        ]
    return []


def _test_set_problems(where: str, evaluate: dict[str, Any], available: list[str]) -> list[str]:
    return [
        f"{where}.evaluate.test_sets: {test_set!r} is not a split of the corpus; "
        "available: " + ", ".join(available)
        for test_set in evaluate["test_sets"]
        if test_set not in available
    ]


def _resource_problems(where: str, resources: dict[str, Any]) -> list[str]:
    return [
        f"{where}.resources.{stage}.{key}: missing"
        for stage, res in resources.items()
        for key in ("mem_mb", "runtime", "cpus")
        if key not in res
    ]


def _plan_problems(plan: dict[str, Any]) -> list[str]:
    from rlcausality.plan import gpu_table  # not at the top: rlcausality.plan imports this module

    known = gpu_table()
    named = {"plan.gpu": plan.get("gpu")}
    named.update({f"plan.rules.{r}": g for r, g in (plan.get("rules") or {}).items()})
    return [
        f"{where}: {name!r} is not a GPU the plan knows; use one of {', '.join(known)} "
        "(or add it to workflow_scripts/rlcausality/plan/gpus.yaml with its datasheet figures)"
        for where, name in named.items()
        if name is not None and name not in known
    ]


def _sft_target_problems(where: str, settings: dict[str, Any]) -> list[str]:
    """A trace-trained SFT model is asked with the reasoning prompt it was trained on."""
    if settings["format"]["sft_target"] != "trace" or "sft" not in settings["model"]["stages"]:
        return []
    prompt = settings["evaluate"]["prompt"]["sft"]
    if prompt == "grpo":
        return []
    return [
        f"{where}.evaluate.prompt.sft: {prompt!r}, but format.sft_target 'trace' trains SFT on "
        "the reasoning prompt (grpo) and its trace; set evaluate.prompt.sft: grpo"
    ]


def _vllm_problems(where: str, settings: dict[str, Any]) -> list[str]:
    """vLLM with a quantised base: GRPO+QLoRA+vLLM is an open TRL bug (trl#4973), and vLLM
    would evaluate the unquantised weights, not the model that was trained."""
    quantization = settings["model"].get("quantization", "none")
    if quantization == "none":
        return []
    return [
        f"{where}.{section}.use_vllm: true with quantization {quantization!r} is not supported "
        "(GRPO+QLoRA+vLLM: trl#4973; vLLM would not run the quantised model that was trained); "
        f"set {section}.use_vllm: false or quantization: none"
        for section in ("grpo", "evaluate")
        if settings[section].get("use_vllm")
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


def model_stages(config: dict[str, Any], name: str) -> list[str]:
    """The stages built and evaluated for a model, in order."""
    return list(resolve_model(config, name)["model"]["stages"])


def test_splits(config: dict[str, Any]) -> list[str]:
    """The corpus's test splits: ``test`` (and any ``test_*``), then the robustness variants."""
    splits = corpus_splits(config)
    return sorted(s for s in splits if s == "test" or s.startswith("test_"))


def corpus_splits(config: dict[str, Any]) -> list[str]:
    """The corpus files the data source yields (results/data/corr2cause/{split}.jsonl)."""
    data = config["data"]
    if data["source"] == "file":
        return sorted(data["file"])
    if data["source"] == "hub":
        return sorted(data["hub"]["splits"])
    splits = sorted(data["generate"]["splits"])
    if data["generate"].get("robustness", True):
        splits += list(ROBUSTNESS_VARIANTS)
    return splits
