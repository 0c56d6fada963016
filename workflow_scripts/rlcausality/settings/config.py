"""Configuration: the schema, merging, and per-model settings (the recipe is declared in
``rlcausality.settings.blocks``).

Used by the Snakefile at parse time (checked first by ``validation.validate_config``, so
``snakemake -n`` reports every mistake before a job is queued)
and by the entry points, which read their settings typed (``load_settings``: the frozen
dataclasses of ``rlcausality.settings.blocks``).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rlcausality.models.families import FAMILIES
from rlcausality.models.sources import BLOCKS, BUILT_SOURCES, SOURCES
from rlcausality.settings.blocks import (
    DAG_KEYS,
    SECTIONS,
    Model,
    Settings,
    Tracking,
    recipe,
    split_operational,
)
from rlcausality.settings.fields import ConfigError, block_schema, deep_merge
from rlcausality.stages import ROBUSTNESS_VARIANTS, STAGES

SETTING_SECTIONS = tuple(SECTIONS)


@functools.cache
def _load_yaml_resource(name: str) -> Any:
    return yaml.safe_load(resources.files("rlcausality.settings").joinpath(name).read_text("utf-8"))


def schema() -> dict[str, Any]:
    """The JSON schema: the workflow's keys from ``config.schema.yaml``, every setting's block
    generated from its declaration (``rlcausality.settings.blocks``), the model sources and their
    own blocks from their registry."""
    loaded = copy.deepcopy(_load_yaml_resource("config.schema.yaml"))
    properties = loaded["properties"]
    sections = {name: block_schema(block) for name, block in SECTIONS.items()}
    properties["defaults"]["properties"] = {k: v for k, v in sections.items()}
    entry = block_schema(Model)
    entry["properties"]["source"]["enum"] = list(SOURCES)
    entry["properties"].update(sections)
    entry["properties"].update(copy.deepcopy(BLOCKS))
    properties["models"]["additionalProperties"] = entry
    properties["tracking"] = block_schema(Tracking, defaults=True)
    return loaded


def recipe_defaults() -> dict[str, Any]:
    """The recipe's values of every section (``settings.recipe``: derived, not declared)."""
    return recipe()


def read_config_files(paths: Iterable[str]) -> dict[str, Any]:
    """The config files merged in order, later keys winning, as Snakemake merges
    ``--configfile``; not yet validated (``validation.validate_config``)."""
    config: dict[str, Any] = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            config = deep_merge(config, yaml.safe_load(handle) or {})
    return config


def family_prompt(model: dict[str, Any]) -> dict[str, Any]:
    """A model block with its family's system prompt when it sets none (null: no system turn)."""
    if "system_prompt" in model:
        return model
    family = FAMILIES.get(model.get("family"))
    return {**model, "system_prompt": family.default_system_prompt if family else None}


def load_settings(
    settings: dict[str, Any], source: str = "--settings", needs: Iterable[str] = ()
) -> Settings:
    """A job's typed settings: ``Settings.from_dict``, which fills in the recipe's value of
    every key a section leaves out. Every entry point reads its ``--settings`` through this
    (``cli.configure``). A missing or unknown key, or a section the job ``needs`` (``sft`` for
    an SFT job) left out, is a ConfigError naming it."""
    if isinstance(settings.get("model"), dict):
        settings = {**settings, "model": family_prompt(settings["model"])}
    try:
        loaded = Settings.from_dict(settings)
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
    """The full settings of one model: recipe < config ``defaults`` < the model's own. The
    recipe's values are filled in once, by ``Settings.from_dict``; then the keys whose value
    depends on the rest of the config (the stages, the test sets)."""
    if name not in config.get("models", {}):
        known = ", ".join(sorted(config.get("models", {})))
        raise ConfigError([f"models.{name}: no such model; configured models: {known}"])
    entry = config["models"][name]
    own = {k: v for k, v in entry.items() if k in SETTING_SECTIONS}
    sections = deep_merge({k: {} for k in SETTING_SECTIONS}, config.get("defaults"))
    model = {k: v for k, v in entry.items() if k not in SETTING_SECTIONS}
    model.update(name=name, path=base_model_path(config, name))
    settings = Settings.from_dict(
        {**deep_merge(sections, own), "model": family_prompt(model)}
    ).to_dict()
    if "stages" not in settings["model"]:
        # SFT is part of a model's chain only when its GRPO starts from it.
        sft_in_chain = settings["grpo"]["init"] == "sft"
        settings["model"]["stages"] = [s for s in STAGES if s != "sft" or sft_in_chain]
    if settings["evaluate"]["test_sets"] is None:
        settings["evaluate"]["test_sets"] = test_splits(config)
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


