"""The whole embedded pipeline through Snakemake, as the README's first command runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .helpers import copy_workflow, dry_run, run_snakemake

SECRET = "hf_SECRETtokenNeverWritten0123456789"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("embedded"))
    run_snakemake(
        workdir,
        "--profile",
        "profiles/local",
        "--cores",
        "2",
        extra_env={"HF_TOKEN": SECRET, "HUGGING_FACE_HUB_TOKEN": SECRET},
    )
    return workdir


def _metrics(workdir: Path, stage: str, test_set: str = "test") -> dict:
    return json.loads((workdir / f"results/eval/tiny/{stage}/{test_set}/metrics.json").read_text())


def test_every_stage_and_test_set_is_evaluated_and_reported(embedded: Path) -> None:
    for stage in ("base", "sft", "grpo"):
        for test_set in ("test", "test_paraphrased", "test_refactored"):
            metrics = _metrics(embedded, stage, test_set)
            assert metrics["model"] == "tiny" and metrics["stage"] == stage
            assert metrics["n"] > 0
        assert (embedded / f"results/reports/tiny/{stage}.html").stat().st_size > 1000
    summary = (embedded / "results/reports/summary.html").read_text()
    markdown = (embedded / "results/reports/summary.md").read_text()
    for text in (summary, markdown):
        assert "tiny" in text and "always-invalid" in text.lower().replace(" ", "-")
    assert list((embedded / "results/reports/plots").glob("*.png"))


def test_sft_teaches_the_answer_format(embedded: Path) -> None:
    metrics = _metrics(embedded, "sft")
    assert metrics["parse_rate"] >= 0.95, metrics["parse_rate"]


def test_training_manifests_trace_their_inputs(embedded: Path) -> None:
    for stage in ("sft", "grpo"):
        manifest = json.loads((embedded / f"results/models/tiny/{stage}/manifest.json").read_text())
        assert manifest["stage"] == stage
        assert manifest["data"]["train"]["sha256"]
        assert manifest["global_step"] == manifest["max_steps"]
        run = json.loads((embedded / f"results/models/tiny/{stage}/training_run.json").read_text())
        assert run["provenance"]["versions"]["trl"] and run["train_runtime_s"] > 0
    history = json.loads((embedded / "results/models/tiny/grpo/log_history.json").read_text())
    assert any("reward" in entry for entry in history)


def test_second_run_has_nothing_to_do(embedded: Path) -> None:
    assert dry_run(embedded, "--profile", "profiles/local") == {}


# README's promise, row by row: an edit reruns exactly what it can change. The operational keys
# (settings.OPERATIONAL_KEYS) reach their jobs apart from the params; stages and test sets decide
# which jobs exist, so only the reports that list them are redone.
REPORTS = {"summary": 1, "all": 1}
RERUNS = {
    "evaluate.progress_interval_s": ("evaluate:\n      progress_interval_s: 7", {}),
    "evaluate.chunk_size": ("evaluate:\n      chunk_size: 17", {}),
    "sft.logging_steps": ("sft:\n      logging_steps: 3", {}),
    "sft.save_steps": ("sft:\n      save_steps: 3", {}),
    "grpo.save_steps": ("grpo:\n      save_steps: 3", {}),
    "grpo.progress_interval_s": ("grpo:\n      progress_interval_s: 5", {}),
    "resources.grpo.runtime": ("resources:\n      grpo: {runtime: 45}", {}),
    "stages without base": ("stages: [sft, grpo]", REPORTS),
    "evaluate.test_sets": (
        "evaluate:\n      test_sets: [test, test_paraphrased]",
        {"report_stage": 3, **REPORTS},
    ),
    "grpo.learning_rate": (
        "grpo:\n      learning_rate: 0.002",
        {"grpo": 1, "evaluate": 3, "report_stage": 1, **REPORTS},
    ),
}


@pytest.mark.parametrize("edit", list(RERUNS))
def test_an_edit_reruns_exactly_what_it_can_change(embedded: Path, edit: str) -> None:
    text, expected = RERUNS[edit]
    name = "edit-" + edit.replace(" ", "-") + ".yaml"
    (embedded / name).write_text(f"models:\n  tiny:\n    {text}\n")
    args = ["--configfile", "config.yaml", "profiles/local/embedded.yaml", name]
    assert dry_run(embedded, "--profile", "profiles/local", *args) == expected


@contextmanager
def _set_aside(path: Path) -> Iterator[None]:
    """``path`` is gone for the block's length, then back where it was (mtime kept)."""
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        yield
    finally:
        aside.rename(path)


