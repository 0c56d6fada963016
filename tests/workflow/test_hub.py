"""Hub models on compute nodes without internet: downloaded once, pinned to a commit, read offline.

Nothing here reaches the hub: a tiny model is laid out exactly as the hub cache lays it out
(models--ORG--NAME/{blobs,refs/main,snapshots/<commit>}) and found there with HF_HUB_OFFLINE=1,
as snapshot_download finds a model it downloaded before.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlcausality.data.corr2cause.generate import generate_corpus
from rlcausality.io import write_jsonl
from rlcausality.models import hub, loading, tiny
from rlcausality.settings.config import load_settings

from .helpers import REPO, copy_workflow, dry_run, hub_cache, run_snakemake

REPO_ID = "local-org/tiny-hub"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NEWER = "fedcba9876543210fedcba9876543210fedcba98"
PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py"]
REAL = "run=[qwen2.5-1.5b,phi-3.5-mini,deepseek-r1-7b]"
OFFLINE = {"HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny_hub")
    corpus = generate_corpus({"num_variables": [2, 3], "robustness": False})
    write_jsonl(root / "train.jsonl", corpus["train"])
    tiny.build({"model": {"name": "tiny-hub"}}, root / "train.jsonl", root / "model")
    return root / "model"


def _download(
    cache: Path, manifest: Path, revision: str | None = None, patterns: list[str] = PATTERNS
) -> subprocess.CompletedProcess[str]:
    settings = {
        "model": {"name": "tiny-hub", "id": REPO_ID, "revision": revision},
        "hub": {"cache_dir": str(cache), "allow_patterns": patterns},
    }
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow_scripts"), **OFFLINE)
    command = ["-m", "rlcausality.models.hub", "--settings", json.dumps(settings)]
    return subprocess.run(
        [sys.executable, *command, "--manifest", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_download_resolves_main_to_its_commit_offline(tiny_dir: Path, tmp_path: Path) -> None:
    snapshot = hub_cache(tmp_path / "cache", REPO_ID, tiny_dir, COMMIT)
    proc = _download(tmp_path / "cache", tmp_path / "manifest.json")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["commit"] == COMMIT and manifest["requested_revision"] is None
    assert Path(manifest["snapshot"]) == snapshot.resolve()
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(manifest["files"])
    assert "manifest.json" in manifest["files"]  # tiny's own manifest matches *.json


def test_a_pinned_block_loads_the_snapshot_offline(tiny_dir: Path, tmp_path: Path) -> None:
    hub_cache(tmp_path / "cache", REPO_ID, tiny_dir, COMMIT)
    assert _download(tmp_path / "cache", tmp_path / "manifest.json").returncode == 0
    model = {"name": "tiny-hub", "id": REPO_ID, "path": REPO_ID, "revision": None}
    pinned = hub.pinned(model, str(tmp_path / "manifest.json"))
    assert pinned["revision"] == COMMIT and pinned["path"].endswith(f"snapshots/{COMMIT}")
    assert pinned["hub"]["requested_revision"] is None
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # tests/conftest.py: the hub is unreachable
    typed = load_settings(
        {"model": {**pinned, "source": "hub", "family": "qwen2", "stages": ["base"]}}
    )
    tokenizer = loading.load_tokenizer(typed.model)
    loaded = loading.load_model(typed.model)
    assert loaded.config.vocab_size == len(tokenizer)
    assert hub.pinned(model, str(tmp_path / "absent.json")) == model


def test_a_pinned_revision_is_found_without_refs(tiny_dir: Path, tmp_path: Path) -> None:
    hub_cache(tmp_path / "cache", REPO_ID, tiny_dir, COMMIT)
    (tmp_path / "cache" / f"models--{REPO_ID.replace('/', '--')}" / "refs" / "main").unlink()
    proc = _download(tmp_path / "cache", tmp_path / "manifest.json", revision=COMMIT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "manifest.json").read_text())["commit"] == COMMIT


def test_a_snapshot_without_weights_fails_naming_them(tiny_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_dir, tmp_path / "model", ignore=shutil.ignore_patterns("*.safetensors"))
    hub_cache(tmp_path / "cache", REPO_ID, tmp_path / "model", COMMIT)
    proc = _download(tmp_path / "cache", tmp_path / "manifest.json", patterns=["*.json"])
    assert proc.returncode == 1
    assert f"hub model {REPO_ID}@{COMMIT}: the snapshot has no weights" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "manifest.json").exists()


def test_a_model_not_in_the_cache_fails_offline_in_one_line(tmp_path: Path) -> None:
    proc = _download(tmp_path / "cache", tmp_path / "manifest.json")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {REPO_ID}: ") and proc.stderr.count("\n") == 1


# --- the workflow --------------------------------------------------------------------------


def _inputs_of(output: str) -> list[tuple[str, str, str]]:
    """(rule, wildcards, input) of every job a dry-run prints."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if head:
            found = {
                key: (re.search(rf"^\s+{key}: (.*)$", block, re.MULTILINE) or [None, ""])[1]
                for key in ("wildcards", "input")
            }
            jobs.append((head.group(1), found["wildcards"], found["input"]))
    return jobs


