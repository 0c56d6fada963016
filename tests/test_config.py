"""Config validation: every broken config is caught at parse time, naming the key and the fix."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlcausality.settings.config import (
    ConfigError,
    config_source,
    corpus_splits,
    model_stages,
    resolve_model,
    stage_settings,
)
from rlcausality.settings.validation import validate_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_shipped_config_is_valid(config: dict[str, Any]) -> None:
    validate_config(config)
    assert config["data"]["generate"]["seed"] == 0  # schema defaults filled in


def test_resolution_order(config: dict[str, Any]) -> None:
    validate_config(config)
    qwen = resolve_model(config, "qwen2.5-1.5b")
    assert qwen["sft"]["lora"] == {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": None}
    assert qwen["sft"]["gradient_accumulation_steps"] == 32  # recipe default
    deepseek = resolve_model(config, "deepseek-r1-7b")
    assert deepseek["grpo"]["init"] == "base"
    assert deepseek["model"]["quantization"] == "4bit"
    assert model_stages(config, "deepseek-r1-7b") == ["base", "grpo"]
    assert model_stages(config, "phi-3.5-mini") == ["base", "sft", "grpo"]
    assert deepseek["resources"]["grpo"]["gpus"] == 2
    assert deepseek["resources"]["sft"]["gpus"] == 1  # shared default
    assert qwen["model"]["trust_remote_code"] is False


def test_stage_settings_slice_excludes_other_stages(config: dict[str, Any]) -> None:
    validate_config(config)
    sliced = stage_settings(config, "tiny", "grpo")
    assert set(sliced) == {"model", "grpo"}


def test_corpus_splits(config: dict[str, Any]) -> None:
    validate_config(config)
    assert corpus_splits(config) == [
        "test",
        "train",
        "validation",
        "test_paraphrased",
        "test_refactored",
    ]


def test_hub_source_yields_the_configured_splits(config: dict[str, Any]) -> None:
    config["data"]["source"] = "hub"
    config["data"]["hub"] = {
        "splits": {
            "train": "train",
            "test": "test",
            "test_paraphrased": "perturbation_by_paraphrasing",
        }
    }
    for model in config["models"].values():
        model.setdefault("evaluate", {})["test_sets"] = ["test", "test_paraphrased"]
    validate_config(config)
    assert corpus_splits(config) == ["test", "test_paraphrased", "train"]
    assert config["data"]["hub"]["id"] == "causalnlp/corr2cause"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(cfg: dict[str, Any]) -> None:
        *parents, last = path.split("/" if "/" in path else ".")
        node = cfg
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(cfg: dict[str, Any]) -> None:
        *parents, last = path.split("/" if "/" in path else ".")
        node = cfg
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown top-level key", _set("modles", {}), "(top level): Additional properties"),
    ("run names a missing model", _set("run", ["gpt-9"]), "run: 'gpt-9' is not a key of models"),
    ("run is not a list", _set("run", "tiny"), "run: 'tiny' is not of type 'array'"),
    ("unknown data source", _set("data.source", "s3"), "data.source: 's3' is not one of"),
    (
        "num_variables too large",
        _set("data.generate.num_variables", [2, 9]),
        "data.generate.num_variables.1: 9 is greater than the maximum of 6",
    ),
    (
        "num_variables reversed",
        _set("data.generate.num_variables", [5, 3]),
        "data.generate.num_variables: [5, 3] has min > max",
    ),
    (
        "unknown naming",
        _set("data.generate.naming", "random"),
        "data.generate.naming: 'random' is not one of",
    ),
    (
        "splits do not sum to 1",
        _set("data.generate.splits", {"train": 0.8, "test": 0.5}),
        "data.generate.splits: fractions add up to 1.3",
    ),
    (
        "split without test",
        _set("data.generate.splits", {"train": 1.0}),
        "data.generate.splits: 'test' is a required property",
    ),
    ("file source without paths", _set("data.source", "file"), "data.file.train: missing"),
    ("negative seed", _set("data.generate.seed", -1), "data.generate.seed: -1 is less than"),
    (
        "model without family",
        _delete("models.tiny.family"),
        "models.tiny: 'family' is a required property",
    ),
    (
        "unknown family",
        _set("models.tiny.family", "gpt2"),
        "models.tiny.family: 'gpt2' is not a known family",
    ),
    (
        "unknown source",
        _set("models.tiny.source", "ftp"),
        "models.tiny.source: 'ftp' is not one of",
    ),
    (
        "hub model without id",
        _delete("models/qwen2.5-1.5b/id"),
        "models.qwen2.5-1.5b.id: missing; source 'hub' needs a hub id",
    ),
    (
        "gguf model without gguf block",
        _set("models.tiny.source", "gguf"),
        "models.tiny.gguf: missing",
    ),
    (
        "bad quantization",
        _set("models.deepseek-r1-7b.quantization", "3bit"),
        "models.deepseek-r1-7b.quantization: '3bit' is not one of",
    ),
    (
        "typo in an sft key",
        _set("models.tiny.sft.learnig_rate", 0.1),
        "models.tiny.sft: Additional properties are not allowed ('learnig_rate' was unexpected)",
    ),
    (
        "learning rate as text",
        _set("defaults.sft.learning_rate", "2e-5"),
        "defaults.sft.learning_rate: '2e-5' is not of type 'number'",
    ),
    (
        "zero LoRA rank",
        _set("models.tiny.sft.lora", {"r": 0}),
        "models.tiny.sft.lora.r: 0 is less than the minimum of 1",
    ),
    (
        "dropout above one",
        _set("models.tiny.sft.lora", {"dropout": 1.5}),
        "models.tiny.sft.lora.dropout: 1.5 is greater than the maximum of 1",
    ),
    ("max_steps zero", _set("models.tiny.sft.max_steps", 0), "models.tiny.sft.max_steps: 0"),
    (
        "unknown deepspeed stage",
        _set("defaults.grpo.deepspeed", "zero4"),
        "defaults.grpo.deepspeed: 'zero4' is not one of",
    ),
    (
        "one generation",
        _set("models.tiny.grpo.num_generations", 1),
        "models.tiny.grpo.num_generations: 1 is less than the minimum of 2",
    ),
    (
        "batch not divisible by generations",
        _set("models.tiny.grpo.num_generations", 3),
        "models.tiny.grpo: per_device_train_batch_size × gpus × gradient_accumulation_steps = "
        "4 × 1 × 1 = 4 is not divisible by num_generations = 3",
    ),
    (
        "a pre-pass of one sample",
        _set("models.tiny.grpo.prepass_samples", 1),
        "models.tiny.grpo.prepass_samples: 1 is less than the minimum of 2",
    ),
    (
        "a pre-pass on two GPUs",
        _set("models/phi-3.5-mini/grpo/prepass_samples", 4),
        "models.phi-3.5-mini.grpo.prepass_samples: the pre-pass runs in one process and GRPO "
        "has 2 GPUs (resources.grpo.gpus)",
    ),
    (
        "a pre-pass under ZeRO-3",
        lambda cfg: (
            _set("models/qwen2.5-1.5b/grpo/prepass_samples", 4)(cfg),
            _set("models/qwen2.5-1.5b/grpo/deepspeed", "zero3")(cfg),
        ),
        "models.qwen2.5-1.5b.grpo.prepass_samples: under DeepSpeed ZeRO-3 the weights are "
        "partitioned until the trainer starts",
    ),
    (
        "unknown init",
        _set("models.tiny.grpo.init", "dpo"),
        "models.tiny.grpo.init: 'dpo' is not one of ['sft', 'base']",
    ),
    (
        "init sft without an sft stage",
        _set("models.tiny.stages", ["base", "grpo"]),
        "models.tiny.grpo.init: 'sft' but the model's stages ['base', 'grpo'] have no sft",
    ),
    (
        "unknown reward",
        _set("models.tiny.grpo.rewards", ["correctness", "length"]),
        "models.tiny.grpo.rewards: 'length' is not a known reward",
    ),
    (
        "weights do not match rewards",
        _set("models.tiny.grpo.reward_weights", [1.0]),
        "models.tiny.grpo.reward_weights: 1 weight(s) for 3 reward(s)",
    ),
    (
        "unknown test set",
        _set("models.tiny.evaluate.test_sets", ["test", "test_hard"]),
        "models.tiny.evaluate.test_sets: 'test_hard' is not a split of the corpus",
    ),
    (
        "robustness sets named without robustness",
        lambda cfg: (
            _set("data.generate.robustness", False)(cfg),
            _set("models.tiny.evaluate.test_sets", ["test", "test_paraphrased"])(cfg),
        ),
        "models.tiny.evaluate.test_sets: 'test_paraphrased' is not a split of the corpus",
    ),
    (
        "unknown stage",
        _set("models.tiny.stages", ["base", "dpo"]),
        "models.tiny.stages.1: 'dpo' is not one of",
    ),
    (
        "unknown eval prompt format",
        _set("models.tiny.evaluate.prompt", {"base": "cot"}),
        "models.tiny.evaluate.prompt.base: 'cot' is not one of ['sft', 'grpo']",
    ),
    (
        "negative GPUs",
        _set("models.tiny.resources.sft", {"gpus": -1}),
        "models.tiny.resources.sft.gpus: -1 is less than the minimum of 0",
    ),
    (
        "zero memory",
        _set("defaults.resources.evaluate", {"mem_mb": 0}),
        "defaults.resources.evaluate.mem_mb: 0 is less than the minimum of 1",
    ),
    (
        "runtime as text",
        _set("models/phi-3.5-mini/resources/grpo", {"runtime": "10h"}),
        "models.phi-3.5-mini.resources.grpo.runtime: '10h' is not of type 'integer'",
    ),
    (
        "unknown resource key",
        _set("models.tiny.resources.sft", {"gpu": 1}),
        "models.tiny.resources.sft: Additional properties are not allowed ('gpu' was unexpected)",
    ),
    (
        "model name with shell characters",
        _set("models", {"evil; rm -rf ~": {}}),
        "models: 'evil; rm -rf ~' does not match",
    ),
    (
        "trust_remote_code as text",
        _set("models.tiny.trust_remote_code", "yes"),
        "models.tiny.trust_remote_code: 'yes' is not of type 'boolean'",
    ),
    (
        "temperature negative",
        _set("models.tiny.evaluate.temperature", -0.1),
        "models.tiny.evaluate.temperature: -0.1 is less than the minimum of 0",
    ),
    (
        "vLLM rollouts for a 4-bit base (trl#4973)",
        _set("models.deepseek-r1-7b.grpo.use_vllm", True),
        "models.deepseek-r1-7b.grpo.use_vllm: true with quantization '4bit' is not supported",
    ),
    (
        "vLLM evaluation of a 4-bit base",
        _set("models.deepseek-r1-7b.evaluate.use_vllm", True),
        "models.deepseek-r1-7b.evaluate.use_vllm: true with quantization '4bit'",
    ),
    (
        "an empty run list",
        _set("run", []),
        "run: empty, so nothing would be built; name the models to build, e.g. run: [",
    ),
    (
        "tiny dims whose heads do not divide the hidden size",
        _set("models.tiny.tiny.hidden_size", 66),
        "models.tiny.tiny.hidden_size: 66 is not a multiple of num_heads 4; each head gets "
        "hidden_size / num_heads dimensions (e.g. hidden_size: 64)",
    ),
    (
        "tiny dims whose KV heads do not divide the heads",
        _set("models.tiny.tiny.num_kv_heads", 3),
        "models.tiny.tiny.num_kv_heads: 3 does not divide num_heads 4",
    ),
    (
        "tiny dims with an odd head size",
        _set("models.tiny.tiny.hidden_size", 20),
        "models.tiny.tiny: hidden_size / num_heads = 5 is odd; rotary position embeddings",
    ),
    (
        "seconds_per_step not positive",
        _set("models.tiny.resources.sft.seconds_per_step", 0),
        "models.tiny.resources.sft.seconds_per_step: 0 is less than or equal to the minimum",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_the_key(
    config: dict[str, Any], case: str, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    broken = copy.deepcopy(config)
    mutate(broken)
    with pytest.raises(ConfigError) as info:
        validate_config(broken)
    message = str(info.value)
    assert message.startswith("config.yaml:"), message
    assert expected in message, message


def test_every_problem_is_reported_once(config: dict[str, Any]) -> None:
    broken = copy.deepcopy(config)
    broken["models"]["tiny"]["grpo"]["rewards"] = ["nope"]
    broken["models"]["tiny"]["grpo"]["reward_weights"] = None
    broken["run"] = ["tiny", "missing"]
    with pytest.raises(ConfigError) as info:
        validate_config(broken)
    assert len(info.value.problems) == 2, info.value.problems


def test_a_local_model_folder_must_exist_when_it_is_built(
    config: dict[str, Any], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    config["models"]["mine"] = {"source": "path", "id": str(missing), "family": "qwen2"}
    validate_config(copy.deepcopy(config))  # not in run: not built, not checked
    config["run"] = ["mine"]
    with pytest.raises(ConfigError) as info:
        validate_config(copy.deepcopy(config))
    assert info.value.problems[0].startswith(f"models.mine.id: {missing} does not exist")
    missing.mkdir()
    with pytest.raises(ConfigError, match=r"models\.mine\.id: .* has no config\.json"):
        validate_config(copy.deepcopy(config))
    (missing / "config.json").write_text("{}")
    validate_config(config)


def test_file_source_names_a_missing_file(
    config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.csv").write_text("input,label\n")
    (tmp_path / "data" / "dev.txt").write_text("")
    config["data"] = {
        "source": "file",
        "file": {"train": "data/train.csv", "test": "data/test.csv", "validation": "data/dev.txt"},
    }
    for model in config["models"].values():
        model.setdefault("evaluate", {})["test_sets"] = ["test"]
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert info.value.problems == [
        f"data.file.train: data/train.csv does not exist (relative to the working directory "
        f"{tmp_path}); fix the path or create the file",
        "data.file.validation: data/dev.txt is neither .csv nor .jsonl",
    ]
    (tmp_path / "data" / "train.csv").write_text("input,label\n")
    config["data"]["file"]["validation"] = "data/test.csv"
    validate_config(config)


def test_test_sets_default_to_every_test_split_of_the_corpus(config: dict[str, Any]) -> None:
    validate_config(config)
    assert resolve_model(config, "qwen2.5-1.5b")["evaluate"]["test_sets"] == [
        "test", "test_paraphrased", "test_refactored",
    ]  # fmt: skip
    config["data"]["generate"]["robustness"] = False
    assert resolve_model(config, "qwen2.5-1.5b")["evaluate"]["test_sets"] == ["test"]


def test_config_source_lists_the_files_in_merge_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    overlay = tmp_path / "profiles" / "demo.yaml"
    # workflow.configfiles: the command line's (absolute) first, then the Snakefile's own.
    workflow_files = [str(overlay), "/elsewhere/x.yaml", "config.yaml"]
    command_line = [str(overlay), "/elsewhere/x.yaml"]
    assert config_source(workflow_files, command_line) == (
        "config.yaml + profiles/demo.yaml + /elsewhere/x.yaml"
    )
    assert config_source(["config.yaml"], overrides=True) == "config.yaml + --config"
    assert config_source(workflow_files, command_line, replaced=True) == (
        "profiles/demo.yaml + /elsewhere/x.yaml"
    )
    assert config_source([]) == "config.yaml"
