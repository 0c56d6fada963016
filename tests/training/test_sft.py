"""SFT on tiny models: answers after training, Phi-3 LoRA targets, QLoRA, resume, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from rlcausality.io import read_jsonl
from rlcausality.models.families import LLAMA_STYLE_TARGETS, PHI3_TARGETS
from rlcausality.task import parse_answer
from rlcausality.training import lora, sft
from rlcausality.training import stage as training

PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' and message['content'] %}"
    "{{ '<|system|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)


def run_sft(settings: dict[str, Any], train: Path, out: Path, *extra: str) -> dict[str, Any]:
    argv = ["--settings", json.dumps(settings), "--train", str(train)]
    argv += ["--output-dir", str(out), "--manifest", str(out / "manifest.json"), *extra]
    sft.main(argv)
    return json.loads((out / "manifest.json").read_text())


def greedy_answers(model_dir: str, rows: list[dict[str, Any]], max_new_tokens: int = 4) -> list:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    texts = [
        tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
        for r in rows
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)


def test_sft_answers_parse_on_held_out_items(sft_run: dict, formatted: dict[str, Path]) -> None:
    rows = list(read_jsonl(formatted["test.sft"]))
    replies = greedy_answers(sft_run["merged_path"], rows)
    parsed = [parse_answer(reply, style="sft") for reply in replies]
    rate = sum(p is not None for p in parsed) / len(parsed)
    assert rate >= 0.95, replies[:10]


def facts(manifest: dict) -> dict:
    """The run facts beside a manifest (training_run.json)."""
    return json.loads(Path(manifest["training_run_path"]).read_text())


def test_sft_manifest_and_outputs(sft_run: dict) -> None:
    expected = {
        "model", "stage", "base_model", "adapter_path", "merged_path", "init", "settings",
        "data", "global_step", "max_steps", "log_history_path", "training_run_path",
        "adapter_sha256", "precision", "provenance",
    }  # fmt: skip
    assert expected <= set(sft_run)
    # what varies between identical runs is beside the manifest, not in it
    assert not {"train_runtime_s", "resumed_from", "train_loss"} & set(sft_run)
    assert set(sft_run["provenance"]) == {"settings_hash", "model_source"}
    run = facts(sft_run)
    assert run["train_runtime_s"] > 0 and run["provenance"]["versions"]["trl"]
    assert not {"logging_steps", "save_steps", "progress_interval_s"} & set(
        sft_run["settings"]["sft"]
    )
    assert sft_run["stage"] == "sft" and sft_run["init"] == "base"
    assert sft_run["global_step"] == sft_run["max_steps"] == 60
    assert sft_run["precision"] == "fp32"
    assert sft_run["data"]["train"]["rows"] == 320 and len(sft_run["data"]["train"]["sha256"]) == 64
    assert sft_run["adapted_modules"] == sorted(LLAMA_STYLE_TARGETS)
    assert (Path(sft_run["adapter_path"]) / "adapter_config.json").is_file()
    assert (Path(sft_run["merged_path"]) / "model.safetensors").is_file()
    history = json.loads(Path(sft_run["log_history_path"]).read_text())
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 12 and losses[-1] < losses[0]


@pytest.fixture(scope="module")
def phi3_base(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> Path:
    """A random-init Phi3ForCausalLM with tiny dims and a Phi-3 style chat template."""
    from transformers import AutoTokenizer, Phi3Config, Phi3ForCausalLM

    out = tmp_path_factory.mktemp("phi3") / "base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]}
    )
    tokenizer.eos_token = "<|end|>"
    tokenizer.chat_template = PHI3_TEMPLATE
    config = Phi3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    Phi3ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_sft_phi3_adapts_phi3_modules(
    phi3_base: Path, model_factory, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    model = model_factory(phi3_base, family="phi3", name="phi3-tiny")
    settings = make_settings(model, "sft", max_steps=2, save_steps=2, logging_steps=1)
    manifest = run_sft(
        settings, formatted["train.sft"], tmp_path, "--eval", str(formatted["test.sft"])
    )
    assert manifest["family"] == "phi3"
    assert manifest["adapted_modules"] == sorted(PHI3_TARGETS)
    assert manifest["global_step"] == 2
    assert manifest["data"]["eval"]["rows"] == 64
    history = json.loads(Path(manifest["log_history_path"]).read_text())
    assert any("eval_loss" in entry for entry in history)


def test_family_targets_must_exist(phi3_base: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(phi3_base)
    with pytest.raises(
        ValueError, match=r"\['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj'\]"
    ):
        lora.check_targets_exist(model, list(LLAMA_STYLE_TARGETS))
    lora.check_targets_exist(model, list(PHI3_TARGETS))
    from rlcausality.models.families import get_family

    with pytest.raises(ValueError, match="model_type"):
        lora.check_family(model, get_family("qwen2"))


def test_sft_qlora_4bit(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    model = {**tiny_model, "quantization": "4bit"}
    settings = make_settings(
        model, "sft", max_steps=2, save_steps=2, logging_steps=1, gradient_checkpointing=True
    )
    manifest = run_sft(settings, formatted["train.sft"], tmp_path)
    assert manifest["quantization"] == "4bit"
    assert manifest["merged_path"] is None  # never merge into a quantised base
    assert manifest["adapted_modules"] == sorted(LLAMA_STYLE_TARGETS)
    assert manifest["global_step"] == 2
    history = json.loads(Path(manifest["log_history_path"]).read_text())
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in history if "loss" in e)


def test_sft_resumes_from_newest_complete_checkpoint(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    settings = make_settings(
        tiny_model, "sft", max_steps=6, save_steps=3, logging_steps=1, merge=False
    )
    first = run_sft(settings, formatted["train.sft"], tmp_path)
    assert facts(first)["resumed_from"] is None and first["global_step"] == 6
    checkpoints = tmp_path / "checkpoints"
    assert {p.name for p in checkpoints.glob("checkpoint-*")} == {"checkpoint-3", "checkpoint-6"}
    # Simulate a kill while checkpoint-6 was being written, before any final output existed.
    for name in ("adapter", "manifest.json", "log_history.json"):
        path = tmp_path / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    (checkpoints / "checkpoint-6" / "trainer_state.json").unlink()
    assert training.latest_checkpoint(checkpoints) == checkpoints / "checkpoint-3"

    second = run_sft(settings, formatted["train.sft"], tmp_path)
    assert facts(second)["resumed_from"] == str(checkpoints / "checkpoint-3")
    assert second["global_step"] == second["max_steps"] == 6
    history = json.loads(Path(second["log_history_path"]).read_text())
    assert [e["step"] for e in history if "loss" in e] == [1, 2, 3, 4, 5, 6]


def test_checkpoints_of_other_settings_or_rows_are_set_aside_not_resumed(
    tiny_model: dict, make_settings, formatted: dict[str, Path], tmp_path: Path
) -> None:
    """A rerun after a change (Snakemake reruns the job) must not resume the old run's
    checkpoints: it would train the new settings from the old run's state, or not at all."""
    settings = make_settings(tiny_model, "sft", max_steps=4, save_steps=2, logging_steps=1)
    settings["sft"]["merge"] = False
    run_sft(settings, formatted["train.sft"], tmp_path)
    finished = (tmp_path / "manifest.json").read_bytes()
    checkpoints = tmp_path / "checkpoints"
    assert json.loads((checkpoints / "run.json").read_text())["settings"]["learning_rate"]

    # How often to log is not what is trained: the finished checkpoint is resumed.
    settings["sft"]["logging_steps"] = 2
    same = run_sft(settings, formatted["train.sft"], tmp_path)
    assert facts(same)["resumed_from"] == str(checkpoints / "checkpoint-4")
    # the same weights: the same manifest, byte for byte (what reads it has nothing to redo)
    assert (tmp_path / "manifest.json").read_bytes() == finished
    # A checkpoint of the run's last step is loaded, not trained one step further.
    assert same["global_step"] == same["max_steps"] == 4
    assert not (checkpoints / "checkpoint-5").exists()
    assert facts(same)["train_loss"] is None
    saved = load_file(str(Path(same["adapter_path"]) / "adapter_model.safetensors"))
    last = load_file(str(checkpoints / "checkpoint-4" / "adapter_model.safetensors"))
    assert saved.keys() == last.keys()
    assert all(torch.equal(saved[k], last[k]) for k in saved)

    settings["sft"]["learning_rate"] = settings["sft"]["learning_rate"] * 2
    changed = run_sft(settings, formatted["train.sft"], tmp_path)
    assert facts(changed)["resumed_from"] is None and changed["global_step"] == 4
    stale = tmp_path / "checkpoints.stale-1"
    assert (stale / "run.json").is_file() and (stale / "checkpoint-4").is_dir()

    rows = list(read_jsonl(formatted["train.sft"]))[:-1]  # other rows
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in rows))
    again = run_sft(settings, other, tmp_path)
    assert facts(again)["resumed_from"] is None
    assert (tmp_path / "checkpoints.stale-2" / "checkpoint-4").is_dir()


