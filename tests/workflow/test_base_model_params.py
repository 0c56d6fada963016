"""The base_model job depends on the model's own block only, not on format or training settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlcausality.settings.config import base_model_settings
from rlcausality.settings.validation import validate_config

from .helpers import REPO, copy_workflow, dry_run, run_snakemake

TARGET = "results/data/tiny/sft/train.jsonl"  # corpus -> tiny base model -> format
SMALL = {
    "run": ["tiny"],
    "data": {"generate": {"num_variables": [2, 3], "robustness": False}},
    "defaults": {"evaluate": {"test_sets": ["test"]}},
}


def _args(workdir: Path, change: dict) -> tuple[str, ...]:
    (workdir / "small.yaml").write_text(yaml.safe_dump(SMALL))
    (workdir / "change.yaml").write_text(yaml.safe_dump(change))
    return ("--configfile", "config.yaml", "small.yaml", "change.yaml")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("base_params"))
    run_snakemake(workdir, "--cores", "1", TARGET, *_args(workdir, {}))
    return workdir


def test_a_format_change_reformats_without_rebuilding_the_base_model(workdir: Path) -> None:
    assert dry_run(workdir, TARGET, *_args(workdir, {})) == {}
    change = {"models": {"tiny": {"format": {"max_train_samples": 50}}}}
    assert dry_run(workdir, TARGET, *_args(workdir, change)) == {"format": 1}


def test_a_training_change_leaves_the_base_model(workdir: Path) -> None:
    change = {"models": {"tiny": {"grpo": {"beta": 0.1}, "sft": {"learning_rate": 0.01}}}}
    assert dry_run(workdir, TARGET, *_args(workdir, change)) == {}


def test_a_change_of_the_tiny_dims_rebuilds_it(workdir: Path) -> None:
    change = {"models": {"tiny": {"tiny": {"hidden_size": 32}}}}
    assert dry_run(workdir, TARGET, *_args(workdir, change)) == {"base_model": 1, "format": 1}


def test_base_model_settings_are_the_model_block() -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate_config(config)
    gguf = base_model_settings(config, "smollm2-135m")
    assert gguf == {
        "model": {
            "name": "smollm2-135m",
            "source": "gguf",
            "family": "llama",
            "gguf": config["models"]["smollm2-135m"]["gguf"],
        }
    }
    assert set(base_model_settings(config, "tiny")["model"]) == {
        "name", "source", "family", "tiny"
    }  # fmt: skip