def test_a_manifest_whose_adapter_is_gone_is_not_up_to_date(embedded: Path) -> None:
    manifest = "results/models/tiny/sft/manifest.json"
    with _set_aside(embedded / "results/models/tiny/sft/adapter"):
        proc = run_snakemake(embedded, "--profile", "profiles/local", "-n", check=False)
        # the command the message gives plans SFT again and everything made from it
        forced = dry_run(embedded, "--profile", "profiles/local", "--forcerun", manifest)
    assert proc.returncode != 0
    assert (
        f"{manifest} lists results/models/tiny/sft/adapter, which is gone: rerun with "
        f"--forcerun {manifest} to train the stage again" in proc.stdout + proc.stderr
    )
    assert forced == {
        "sft": 1,
        "grpo": 1,
        "evaluate": 6,
        "report_stage": 2,
        "summary": 1,
        "all": 1,
    }, forced


def test_a_missing_manifest_does_not_leave_stale_results_up_to_date(embedded: Path) -> None:
    """The state a GRPO job leaves when it fails after a change: Snakemake deleted its manifest,
    and the evaluations and reports of the earlier model are still there. Snakemake alone would
    call them up to date and run nothing; the DAG stops and names the command that rebuilds."""
    path = "results/models/tiny/grpo/manifest.json"
    with _set_aside(embedded / path):
        proc = run_snakemake(embedded, "--profile", "profiles/local", "-n", check=False)
        by_file = dry_run(embedded, "--profile", "profiles/local", "--forcerun", path)
        by_rule = dry_run(embedded, "--profile", "profiles/local", "--forcerun", "grpo")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{path} is missing (its job failed after a change, or it was deleted)" in out
    assert "results/eval/tiny/grpo/test/metrics.json" in out
    assert f"Rerun with --forcerun {path} to rebuild it" in out
    expected = {"grpo": 1, "evaluate": 3, "report_stage": 1, "summary": 1, "all": 1}
    assert by_file == expected, by_file
    assert by_rule == expected, by_rule


def test_changing_grpo_settings_reruns_only_grpo_and_what_follows(embedded: Path) -> None:
    change = "models:\n  tiny:\n    grpo:\n      learning_rate: 0.002\n"
    (embedded / "change.yaml").write_text(change)
    counts = dry_run(
        embedded,
        "--profile",
        "profiles/local",
        "--configfile",
        "config.yaml",
        "profiles/local/embedded.yaml",
        "change.yaml",
    )
    assert counts == {"grpo": 1, "evaluate": 3, "report_stage": 1, "summary": 1, "all": 1}, counts


def test_unseen_grpo_prompts_rerun_only_grpo_prompts_and_what_follows(embedded: Path) -> None:
    """format.grpo_prompts reaches GRPO's train format job alone, as an input (SFT's rows):
    SFT's rows, SFT and the test sets are not rerun."""
    change = "models:\n  tiny:\n    format:\n      grpo_prompts: unseen\n"
    (embedded / "unseen.yaml").write_text(change)
    args = ["--configfile", "config.yaml", "profiles/local/embedded.yaml", "unseen.yaml"]
    counts = dry_run(embedded, "--profile", "profiles/local", *args)
    assert counts == {
        "format": 1,
        "grpo": 1,
        "evaluate": 3,
        "report_stage": 1,
        "summary": 1,
        "all": 1,
    }, counts
    shown = run_snakemake(
        embedded, "--profile", "profiles/local", *args, "-n", "-p", "--forcerun", "format"
    )
    assert "--exclude results/data/tiny/sft/train.jsonl" in shown.stdout + shown.stderr


