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

from rlcausality.models.sources import BLOCKS
from rlcausality.settings import config as rlconfig
from rlcausality.settings import validation as rlvalidation
from rlcausality.settings.blocks import (
    Evaluate,
    Format,
    Grpo,
    Lora,
    Model,
    NewTokens,
    Resource,
    Sft,
    StagePrompts,
)
from rlcausality.settings.config import ConfigError, load_settings
from rlcausality.settings.fields import block_schema, flagged, setting

REPO = Path(__file__).resolve().parents[1]
MODEL = {"name": "m", "source": "path", "family": "qwen2", "path": "m", "stages": ["base"]}
SECTIONS = {"format": Format, "sft": Sft, "grpo": Grpo, "evaluate": Evaluate}


@pytest.fixture
def config() -> dict[str, Any]:
    return rlvalidation.validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))


def _names(block: type) -> set[str]:
    return {field.name for field in dataclasses.fields(block)}


def test_the_schema_is_generated_from_the_declarations() -> None:
    defaults = rlconfig.schema()["properties"]["defaults"]["properties"]
    for name, block in SECTIONS.items():
        assert set(defaults[name]["properties"]) == _names(block), name
    grpo = defaults["grpo"]["properties"]
    # the type from the hint, the constraints from setting(...), inherited by a restated default
    assert grpo["learning_rate"] == {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
    assert grpo["deepspeed"] == {"type": ["string", "null"], "enum": ["zero2", "zero3", None]}
    assert grpo["vllm_gpu_memory_utilization"]["type"] == "number"  # omit_none: no null
    assert defaults["sft"]["properties"]["lora"]["properties"]["r"] == {
        "type": "integer",
        "minimum": 1,
    }
    entry = rlconfig.schema()["properties"]["models"]["additionalProperties"]
    own = set(entry["properties"]) - set(rlconfig.SETTING_SECTIONS) - set(BLOCKS)
    # name and path come from resolve_model, hub from models.hub.pin, blocks are BLOCKS
    assert _names(Model) - {"name", "path", "hub", "blocks"} == own
    assert entry["required"] == ["source", "family"]
    tracking = rlconfig.schema()["properties"]["tracking"]["properties"]
    assert tracking["report_to"]["default"] == "tensorboard"


def test_a_section_given_in_part_gets_the_recipe_values() -> None:
    settings = load_settings(
        {"model": MODEL, "sft": {"lora": {"r": 8}}, "grpo": {}, "resources": {"sft": {"gpus": 2}}}
    )
    assert settings.sft.lora == Lora(r=8, alpha=128, dropout=0.05, target_modules=None)
    assert settings.sft.learning_rate == 2.0e-5 and settings.grpo.learning_rate == 5.0e-7
    assert settings.grpo.lr_scheduler_type == "linear" and settings.sft.deepspeed == "zero2"
    assert settings.resources.sft == Resource(gpus=2, mem_mb=32000, runtime=480, cpus=8)
    assert rlconfig.recipe_defaults()["grpo"]["rewards"] == ["correctness", "format"]
    # the evaluation prompts and budgets are nested blocks with their own recipe values
    assert Evaluate().prompt == StagePrompts(base="grpo", sft="sft", grpo="grpo")
    assert Evaluate().max_new_tokens == NewTokens(sft=8, grpo=2048)


@pytest.mark.parametrize(("block", "config_class"), [(Sft, "SFTConfig"), (Grpo, "GRPOConfig")])
def test_trainer_keys_are_the_trl_configs_fields(block: type, config_class: str) -> None:
    import trl

    fields = {f.name for f in dataclasses.fields(getattr(trl, config_class))}
    trainer = set(flagged(block, "trainer"))
    assert trainer and trainer <= fields, trainer - fields
    assert block().trainer_arguments()["learning_rate"] == block().learning_rate


def test_a_new_trainer_key_is_one_declaration() -> None:
    """One field declares a key: its schema, its recipe value and its trainer argument."""

    @dataclasses.dataclass(frozen=True)
    class Extended(Grpo):
        max_grad_norm: float = setting(0.5, trainer=True, exclusiveMinimum=0)

    assert block_schema(Extended)["properties"]["max_grad_norm"] == {
        "type": "number",
        "exclusiveMinimum": 0,
    }
    assert Extended.from_dict({}).trainer_arguments()["max_grad_norm"] == 0.5
    assert Extended.from_dict({"max_grad_norm": 2.0}).trainer_arguments()["max_grad_norm"] == 2.0


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
        [sys.executable, "-m", "rlcausality.training.sft", "--settings", settings,
         "--train", "t.jsonl",
         "--output-dir", str(tmp_path), "--manifest", str(tmp_path / "m.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "sft: missing; the job reads it" in proc.stderr, proc.stderr
