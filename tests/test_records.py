"""Snakemake's records of earlier jobs, read back: which files were made from which inputs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from rlcausality import records


def _record(root: Path, output: str, inputs: list[str], max_len: int = 255) -> None:
    """A record laid out as Snakemake's file persistence writes it (long names in parts)."""
    encoded = base64.urlsafe_b64encode(output.encode()).decode()
    parts = [encoded[i : i + max_len - 1] for i in range(0, len(encoded), max_len - 1)]
    parts = ["@" + part for part in parts[:-1]] + [parts[-1]]
    path = root.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rule": "r", "input": inputs}))


def test_files_made_from_a_missing_input_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / ".snakemake/metadata"
    deep = "results/eval/" + "a-long-model-name/" * 20 + "metrics.json"
    _record(root, "results/eval/m/grpo/test/metrics.json", ["results/models/m/grpo/manifest.json"])
    _record(root, deep, ["results/models/m/grpo/manifest.json"], max_len=40)
    _record(root, "results/eval/m/sft/test/metrics.json", ["results/models/m/sft/manifest.json"])
    _record(root, "results/gone.json", ["results/models/m/grpo/manifest.json"])
    (root / "not-base64!").write_text("{}")
    for output in ("results/eval/m/grpo/test/metrics.json", deep):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text("{}")

    index = records.outputs_by_input(root)
    stale = records.made_from("results/models/m/grpo/manifest.json", index)
    assert stale == sorted(["results/eval/m/grpo/test/metrics.json", deep])
    # the SFT evaluation's file is not on disk, nor is results/gone.json
    assert records.made_from("results/models/m/sft/manifest.json", index) == []
    message = records.stale_message("results/models/m/grpo/manifest.json", stale, shown=1)
    assert "and 1 more" in message
    assert "--forcerun results/models/m/grpo/manifest.json" in message


def test_no_records_means_nothing_made(tmp_path: Path) -> None:
    index = records.outputs_by_input(tmp_path / "none")
    assert index == {}
    assert records.made_from("x", index) == []