def grpo_prompt_commands(embedded: Path, name: str, setting: str) -> tuple[str, list[str]]:
    """Set ``setting`` in the tiny model's format block: only GRPO's train prompts and what
    follows rerun. Returns the format commands a forced dry run prints: GRPO's train one, and
    the others."""
    (embedded / name).write_text(f"models:\n  tiny:\n    format:\n      {setting}\n")
    args = ["--configfile", "config.yaml", "profiles/local/embedded.yaml", name]
    counts = dry_run(embedded, "--profile", "profiles/local", *args)
    assert counts == {
        "format": 1,
        "grpo": 1,
        "evaluate": 3,
        "report_stage": 1,
        "summary": 1,
        "all": 1,
    }, counts
    shown = run_snakemake(
        embedded, "--profile", "profiles/local", *args, "-n", "-p", "--forcerun", "format"
    )
    commands = [line for line in (shown.stdout + shown.stderr).splitlines() if "--fmt" in line]
    grpo_train = [line for line in commands if "--output results/data/tiny/grpo/train" in line]
    assert len(grpo_train) == 1, commands
    return grpo_train[0], [line for line in commands if line not in grpo_train]


def test_grpo_balance_reruns_only_grpo_prompts_and_what_follows(embedded: Path) -> None:
    """format.grpo_balance reaches GRPO's train format job alone, as its `balance`: SFT's
    rows, SFT and the test sets are not rerun (the tiny model's samples keep the natural label
    rate; GRPO's prompts are balanced)."""
    grpo_train, others = grpo_prompt_commands(embedded, "balanced.yaml", "grpo_balance: true")
    assert '"balance": true' in grpo_train
    assert others and all('"balance": false' in line for line in others)


def test_grpo_relations_reach_grpo_prompts_alone(embedded: Path) -> None:
    """format.grpo_relations is in GRPO's train format job's params and no other job's: the
    format rule's command is unchanged for every job (no code trigger)."""
    relations = "grpo_relations: [collider, non-parent ancestor]"
    grpo_train, others = grpo_prompt_commands(embedded, "relations.yaml", relations)
    assert '"grpo_relations": ["collider", "non-parent ancestor"]' in grpo_train
    assert others and not any("grpo_relations" in line for line in others)


def test_tensorboard_shows_every_training_stage_side_by_side(embedded: Path) -> None:
    """`tensorboard --logdir results/models`: one run per model and stage, read back with
    TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    runs = EventMultiplexer().AddRunsFromDirectory(str(embedded / "results/models"))
    runs.Reload()
    assert set(runs.Runs()) == {"tiny/sft/tensorboard", "tiny/grpo/tensorboard"}
    expected = {"sft": ("train/loss", 60, 5), "grpo": ("train/reward", 10, 1)}
    for stage, (tag, steps, every) in expected.items():
        events = runs.Scalars(f"tiny/{stage}/tensorboard", tag)
        assert [e.step for e in events] == list(range(every, steps + 1, every)), stage


def test_reports_show_completions_and_answers(embedded: Path) -> None:
    grpo = (embedded / "results/reports/tiny/grpo.html").read_text()
    assert "Completions GRPO rewarded" in grpo
    assert "Highest (green) and lowest (red) advantage per step range" in grpo
    assert "<th>correctness</th><th>format</th>" in grpo
    assert grpo.count('<tr class="good">') >= 3 and grpo.count('<tr class="bad">') >= 3
    for stage in ("base", "sft", "grpo"):
        html = (embedded / f"results/reports/tiny/{stage}.html").read_text()
        assert "Right (green) and wrong (red) answers per relation on test," in html
    assert "oracle&#x27;s trace" in grpo  # the reasoning prompt: the oracle's trace beside


def test_changing_tracking_reruns_nothing(embedded: Path) -> None:
    (embedded / "tracking.yaml").write_text("tracking: {report_to: none, log_completions: false}\n")
    args = ["--configfile", "config.yaml", "profiles/local/embedded.yaml", "tracking.yaml"]
    assert dry_run(embedded, "--profile", "profiles/local", *args) == {}


def test_snakemake_report_builds(embedded: Path) -> None:
    run_snakemake(embedded, "--profile", "profiles/local", "--report", "report.zip")
    assert (embedded / "report.zip").stat().st_size > 10_000


def test_no_token_reaches_logs_manifests_or_reports(embedded: Path) -> None:
    for path in (embedded / "results").rglob("*"):
        if path.is_file() and path.suffix in {".json", ".jsonl", ".log", ".html", ".md", ".tsv"}:
            assert SECRET not in path.read_text(errors="replace"), path
