"""How far LoRA GRPO moves the policy in a few steps, at several learning rates.

For each rate, GRPO (``rlcausality.training.grpo.run``, the model's settings from config.yaml with
only ``learning_rate``, ``max_steps`` and the output directory changed) runs ``--steps`` steps from
the model's SFT adapter; then the start and the trained policy read the same fixed probe set,
teacher-forced: every probe row's prompt and its oracle trace completion (the ``trace`` rows of
``rlcausality.data.formatting``). Reported per rate:

* ``token_kl``: mean over the completion tokens of KL(start || trained) of the next-token
  distribution (nats per token);
* ``answer_shift``: mean over probe rows of |ΔP(Yes)| at the answer slot (the token after
  ``Therefore:``), P(Yes) normalised over the Yes/No tokens;
* ``lora_delta``: the Frobenius norm of the change of the LoRA weights.

Run from a workflow directory whose SFT stage and formatted data exist (e.g. after the demo)::

    python benchmarks/grpo_lr.py --model smollm2-135m --rates 5e-7 5e-6 5e-5 --steps 8 \
        --probe results/data/smollm2-135m/trace/train.jsonl --probe-rows 32 \
        --threads 2 --out results/grpo_lr.json
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from rlcausality import launch
from rlcausality.data.chat_format import render
from rlcausality.io import read_json, read_jsonl, write_json
from rlcausality.models import loading
from rlcausality.settings import config as rlconfig
from rlcausality.settings import validation as rlvalidation
from rlcausality.settings.blocks import Settings
from rlcausality.task import ANSWER_WORDS
from rlcausality.training import grpo


def probe_rows(path: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` rows of a ``trace`` file, Yes and No alternating where possible."""
    rows = list(read_jsonl(path))
    yes = [r for r in rows if r["label"] == 1]
    no = [r for r in rows if r["label"] == 0]
    mixed = [r for pair in zip(yes, no, strict=False) for r in pair]
    return (mixed + [r for r in rows if r not in mixed])[:count]


def encode(tokenizer: Any, row: dict[str, Any]) -> tuple[torch.Tensor, int, int]:
    """(ids of prompt + completion, first completion index, index of the answer token)."""
    prompt = tokenizer(render(tokenizer, row["prompt"], True), add_special_tokens=False)
    text = row["completion"][0]["content"]
    head = text[: text.rindex("Therefore:") + len("Therefore:")]
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = prompt["input_ids"] + full
    start = len(prompt["input_ids"])
    return torch.tensor([ids]), start, start + len(head_ids)


def answer_ids(tokenizer: Any) -> tuple[int, int]:
    yes = tokenizer(" " + ANSWER_WORDS[1], add_special_tokens=False)["input_ids"][0]
    no = tokenizer(" " + ANSWER_WORDS[0], add_special_tokens=False)["input_ids"][0]
    return yes, no


@torch.inference_mode()
def read_policy(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[tuple]:
    """Per probe row: the next-token log-probabilities over its completion (float16, to keep
    the start policy's reading small while GRPO trains) and P(Yes) at the answer slot."""
    yes, no = answer_ids(tokenizer)
    readings = []
    for row in rows:
        ids, first, answer = encode(tokenizer, row)
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        p_yes = torch.softmax(logp[answer - 1, [yes, no]], -1)[0].item()
        readings.append((logp[first - 1 : ids.shape[1] - 1].half(), p_yes))
    return readings


def compare(start: list[tuple], end: list[tuple]) -> dict[str, float]:
    """Token KL(start || end) over the completions and mean |ΔP(Yes)| at the answer slot."""
    kl_sum, tokens = 0.0, 0
    for (a, _), (b, _) in zip(start, end, strict=True):
        a, b = a.float(), b.float()
        kl_sum += float((a.exp() * (a - b)).sum())
        tokens += a.shape[0]
    shifts = [abs(e[1] - s[1]) for s, e in zip(start, end, strict=True)]
    return {"token_kl": kl_sum / tokens, "answer_shift": sum(shifts) / len(shifts)}


def lora_weights(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def lora_delta(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor]) -> float:
    """The Frobenius norm of the change of the LoRA weights."""
    return math.sqrt(sum(float((end[name] - value).pow(2).sum()) for name, value in start.items()))


def run_rate(
    settings: Settings, rate: float, steps: int, paths: dict[str, str], out: Path
) -> dict[str, Any]:
    """GRPO for ``steps`` steps at ``rate``; the manifest and the time it took."""
    stage = replace(settings.grpo, learning_rate=rate, max_steps=steps, save_steps=steps)
    run_settings = replace(settings, grpo=stage)
    shutil.rmtree(out, ignore_errors=True)
    began = time.monotonic()
    grpo.run(run_settings, paths["train"], str(out), str(out / "manifest.json"), paths["init"])
    return {"manifest": read_json(out / "manifest.json"), "seconds": time.monotonic() - began}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"])
    parser.add_argument("--rates", type=float, nargs="+", default=[5e-7, 5e-6, 5e-5])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--probe", required=True, help="a trace-format JSONL")
    parser.add_argument("--probe-rows", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="results/grpo_lr")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    launch.configure_threads(args.threads)
    config = rlconfig.read_config_files(args.configfile)
    config = rlvalidation.validate_config(config, " + ".join(args.configfile))
    settings = rlconfig.resolved_settings(config, args.model)
    model = settings.model
    paths = {
        "train": f"results/data/{args.model}/grpo/train.jsonl",
        "init": f"results/models/{args.model}/sft/manifest.json",
    }
    rows = probe_rows(args.probe, args.probe_rows)
    tokenizer = loading.load_tokenizer(model)
    start_model = loading.load_trained(model, read_json(paths["init"]), trainable=True).eval()
    start, start_lora = read_policy(start_model, tokenizer, rows), lora_weights(start_model)
    del start_model  # one model in memory while GRPO trains
    results = []
    for rate in args.rates:
        done = run_rate(settings, rate, args.steps, paths, Path(args.work) / f"lr{rate:g}")
        end_model = loading.load_trained(model, done["manifest"], trainable=True).eval()
        figures = compare(start, read_policy(end_model, tokenizer, rows))
        results.append(
            {"learning_rate": rate, "steps": args.steps, "seconds": round(done["seconds"], 1),
             **figures, "lora_delta": lora_delta(start_lora, lora_weights(end_model))}
        )  # fmt: skip
        del end_model
        print(json.dumps(results[-1]), flush=True)
    write_json(args.out, {"model": args.model, "probe_rows": len(rows), "results": results})


if __name__ == "__main__":
    main()
