"""Configuration: JSON-schema validation, semantic checks and per-model settings.

Used by the Snakefile at parse time (so ``snakemake -n`` reports every mistake before a job is
queued) and by the entry points, which read their settings typed (``load_settings``: the
frozen dataclasses of ``rlcausality.settings``). Each problem is reported once, naming the key
path, the value and what is expected.
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
from rlcausality.settings import ConfigError, Settings
from rlcausality.stages import ROBUSTNESS_VARIANTS, STAGES

SETTING_SECTIONS = ("format", "sft", "grpo", "evaluate", "resources")


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


def load_settings(
    settings: dict[str, Any], source: str = "--settings", needs: Iterable[str] = ()
) -> Settings:
    """A job's typed settings: ``complete_settings``, then ``Settings.from_dict``. Every entry
    point reads its ``--settings`` through this (``cli.configure``). A missing or unknown key,
    or a section the job ``needs`` (``sft`` for an SFT job) left out, is a ConfigError naming
    it."""
    try:
        loaded = Settings.from_dict(complete_settings(settings))
    except ConfigError as err:
        raise ConfigError(err.problems, source) from None
    missing = [
        f"{section}: missing; the job reads it (config.stage_settings(config, model, "
        f"{section!r}) has it)"
        for section in needs
        if getattr(loaded, section) is None
    ]
    if missing:
        raise ConfigError(missing, source)
    return loaded


def resolved_settings(config: dict[str, Any], name: str) -> Settings:
    """``resolve_model`` typed: every section of one model (the plan reads these)."""
    return load_settings(resolve_model(config, name), "config.yaml")


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
    problems: list[str] = []
    models = config.get("models", {})
    for name in config.get("run", []):
        if name not in models:
            problems.append(
                f"run: {name!r} is not a key of models; configured models: "
                + ", ".join(sorted(models))
            )
    problems += _data_problems(config.get("data", {}))
    problems += _plan_problems(config.get("plan") or {})
    for name, entry in models.items():
        problems += _model_problems(config, name, entry)
    return problems


def _model_problems(config: dict[str, Any], name: str, entry: dict[str, Any]) -> list[str]:
    """One model's problems: its family and source, then its resolved settings'."""
    where = f"models.{name}"
    family = entry.get("family")
    if family not in FAMILIES:
        return [
            f"{where}.family: {family!r} is not a known family; use one of "
            + ", ".join(sorted(FAMILIES))
        ]
    problems: list[str] = []
    source = SOURCES[entry["source"]]
    if source.requires and not entry.get(source.requires):
        problems.append(
            f"{where}.{source.requires}: missing; source {entry['source']!r} needs " + source.hint
        )
    try:
        settings = resolved_settings(config, name)
    except ConfigError as err:
        return problems + [f"{where}.{problem}" for problem in err.problems]
    fmt = settings.format
    if fmt.balance and not fmt.max_train_samples:
        problems.append(
            f"{where}.format.balance: true needs format.max_train_samples (the size of the "
            "balanced train sample); set it, or set balance: false"
        )
    problems += _grpo_problems(where, settings)
    problems += _vllm_problems(where, settings)
    problems += _generation_batch_problems(where, settings)
    available = corpus_splits(config)
    for test_set in settings.evaluate.test_sets:
        if test_set not in available:
            problems.append(
                f"{where}.evaluate.test_sets: {test_set!r} is not a split of the corpus; "
                "available: " + ", ".join(available)
            )
    return problems


def _grpo_problems(where: str, settings: Settings) -> list[str]:
    """GRPO's init target, its rewards and their weights."""
    from rlcausality.rewards import REWARDS  # local import: rewards import nothing heavy

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


def _plan_problems(plan: dict[str, Any]) -> list[str]:
    from rlcausality.plan import gpu_table  # reads one YAML file, imports nothing heavy

    known = gpu_table()
    named = {"plan.gpu": plan.get("gpu")}
    named.update({f"plan.rules.{r}": g for r, g in (plan.get("rules") or {}).items()})
    return [
        f"{where}: {name!r} is not a GPU the plan knows; use one of {', '.join(known)} "
        "(or add it to workflow_scripts/rlcausality/plan/gpus.yaml with its datasheet figures)"
        for where, name in named.items()
        if name is not None and name not in known
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
