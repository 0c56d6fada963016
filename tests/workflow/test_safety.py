"""Config values never reach a shell unquoted; remote code is never trusted by default."""

from __future__ import annotations

from pathlib import Path

import yaml

from .helpers import copy_workflow, run_snakemake

HOSTILE_IDS = [
    "x'; touch pwned-quote; echo '",
    "$(touch pwned-subshell)",
    "`touch pwned-backtick`",
    'x"; touch pwned-double; echo "',
    "x && touch pwned-and",
    "models/x y; touch pwned-space",
]


def test_hostile_model_ids_execute_nothing(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    for index, model_id in enumerate(HOSTILE_IDS):
        config["models"][f"evil{index}"] = {"source": "path", "id": model_id, "family": "qwen2"}
    config["data"]["generate"]["num_variables"] = [2, 3]
    config["run"] = ["tiny"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/data/evil{i}/sft/test.jsonl" for i in range(len(HOSTILE_IDS))]
    proc = run_snakemake(workdir, *targets, "--cores", "2", "--keep-going", check=False)
    assert proc.returncode != 0  # the tokenizer cannot load from such a path: the jobs fail
    assert not list(workdir.rglob("pwned*")), list(workdir.rglob("pwned*"))
    assert not list(Path.cwd().glob("pwned*"))
    for index, model_id in enumerate(HOSTILE_IDS):
        log = (workdir / f"results/logs/format/evil{index}/sft/test.log").read_text()
        assert model_id in log or repr(model_id)[1:-1] in log, log[-2000:]
        assert not (workdir / targets[index]).exists()


def test_trust_remote_code_is_off_unless_set() -> None:
    from rlcausality.settings.config import resolve_model
    from rlcausality.settings.validation import validate_config

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())
    validate_config(config)
    for name in config["models"]:
        assert resolve_model(config, name)["model"]["trust_remote_code"] is False