def test_real_models_dry_run_downloads_first_and_needs_no_network(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}  # any hub call fails
    proc = run_snakemake(workdir, "-n", "-p", "--config", REAL, extra_env=env)
    jobs = _inputs_of(proc.stdout)
    assert sorted(w for rule, w, _ in jobs if rule == "hub_model") == [
        "model=deepseek-r1-7b", "model=phi-3.5-mini", "model=qwen2.5-1.5b"
    ]  # fmt: skip
    model_jobs = [j for j in jobs if j[0] in ("format", "sft", "grpo", "evaluate")]
    assert len(model_jobs) == 14 + 2 + 3 + 24  # format, sft, grpo, evaluate
    for rule, wildcards, inputs in model_jobs:
        model = re.search(r"model=([^,]+)", wildcards).group(1)
        assert f"results/models/{model}/hub/manifest.json" in inputs, (rule, wildcards)
    entry = r"rlcausality\.\w+\.(?:formatting|sft|grpo|evaluate)"
    commands = re.findall(rf"^Shell command: (.*{entry} .*)$", proc.stdout, re.MULTILINE)
    assert len(commands) == len(model_jobs)
    for command in commands:
        assert command.startswith("HF_HUB_OFFLINE=1 HF_HUB_CACHE=results/hub "), command[:200]


def test_the_download_runs_where_snakemake_runs_under_the_slurm_executor(
    tmp_path: Path, tiny_dir: Path
) -> None:
    # A local rule: no sbatch (none could succeed here), the job runs in the submitting process.
    workdir = copy_workflow(tmp_path / "wf")
    hub_cache(workdir / "results/hub", REPO_ID, tiny_dir, COMMIT)
    (workdir / "tinyhub.yaml").write_text(yaml.safe_dump(_tinyhub_config(workdir)))
    target = "results/models/tinyhub/hub/manifest.json"
    proc = run_snakemake(
        workdir, "--executor", "slurm", "--jobs", "1", target,
        "--configfile", "config.yaml", "tinyhub.yaml", extra_env=OFFLINE,
    )  # fmt: skip
    assert "localrule hub_model:" in proc.stdout + proc.stderr
    assert json.loads((workdir / target).read_text())["commit"] == COMMIT


def test_offline_jobs_false_has_no_download(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "online.yaml").write_text("hub: {offline_jobs: false}\n")
    counts = dry_run(workdir, "--config", REAL, "--configfile", "config.yaml", "online.yaml")
    assert "hub_model" not in counts and counts["sft"] == 2


def _tinyhub_config(workdir: Path) -> dict[str, Any]:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    model = copy.deepcopy(config["models"]["tiny"])
    del model["tiny"]
    model.update({"source": "hub", "id": REPO_ID})
    model["sft"].update({"max_steps": 2, "save_steps": 2})
    model["evaluate"].update({"max_samples": 8})
    return {
        "run": ["tinyhub"],
        "data": {"generate": {"num_variables": [2, 3], "robustness": False}},
        "defaults": {"evaluate": {"test_sets": ["test"]}},
        "models": {"tinyhub": model},
    }


@pytest.fixture(scope="module")
def tinyhub(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A hub model through download, format, SFT and evaluation, the hub unreachable."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tinyhub"))
    hub_cache(workdir / "results/hub", REPO_ID, tiny_dir, COMMIT)
    (workdir / "tinyhub.yaml").write_text(yaml.safe_dump(_tinyhub_config(workdir)))
    target = "results/eval/tinyhub/sft/test/metrics.json"
    run_snakemake(
        workdir, "--cores", "2", "-p", target, "--configfile", "config.yaml", "tinyhub.yaml",
        extra_env=OFFLINE,
    )  # fmt: skip
    return workdir


def test_every_job_of_a_hub_model_records_the_commit(tinyhub: Path) -> None:
    snapshot = f"results/hub/models--local-org--tiny-hub/snapshots/{COMMIT}"
    manifest = json.loads((tinyhub / "results/models/tinyhub/hub/manifest.json").read_text())
    assert (manifest["commit"], manifest["snapshot"]) == (COMMIT, snapshot)
    sft = json.loads((tinyhub / "results/models/tinyhub/sft/manifest.json").read_text())
    assert sft["base_model"] == snapshot
    assert sft["settings"]["model"]["revision"] == COMMIT
    metrics = json.loads((tinyhub / "results/eval/tinyhub/sft/test/metrics.json").read_text())
    for source in (sft["provenance"]["model_source"], metrics["provenance"]["model_source"]):
        assert source["revision"] == COMMIT and source["path"] == snapshot
        assert source["hub"]["requested_revision"] is None and source["hub"]["commit"] == COMMIT
    stats = json.loads((tinyhub / "results/data/tinyhub/sft/test.stats.json").read_text())
    assert stats["rows_out"] > 0
    log = "".join(p.read_text() for p in (tinyhub / ".snakemake/log").glob("*.log"))
    assert "HF_HUB_OFFLINE=1 HF_HUB_CACHE=results/hub python -m rlcausality.training.sft" in log


def test_main_moving_on_the_hub_changes_nothing(tinyhub: Path, tiny_dir: Path) -> None:
    args = ("results/eval/tinyhub/sft/test/metrics.json", "--configfile", "config.yaml")
    assert dry_run(tinyhub, *args, "tinyhub.yaml") == {}
    hub_cache(tinyhub / "results/hub", REPO_ID, tiny_dir, NEWER)  # refs/main -> a newer commit
    assert dry_run(tinyhub, *args, "tinyhub.yaml") == {}
    pinned = _tinyhub_config(tinyhub)
    pinned["models"]["tinyhub"]["revision"] = NEWER
    (tinyhub / "pinned.yaml").write_text(yaml.safe_dump(pinned))
    counts = dry_run(tinyhub, *args, "pinned.yaml")
    assert counts["hub_model"] == 1 and counts["sft"] == 1 and counts["evaluate"] == 1
