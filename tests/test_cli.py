"""Every entry point's shared shape: settings inline or from a file, one-line errors, exit 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlcausality.settings import cli


def test_settings_inline_or_from_a_file(tmp_path: Path) -> None:
    assert cli.json_object('{"a": 1}') == {"a": 1}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"b": 2}))
    assert cli.json_object(str(path)) == {"b": 2}
    assert cli.json_object("null") == {}
    with pytest.raises(argparse.ArgumentTypeError, match="must be a JSON object"):
        cli.json_object("[1]")
    with pytest.raises(argparse.ArgumentTypeError, match="not valid JSON"):
        cli.json_object("{broken")


def test_bad_data_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": "x", "label": 1}\n{"id": "b", "label": 3}\n')
    model = {"name": "m", "source": "path", "family": "qwen2", "path": "unused", "stages": ["base"]}
    settings = {"model": model, "format": {"max_length": 8}}
    proc = subprocess.run(
        [sys.executable, "-m", "rlcausality.data.formatting", "--settings", json.dumps(settings),
         "--fmt", "sft", "--input", str(bad), "--output", str(tmp_path / "o.jsonl"),
         "--stats", str(tmp_path / "o.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {bad}:2: missing column(s) input"], (
        proc.stderr
    )