def test_checkpoint_discovery(tmp_path: Path) -> None:
    assert training.latest_checkpoint(tmp_path / "missing") is None

    def make(step: int, state: str | None = "{}", weights: bool = True) -> None:
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if state is not None:
            (path / "trainer_state.json").write_text(state)
        if weights:
            (path / "adapter_model.safetensors").write_bytes(b"x")

    make(2)
    make(10)
    make(11, weights=False)
    make(12, state=None)
    make(13, state='{"truncated')
    (tmp_path / "checkpoint-99.tmp").mkdir()
    assert training.latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"  # not lexical


def test_deepspeed_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert training.deepspeed_config("zero2") is None  # CPU: never DeepSpeed
    assert training.deepspeed_config(None) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(training.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="deepspeed package is not installed"):
        training.deepspeed_config("zero3")
    for name in ("zero2", "zero3"):
        config = json.loads((training.DEEPSPEED_DIR / f"{name}.json").read_text())
        assert config["zero_optimization"]["stage"] == int(name[-1])


def test_quantised_base_never_gets_zero3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(training.importlib.util, "find_spec", lambda name: object())
    for name, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)  # under torchrun, as the rules start DeepSpeed
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert training.deepspeed_config("zero3").endswith("zero3.json")
    assert training.deepspeed_config("zero3", quantized=True).endswith("zero2.json")


def test_configured_models_give_valid_trainer_configs(tmp_path: Path) -> None:
    """Every model of config.yaml: its sft/grpo settings build SFTConfig / GRPOConfig."""
    import yaml

    from rlcausality.settings import config as cfg
    from rlcausality.settings.validation import validate_config
    from rlcausality.training import grpo

    config_file = Path(__file__).resolve().parents[2] / "config.yaml"
    config = validate_config(yaml.safe_load(config_file.read_text()))
    for name in config["models"]:
        sft_settings = cfg.load_settings(cfg.stage_settings(config, name, "sft"))
        precision = lora.stage_precision(dataclasses.replace(sft_settings.model, dtype="auto"))
        args = sft.sft_config(sft_settings, str(tmp_path), precision, has_eval=False)
        assert args.max_length == sft_settings.sft.max_length
        assert args.bf16 is False and args.use_cpu is True
        grpo_settings = cfg.load_settings(cfg.stage_settings(config, name, "grpo"))
        gargs = grpo.grpo_config(grpo_settings, str(tmp_path), precision, 1024)
        assert gargs.num_generations == grpo_settings.grpo.num_generations
        assert gargs.generation_batch_size % gargs.num_generations == 0
        assert gargs.beta == grpo_settings.grpo.beta
