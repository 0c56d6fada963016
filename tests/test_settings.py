"""Typed settings: the schema's keys, the recipe's values, exact round trips, named errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlcausality import config as rlconfig
from rlcausality import validation as rlvalidation
from rlcausality.config import ConfigError, load_settings
from rlcausality.models.sources import BLOCKS
from rlcausality.settings import (
    Evaluate,
    Format,
    Grpo,
    Lora,
    Model,
    NewTokens,
    Resource,
    Resources,
    Sft,
    StagePrompts,
)

REPO = Path(__file__).resolve().parents[1]
MODEL = {"name": "m", "source": "path", "family": "qwen2", "path": "m", "stages": ["base"]}
SECTIONS = {"format": Format, "sft": Sft, "grpo": Grpo, "evaluate": Evaluate}


@pytest.fixture
def config() -> dict[str, Any]:
    return rlvalidation.validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))


def _names(block: type) -> set[str]:
    return {field.name for field in dataclasses.fields(block)}


def _required(block: type) -> set[str]:
    return {f.name for f in dataclasses.fields(block) if f.default is dataclasses.MISSING}


def test_the_fields_are_the_schemas_keys() -> None:
    defs = rlconfig.schema()["$defs"]
    for name, block in {**SECTIONS, "lora": Lora, "resource": Resource}.items():
        assert _names(block) == set(defs[name]["properties"]), name
    assert _names(Resources) == set(defs["resources"]["properties"])
    evaluate = defs["evaluate"]["properties"]
    assert _names(StagePrompts) == set(evaluate["prompt"]["properties"])
    assert _names(NewTokens) == set(evaluate["max_new_tokens"]["properties"])
    entry = rlconfig.schema()["properties"]["models"]["additionalProperties"]["properties"]
    own = set(entry) - set(rlconfig.SETTING_SECTIONS) - set(BLOCKS)
    # name and path come from resolve_model, hub from models.hub.pin, blocks are BLOCKS
    assert _names(Model) - {"name", "path", "hub", "blocks"} == own


def test_the_recipe_is_the_one_home_of_defaults() -> None:
    recipe = rlconfig.recipe_defaults()
    for name, block in SECTIONS.items():
        assert _required(block) == set(recipe[name]), name  # a default here would be a second
    assert _required(Lora) == set(recipe["sft"]["lora"]) == set(recipe["grpo"]["lora"])
    assert _required(Resource) == set(recipe["resources"]["sft"])
    every_block = (*SECTIONS.values(), Lora, Resource, Resources, StagePrompts, NewTokens)
    for block in every_block:
        defaults = [f.default for f in dataclasses.fields(block)]
        assert all(d is dataclasses.MISSING or d is None for d in defaults), block


def test_every_stage_slice_round_trips_exactly(config: dict[str, Any]) -> None:
    for name in config["models"]:
        for stage in ("format", "sft", "grpo", "evaluate"):
            sliced = rlconfig.job_settings(config, name, stage)
            # the params and --operational are the job's settings split in two
            params = rlconfig.stage_settings(config, name, stage)
            operational = rlconfig.operational_settings(config, name, stage)
            assert rlconfig.deep_merge(params, operational) == sliced
            assert "stages" not in params["model"] and "stages" in operational["model"]
            typed = load_settings(json.loads(json.dumps(sliced)), needs=(stage,))
            assert typed.to_dict() == rlconfig.complete_settings(sliced)
            assert json.dumps(typed.to_dict(), sort_keys=True) == json.dumps(sliced, sort_keys=True)
        resolved = rlconfig.resolved_settings(config, name)
        assert resolved.to_dict() == rlconfig.resolve_model(config, name)


def test_settings_are_frozen_and_read_as_attributes(config: dict[str, Any]) -> None:
    settings = rlconfig.resolved_settings(config, "deepseek-r1-7b")
    assert settings.grpo.init == "base" and settings.model.quantized
    assert settings.grpo.rewards == ("correctness", "format")
    assert settings.resources.of("grpo").gpus == 2 and settings.of("grpo") is settings.grpo
    assert settings.evaluate.prompt.of("base") == settings.evaluate.prompt.base
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.grpo.beta = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.model.blocks["gguf"] = {}  # type: ignore[index]


def test_a_missing_or_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"model": {"name": "m"}, "sft": {"lora": {"rank": 8}}, "extra": {}})
    assert info.value.source == "--settings"
    assert info.value.problems == [
        "extra: unknown key; check its spelling",
        "model.source: missing",
        "model.family: missing",
        "model.path: missing",
        "sft.lora.rank: unknown key; check its spelling",
    ]
    with pytest.raises(ConfigError, match=r"grpo\.lora: expected a mapping, got int"):
        load_settings({"model": MODEL, "grpo": {"lora": 8}})
    with pytest.raises(ConfigError, match=r"model\.blocks: unknown key"):
        load_settings({"model": {**MODEL, "blocks": {}}})


def test_a_job_without_its_section_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sft: missing; the job reads it"):
        load_settings({"model": MODEL, "grpo": {}}, needs=("sft",))
    settings = load_settings({"model": MODEL, "grpo": {}})
    with pytest.raises(ConfigError, match=r"sft: missing; these settings have no 'sft' block"):
        settings.of("sft")


def test_an_entry_point_names_the_missing_section(tmp_path: Path) -> None:
    settings = json.dumps({"model": MODEL, "grpo": {}})
    proc = subprocess.run(
        [sys.executable, "-m", "rlcausality.sft", "--settings", settings, "--train", "t.jsonl",
         "--output-dir", str(tmp_path), "--manifest", str(tmp_path / "m.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "sft: missing; the job reads it" in proc.stderr, proc.stderr
