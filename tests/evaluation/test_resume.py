"""An evaluation killed with SIGKILL part-way resumes from the chunks it saved.

The evaluate CLI runs as a subprocess on the tiny model, saving every few items; the test kills
it (SIGKILL) once a chunk is on disk, checks that no declared output exists, reruns it with
another chunk size and checks that it resumed and that its predictions equal an uninterrupted
run's of a third chunk size (greedy decoding in the same batches is deterministic, and the
batches do not depend on the chunk size: it is an operational key).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_helpers import eval_settings, item
from process_tree import kill_tree

from rlcausality.evaluation import evaluate
from rlcausality.evaluation.partial import PartialPredictions
from rlcausality.io import read_jsonl, sha256_file, write_jsonl
from rlcausality.settings.config import load_settings

CHUNK = 3
ITEMS = 30
SOURCES = Path(evaluate.__file__).resolve().parents[1]  # the workflow_scripts under test


def test_partial_file_keeps_whole_chunks_and_drops_a_torn_tail(tmp_path):
    path = tmp_path / "partial" / "predictions.jsonl"
    ids = ["a", "b", "c", "d", "e", "f"]
    partial = PartialPredictions(path, "key-1", ids, batch_size=2)
    done, message = partial.resume()
    assert done == [] and "starting at item 0" in message
    partial.append([{"id": "a"}, {"id": "b"}])
    partial.append([{"id": "c"}, {"id": "d"}])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"id": "e"}\n{"id": "f", "compl')  # killed mid-chunk: one line torn
    done, message = PartialPredictions(path, "key-1", ids, batch_size=2).resume()
    assert [r["id"] for r in done] == ["a", "b", "c", "d"]  # whole batches only
    assert "4 of 6 items already predicted" in message
    assert len(path.read_text().splitlines()) == 5  # header + 4: the tail is gone
    done, message = PartialPredictions(path, "key-2", ids, batch_size=2).resume()
    assert done == [] and "starting afresh" in message
    assert len(path.read_text().splitlines()) == 1
    partial.remove()
    assert not path.parent.exists()


def _argv(tmp_path: Path, model_dir: Path, out: Path, chunk: int = CHUNK) -> list[str]:
    data = tmp_path / "data" / "test.jsonl"
    if not data.exists():
        write_jsonl(data, [item(i) for i in range(ITEMS)])
    settings = eval_settings(
        model_dir, batch_size=CHUNK, chunk_size=chunk, progress_interval_s=0,
        max_new_tokens={"sft": 96, "grpo": 96},
    )  # fmt: skip
    return [
        "--settings", json.dumps(settings), "--stage", "base", "--test-set", "test",
        "--data", str(data), "--predictions", str(out / "predictions.jsonl"),
        "--metrics", str(out / "metrics.json"), "--threads", "1",
    ]  # fmt: skip


def _run(argv: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "OMP_NUM_THREADS": "1"}
    with open(log, "w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "rlcausality.evaluation.evaluate", *argv],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _saved_lines(path: Path) -> int:
    with contextlib.suppress(OSError):
        return len([line for line in path.read_text().split("\n")[1:-1] if line])
    return 0


def test_sigkill_mid_evaluation_resumes(tmp_path, tiny_model_dir):
    out = tmp_path / "eval"
    argv = _argv(tmp_path, tiny_model_dir, out)
    partial = out / "partial" / "predictions.jsonl"
    proc = _run(argv, tmp_path / "killed.log")
    deadline = time.monotonic() + 300
    while _saved_lines(partial) < CHUNK and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail(f"finished before it could be killed:\n{(tmp_path / 'killed.log').read_text()}")
    kill_tree(proc)
    saved = _saved_lines(partial)
    assert CHUNK <= saved < ITEMS
    assert not (out / "metrics.json").exists() and not (out / "predictions.jsonl").exists()

    rerun = _run(_argv(tmp_path, tiny_model_dir, out, chunk=7), tmp_path / "resumed.log")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "resumed.log").read_text()
    log = (tmp_path / "resumed.log").read_text()
    found = re.search(r"resume: (\d+) of 30 items already predicted", log)
    assert found, log
    resumed = int(found.group(1))
    assert resumed >= CHUNK and resumed % CHUNK == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_items"] == resumed and metrics["n"] == ITEMS
    assert re.search(r"progress evaluate: item \d+/30 \(.*\) .* s/item, elapsed .*, ETA", log)
    assert not partial.parent.exists()  # removed once the declared outputs were written

    whole = tmp_path / "whole"
    evaluate.main(_argv(tmp_path, tiny_model_dir, whole, chunk=ITEMS))
    expected = list(read_jsonl(whole / "predictions.jsonl"))
    assert list(read_jsonl(out / "predictions.jsonl")) == expected
    assert json.loads((whole / "metrics.json").read_text())["resumed_items"] == 0


def test_a_run_killed_after_its_last_chunk_only_writes_the_outputs(tmp_path, tiny_model_dir, capfd):
    whole = tmp_path / "whole"
    evaluate.main(_argv(tmp_path, tiny_model_dir, whole))
    expected = list(read_jsonl(whole / "predictions.jsonl"))
    out = tmp_path / "eval"
    argv = _argv(tmp_path, tiny_model_dir, out)
    args = evaluate.parse_args(argv)
    settings = load_settings(args.settings)  # parsed by the shared --settings reader
    rows = evaluate.select_rows(list(read_jsonl(args.data)), None)
    job = evaluate.job_of(args)
    partial = evaluate.open_partial(job, settings, rows, sha256_file(args.data), None)
    partial.resume()
    partial.append(expected)  # every chunk saved, killed before the outputs were written
    capfd.readouterr()
    evaluate.main(argv)
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"resume: {ITEMS} of {ITEMS} items already predicted" in capfd.readouterr().err
    assert metrics["resumed_items"] == ITEMS
    assert list(read_jsonl(out / "predictions.jsonl")) == expected
    assert (
        metrics["generation"]["eos_token_id"]
        == json.loads((whole / "metrics.json").read_text())["generation"]["eos_token_id"]
    )
