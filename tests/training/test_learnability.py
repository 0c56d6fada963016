"""A model trained on a small fixed slice reproduces its training answers.

"Loss goes down" passes with a masked-out answer, a prompt that differs between training and
evaluation, or a parser that reads the wrong thing; this does not: 24 corpus items (12 valid),
formatted, trained with ``rlcausality.training.sft`` and read back through
``rlcausality.evaluation.evaluate`` (generation, answer parsing, metrics), must come back with ≥ 95%
of their labels.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from rlcausality.data import formatting
from rlcausality.evaluation import evaluate
from rlcausality.io import read_json, write_jsonl

SLICE = 12  # items per label


def corpus_slice(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``SLICE`` valid and ``SLICE`` invalid rows of ``rows``, a seeded choice."""
    rng = random.Random(0)
    valid = [row for row in rows if row["label"] == 1]
    invalid = [row for row in rows if row["label"] == 0]
    return rng.sample(valid, SLICE) + rng.sample(invalid, SLICE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, corpus_model, memorize) -> dict:
    root = tmp_path_factory.mktemp("learnability")
    corpus, model = corpus_model(root)
    write_jsonl(root / "slice.jsonl", corpus_slice(corpus))
    fmt_settings = {"model": model, "format": {"max_length": 4096, "max_train_samples": None}}
    formatting.main(
        ["--settings", json.dumps(fmt_settings), "--fmt", "sft",
         "--input", str(root / "slice.jsonl"), "--output", str(root / "sft.jsonl"),
         "--stats", str(root / "sft.stats.json")]
    )  # fmt: skip
    manifest = memorize(model, root / "sft.jsonl", root / "sft", max_steps=150,
                        per_device_train_batch_size=8)  # fmt: skip
    return {"root": root, "model": model, "manifest": manifest}


def test_trained_items_come_back_with_their_labels(trained: dict) -> None:
    root: Path = trained["root"]
    settings = {
        "model": trained["model"],
        "evaluate": {"max_new_tokens": {"sft": 4, "grpo": 4}, "batch_size": 24},
    }
    evaluate.main(
        ["--settings", json.dumps(settings), "--stage", "sft", "--test-set", "train_slice",
         "--data", str(root / "sft.jsonl"), "--manifest", str(trained["manifest"]),
         "--predictions", str(root / "predictions.jsonl"), "--metrics", str(root / "m.json"),
         "--threads", "1"]
    )  # fmt: skip
    metrics = read_json(root / "m.json")
    assert metrics["n"] == 2 * SLICE and metrics["parse_rate"] == 1.0
    assert metrics["accuracy"] >= 0.95, metrics["confusion"]