def job_settings(config: dict[str, Any], name: str, stage: str) -> dict[str, Any]:
    """Every setting one job of ``stage`` reads: the model block and the stage's section."""
    resolved = resolve_model(config, name)
    section = {"format": "format", "sft": "sft", "grpo": "grpo", "evaluate": "evaluate"}[stage]
    sliced = {k: v for k, v in resolved[section].items() if k not in DAG_KEYS.get(section, ())}
    return {"model": resolved["model"], section: sliced}


def stage_settings(config: dict[str, Any], name: str, stage: str) -> dict[str, Any]:
    """What decides the output of one job of ``stage``: its params (a change reruns it). The
    operational keys (``settings.OPERATIONAL_KEYS``) reach it apart (``operational_settings``)."""
    return split_operational(job_settings(config, name, stage))[0]


def format_settings(config: dict[str, Any], name: str, fmt: str, split: str) -> dict[str, Any]:
    """What decides the output of the format job of ``fmt`` on ``split``: ``stage_settings`` of
    ``format``, where GRPO's train prompts read ``format.grpo_balance`` (when set) as their
    ``balance``, and only they get ``format.grpo_relations``. No other format job depends on
    either: changing one reruns GRPO's train prompts and what follows, never SFT's rows or a
    test set (whose shell command stays the same too, so Snakemake's code trigger stays off).
    Likewise ``format.trace_lookup`` reaches the ``trace`` format job (SFT's rows) alone."""
    sliced = stage_settings(config, name, "format")
    fmt_block = dict(sliced["format"])
    grpo_prompts = fmt == "grpo" and split == "train"
    if not grpo_prompts:
        fmt_block.pop("grpo_relations", None)
    if fmt != "trace":
        fmt_block.pop("trace_lookup", None)
    grpo_balance = resolve_model(config, name)["format"].get("grpo_balance")
    if grpo_prompts and grpo_balance is not None:
        fmt_block["balance"] = grpo_balance
    sliced["format"] = fmt_block
    return sliced


def operational_settings(config: dict[str, Any], name: str, stage: str) -> dict[str, Any]:
    """The operational keys one job of ``stage`` reads (``--operational``; reruns nothing)."""
    return split_operational(job_settings(config, name, stage))[1]


MANIFEST_FILES = ("adapter_path", "merged_path")


def manifest_problems(path: str | Path) -> list[str]:
    """Why a training manifest that exists is not up to date: a file it lists is gone. Empty
    when it is fine or does not exist (then Snakemake builds it)."""
    try:
        manifest = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        return [f"{path}: unreadable ({err}); rerun with --forcerun {path} to train it again"]
    return [
        f"{path} lists {manifest[key]}, which is gone: rerun with --forcerun {path} to train "
        "the stage again (it resumes from its newest checkpoint) or put the folder back"
        for key in MANIFEST_FILES
        if manifest.get(key) and not Path(manifest[key]).exists()
    ]


class OperationalParam:
    """A job's operational settings as a Snakemake param, shown in its command as JSON.

    Snakemake's params trigger compares only params of plain types (its persistence leaves any
    other value out as unrepresentable), so this one is given to the job without being part of
    what reruns it: exactly right for keys that decide no output (``OPERATIONAL_KEYS``).
    tests/workflow/test_reruns.py holds Snakemake to it."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.text = json.dumps(values, sort_keys=True)

    def __str__(self) -> str:
        return self.text


def config_source(
    workflow_files: Iterable[str | Path],
    command_line_files: Iterable[str | Path] = (),
    overrides: bool = False,
    replaced: bool = False,
) -> str:
    """What a merged config came from, for its error messages, in Snakemake's merge order: the
    Snakefile's ``configfile:`` files (``workflow.configfiles`` less the command line's; none
    when ``replaced``), then each ``--configfile``, then ``--config`` when the command line set
    keys. Paths under the working directory are shown relative, each once."""

    def shown(path: str | Path) -> str:
        absolute = Path(path).absolute()
        return (
            str(absolute.relative_to(Path.cwd()))
            if absolute.is_relative_to(Path.cwd())
            else str(absolute)
        )

    command_line = [shown(path) for path in command_line_files]
    own = [] if replaced else [n for n in map(shown, workflow_files) if n not in command_line]
    names = list(dict.fromkeys(own + command_line)) or ["config.yaml"]
    return " + ".join(names + (["--config"] if overrides else []))


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
