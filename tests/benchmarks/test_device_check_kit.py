"""The GPU check's committed job settings (`benchmarks/device_check/settings/`) are what
`prep.py` makes from today's config.yaml: a recipe change (a reward, a key) reaches the next
device run instead of a stale copy of the recipe."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmarks.device_check import prep
from rlcausality.settings.config import load_settings

REPO = Path(__file__).resolve().parents[2]
KIT = REPO / "benchmarks" / "device_check"
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text("utf-8"))
STEPS = prep.step_settings(CONFIG)


def test_committed_step_settings_are_prep_output_of_the_current_config() -> None:
    committed = sorted(path.stem for path in (KIT / "settings").glob("*.json"))
    assert committed == sorted(STEPS)
    stale = [
        name
        for name, settings in STEPS.items()
        if (KIT / "settings" / f"{name}.json").read_text("utf-8") != prep.settings_text(settings)
    ]
    remake = "PYTHONPATH=workflow_scripts:. python benchmarks/device_check/prep.py --corpus ..."
    assert not stale, f"stale GPU-check settings {stale}: remake them with `{remake}`"


def test_each_step_loads_as_a_job_would_and_grpo_uses_the_recipe_rewards() -> None:
    loaded = {name: load_settings(settings) for name, settings in STEPS.items()}
    for name, settings in loaded.items():
        assert settings.model.path.startswith(prep.MODEL_ROOT), name
        assert (settings.model.quantization == "4bit") == ("_q4" in name)
    grpo = loaded["grpo"].grpo
    assert grpo is not None and "trace" in grpo.rewards
    assert list(grpo.rewards) == list(CONFIG["defaults"]["grpo"]["rewards"])
