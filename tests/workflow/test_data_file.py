"""data.source file: the user's CSV/JSONL files are inputs of the corpus job."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from rlcausality.data.corr2cause.generate import generate_corpus

from .helpers import copy_workflow, dry_run, run_snakemake

TARGET = "results/eval/baselines/test.json"  # corpus -> baselines: cheap, CPU only


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["input", "label"])
        writer.writeheader()
        writer.writerows(rows)


def _config(files: dict[str, str]) -> dict:
    return {
        "run": ["tiny"],
        "data": {"source": "file", "file": files},
        "defaults": {"evaluate": {"test_sets": ["test"]}},
    }


def _configfiles(workdir: Path, files: dict[str, str]) -> tuple[str, ...]:
    (workdir / "file_data.yaml").write_text(yaml.safe_dump(_config(files)))
    return ("--configfile", "config.yaml", "file_data.yaml")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("data_file"))
    corpus = generate_corpus({"num_variables": [2, 3], "robustness": False})
    rows = [{"input": r["input"], "label": r["label"]} for r in corpus["train"]]
    (workdir / "data").mkdir()
    write_csv(workdir / "data/train.csv", rows[:12])
    write_csv(workdir / "data/test.csv", rows[12:24])
    files = {"train": "data/train.csv", "test": "data/test.csv"}
    run_snakemake(workdir, "--cores", "1", TARGET, *_configfiles(workdir, files))
    return workdir


def test_editing_a_data_file_reruns_the_corpus_and_what_follows(workdir: Path) -> None:
    files = {"train": "data/train.csv", "test": "data/test.csv"}
    args = _configfiles(workdir, files)
    assert dry_run(workdir, TARGET, *args) == {}
    train = workdir / "data/train.csv"
    with open(train, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    write_csv(train, rows[:2])  # 12 rows -> 2
    assert dry_run(workdir, TARGET, *args) == {"corpus": 1, "baselines": 1}
    run_snakemake(workdir, "--cores", "1", TARGET, *args)
    stats = json.loads((workdir / "results/data/corr2cause/stats.json").read_text())
    assert stats["splits"]["train"]["items"] == 2


def test_a_missing_data_file_fails_the_dry_run_naming_it(workdir: Path) -> None:
    files = {"train": "data/train.csv", "test": "data/tset.csv"}
    proc = run_snakemake(workdir, "-n", TARGET, *_configfiles(workdir, files), check=False)
    assert proc.returncode != 0
    assert "data.file.test: data/tset.csv does not exist (relative to the working directory" in (
        proc.stdout + proc.stderr
    )
