"""Outputs that never lie: atomic files and directories, readers that name file and line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlcausality.io import (
    DataError,
    atomic_directory,
    atomic_open,
    read_jsonl,
    write_json,
    write_jsonl,
)


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    write_jsonl(target, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(target, rows())
    assert [json.loads(line) for line in target.read_text().splitlines()] == [{"a": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_new_file_is_absent_until_complete(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "metrics.json"
    with atomic_open(target) as handle:
        handle.write("{}")
        assert not target.exists()
    assert target.read_text() == "{}"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_sigkill_mid_write_leaves_no_output(tmp_path: Path) -> None:
    target = tmp_path / "big.jsonl"
    script = (
        "import time\n"
        "from rlcausality.io import write_jsonl\n"
        "def rows():\n"
        "    for i in range(10**9):\n"
        "        if i == 1000: print('writing', flush=True)\n"
        "        yield {'i': i}\n"
        "        if i > 1000: time.sleep(0.01)\n"
        f"write_jsonl({str(target)!r}, rows())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not target.exists()


def test_atomic_directory_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "adapter"
    with atomic_directory(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(ValueError), atomic_directory(target) as tmp:
        (tmp / "weights").write_text("v2-partial")
        raise ValueError("crash")
    assert (target / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    with atomic_directory(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ('{"a": 1}\n{"a": \n', 2, "not valid JSON"),
        ('{"a": 1}\n\n[1, 2]\n', 3, "expected a JSON object, got list"),
    ],
)
def test_read_jsonl_names_file_and_line(tmp_path: Path, content: str, line: int, what: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"rows\.jsonl:{line}: {what}"):
        list(read_jsonl(path))


def test_write_json_is_sorted_and_readable(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"b": 1, "a": Path("x")})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": "x", "b": 1}
