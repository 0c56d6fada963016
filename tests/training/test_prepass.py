"""GRPO's pre-pass (``grpo.prepass_samples``): the prompts on which the starting policy's
sampled answers disagree, chosen before training, kept in the stage folder, read back on a
resumed run."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from rlcausality.data import formatting
from rlcausality.io import read_json, read_jsonl, write_jsonl
from rlcausality.training import grpo, prepass

ROWS = 12  # GRPO train prompts the pre-pass visits


def run_grpo(settings: dict[str, Any], train: Path, out: Path, *extra: str) -> dict[str, Any]:
    argv = ["--settings", json.dumps(settings), "--train", str(train)]
    argv += ["--output-dir", str(out), "--manifest", str(out / "manifest.json"), *extra]
    grpo.main(argv)
    return json.loads((out / "manifest.json").read_text())


def format_rows(model: dict, fmt: str, rows: Path, out: Path, **fmt_settings: Any) -> Path:
    settings = {"model": model, "format": {"max_length": 4096, **fmt_settings}}
    formatting.main(
        ["--settings", json.dumps(settings), "--fmt", fmt, "--input", str(rows),
         "--output", str(out), "--stats", str(out.with_suffix(".stats.json"))]
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def reasoner(tmp_path_factory: pytest.TempPathFactory, corpus_model, memorize) -> dict:
    """A tiny model taught the reasoning format (the oracle's trace, then ``Therefore:``) on a
    few 3- and 4-variable items, so that its sampled answers are sometimes right and sometimes
    not; and GRPO prompts of the same items."""
    root = tmp_path_factory.mktemp("prepass")
    corpus, model = corpus_model(root)
    rng = random.Random(0)
    valid = rng.sample([row for row in corpus if row["label"] == 1], ROWS // 2)
    write_jsonl(root / "slice.jsonl", valid + [row for row in corpus if row["label"] == 0][:6])
    sft_rows = format_rows(model, "trace", root / "slice.jsonl", root / "sft.jsonl")
    manifest = memorize(model, sft_rows, root / "sft", max_steps=120, per_device_train_batch_size=4)
    train = format_rows(model, "grpo", root / "slice.jsonl", root / "grpo.jsonl")
    return {"model": model, "sft_manifest": manifest, "train": train}


def grpo_settings(make_settings, model: dict, **override: Any) -> dict[str, Any]:
    return make_settings(
        model, "grpo", init="sft", max_steps=2, max_completion_length=96, temperature=0.5,
        prepass_samples=4, **override,
    )  # fmt: skip


def test_prompts_needed_counts_the_prompts_the_steps_read() -> None:
    from trl import GRPOConfig

    def needed(**arguments: Any) -> int:
        config = GRPOConfig(output_dir="unused", use_cpu=True, report_to=[], **arguments)
        return prepass.prompts_needed(config, rows=320)

    # profiles/learn: 50 steps of a generation batch of 8 (2 prompts x 4)
    learn = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}
    assert needed(max_steps=50, num_generations=4, **learn) == 100
    assert needed(max_steps=50, per_device_train_batch_size=8, num_generations=8) == 50
    assert needed(max_steps=500, per_device_train_batch_size=8) == 320  # no more than there are
    assert needed(max_steps=-1, per_device_train_batch_size=8) == 320  # sized in epochs


def test_answers_read_as_grpo_reads_them() -> None:
    texts = [
        "<think>Adjacent: A-B.</think>\n\nTherefore: Yes",
        "<think>Adjacent: A-B.</think>\n\nTherefore: No",
        "<think>Adjacent: A-B. Therefore: Yes",  # the think block never closes: no answer
    ]
    assert prepass.right_answers(texts, 1) == [1, 0, 0]
    assert prepass.right_answers(texts, 0) == [0, 1, 0]
    assert prepass.disagrees([1, 0, 0, 1]) and not prepass.disagrees([1, 1, 1, 1])
    assert not prepass.disagrees([0, 0, 0, 0])


def test_prepass_keeps_the_prompts_whose_answers_disagree(
    reasoner: dict, make_settings, tmp_path: Path
) -> None:
    settings = grpo_settings(make_settings, reasoner["model"])
    init = ["--init-manifest", str(reasoner["sft_manifest"]), "--threads", "1"]
    manifest = run_grpo(settings, reasoner["train"], tmp_path, *init)
    record = read_json(tmp_path / prepass.PREPASS_FILE)
    counts = manifest["data"]["train"]["prepass"]
    rights = {row["id"]: row["right"] for row in record["prompts"]}
    # what it chose is what the answers said: the first kept prompts that disagree, in order
    assert record["needed"] == 2  # 2 steps of one prompt x 4 completions
    assert all(len(r) == 4 for r in rights.values())
    assert record["kept"] == [i for i, r in rights.items() if prepass.disagrees(r)][:2]
    assert 0 < counts["kept"] == len(record["kept"]) == manifest["data"]["train"]["rows"]
    assert counts["visited"] == len(rights) and counts["completions"] == 4 * len(rights)
    assert counts["all_right"] + counts["all_wrong"] + sum(
        prepass.disagrees(r) for r in rights.values()
    ) == len(rights)
    ids = {row["id"] for row in read_jsonl(reasoner["train"])}
    assert set(record["kept"]) <= ids

    # a resumed job reads the choice back instead of sampling again; other settings sample anew
    again = tmp_path / "again"
    again.mkdir()
    saved = dict(record, kept=record["kept"][:1])
    (again / prepass.PREPASS_FILE).write_text(json.dumps(saved))
    assert run_grpo(settings, reasoner["train"], again, *init)["data"]["train"]["rows"] == 1
    other = grpo_settings(make_settings, reasoner["model"], seed=7)
    manifest = run_grpo(other, reasoner["train"], again, *init)
    assert read_json(again / prepass.PREPASS_FILE)["fingerprint"]["grpo"]["seed"] == 7
    assert manifest["data"]["train"]["prepass"]["kept"] == 2


def test_prepass_that_keeps_nothing_names_the_rows(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    """The untrained tiny model never closes a think block: every answer is wrong, so no
    prompt disagrees, and the job stops before training."""
    rows = tmp_path / "grpo.jsonl"
    write_jsonl(rows, list(read_jsonl(formatted["train.grpo"]))[:3])
    settings = make_settings(tiny_model, "grpo", init="base", prepass_samples=2)
    with pytest.raises(ValueError, match=f"{rows}: the pre-pass kept no prompt: on all 3"):
        run_grpo(settings, rows, tmp_path / "out", "--threads", "1")
    assert not (tmp_path / "out" / "manifest.json").exists()
