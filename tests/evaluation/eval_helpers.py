"""Helpers shared by the evaluation tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import random
import zlib
from pathlib import Path
from typing import Any

from rlcausality.evaluation.metrics import compute_metrics
from rlcausality.evaluation.uncertainty import add_intervals
from rlcausality.io import write_json, write_jsonl

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
RELATIONS = ("parent", "child", "non-parent ancestor", "non-child descendant", "collider")
SYSTEM = "You are an expert in causal reasoning."


def item(index: int) -> dict[str, Any]:
    """A formatted test item (prompt in the SFT style); every fifth item is valid."""
    relation = RELATIONS[index % len(RELATIONS)]
    text = (
        f"Premise: Suppose there is a closed system of {2 + index % 3} variables. "
        f"A correlates with B. Hypothesis: A is a {relation} of B. Case {index}."
    )
    return {
        "id": f"test-{index:03d}",
        "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
        "label": 1 if index % 5 == 0 else 0,
        "relation": relation,
        "num_variables": 2 + index % 3,
    }


def eval_settings(model_dir: Path, **evaluate: Any) -> dict[str, Any]:
    """The shape of ``config.stage_settings(config, model, "evaluate")`` for the tiny model."""
    settings = {
        "test_sets": ["test"],
        "prompt": {"base": "sft", "sft": "sft", "grpo": "grpo"},
        "batch_size": 4,
        "max_new_tokens": {"sft": 3, "grpo": 5},
        "temperature": 0.0,
        "top_p": 1.0,
        "max_samples": None,
        "use_vllm": False,
    }
    settings.update(evaluate)
    model = {
        "name": "tiny-test",
        "source": "tiny",
        "path": str(model_dir),
        "family": "qwen2",
        "system_prompt": None,
        "quantization": "none",
        "dtype": "auto",
        "trust_remote_code": False,
        "revision": None,
        "stages": ["base", "sft", "grpo"],
    }
    return {"model": model, "evaluate": settings}


MODELS = ("qwen-test", "phi-test")
STAGES = ("base", "sft", "grpo")
TEST_SETS = ("test", "test_paraphrased", "test_refactored")
MISSING = ("phi-test", "grpo", "test_refactored")  # left out of the reports on purpose
REPORT_RELATIONS = (*RELATIONS, "confounder")


def synthetic_item(i: int) -> dict[str, Any]:
    """Item ``i`` of the synthetic test sets: the same label whatever the model; six items per
    class (``class_id``)."""
    return {
        "id": f"item-{i:03d}",
        "class_id": f"c{i // 6:02d}",
        "label": int(random.Random(i).random() < 0.17),
        "relation": REPORT_RELATIONS[i % len(REPORT_RELATIONS)],
        "num_variables": 2 + i % 5,
    }


def synthetic_predictions(skill: float, seed: int, n: int = 120) -> list[dict[str, Any]]:
    """Predictions that are right with probability ``skill`` (some unparsed)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = synthetic_item(i)
        roll = rng.random()
        label = row["label"]
        answer = None if roll < 0.05 else (label if roll < skill else 1 - label)
        rows.append({**row, "answer": answer, "completion_tokens": rng.randint(1, 40)})
    return rows


def write_metrics(root: Path, model: str, stage: str, test_set: str, skill: float) -> Path:
    """A metrics.json shaped like evaluate's, from synthetic predictions (written beside it)."""
    seed = zlib.crc32(f"{model}:{stage}:{test_set}".encode())
    predictions = synthetic_predictions(skill, seed)
    metrics = add_intervals(compute_metrics(predictions), predictions)
    metrics.update(
        {
            "model": model,
            "stage": stage,
            "test_set": test_set,
            "data": {
                "path": f"results/data/{model}/sft/{test_set}.jsonl",
                "sha256": "ab" * 32,
                "rows": 120,
                "evaluated": 120,
                "max_samples": None,
                "subset_seed": 0,
            },
            "manifest": None
            if stage == "base"
            else {
                "path": f"results/models/{model}/{stage}/manifest.json",
                "sha256": "cd" * 32,
                "stage": stage,
                "global_step": 10,
                "settings_hash": "1234abcd5678ef90",
                "provenance": {},
            },
            "generation": {"backend": "transformers", "max_new_tokens": 8, "temperature": 0.0},
            "provenance": {
                "settings_hash": "0f0f0f0f0f0f0f0f",
                "git_commit": None,
                "created": "2026-01-01T00:00:00+00:00",
            },
        }
    )
    path = root / "eval" / model / stage / test_set / "metrics.json"
    write_json(path, metrics)
    write_jsonl(path.with_name("predictions.jsonl"), predictions)
    return path


def write_log_histories(root: Path, model: str) -> dict[str, Path]:
    sft = [{"loss": 2.0 / (s + 1), "step": s, "learning_rate": 1e-3} for s in range(1, 11)]
    sft.append({"train_loss": 0.5, "step": 10})
    grpo = [
        {"reward": s / 10, "rewards/correctness/mean": s / 12, "rewards/format/mean": s / 15,
         "step": s}
        for s in range(1, 11)
    ]  # fmt: skip
    paths = {}
    for stage, history in (("sft", sft), ("grpo", grpo)):
        paths[stage] = root / "models" / model / stage / "log_history.json"
        write_json(paths[stage], history)
    return paths
