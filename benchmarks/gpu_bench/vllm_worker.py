"""vLLM generation on the saved base model, in a child process: vLLM keeps its GPU memory until
the process exits. The parent writes a request file and runs
``python -m benchmarks.gpu_bench.vllm_worker REQUEST``, which prints one ``VLLM_RESULT`` line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.gpu_bench.architectures import REPO
from benchmarks.gpu_bench.measure import random_prompts

RESULT_PREFIX = "VLLM_RESULT "


def measure_vllm(model_dir: Path, args: Any, new_tokens: int, vocab: int) -> dict[str, Any]:
    """The rollout shape (``--gen-prompts`` × ``--num-generations``) in vLLM, timed once."""
    request = {
        "model_dir": str(model_dir),
        "prompts": random_prompts(args.gen_prompts, args.prompt_len, vocab, "cpu").tolist(),
        "n": args.num_generations,
        "new_tokens": new_tokens,
        "temperature": args.temperature,
        "max_model_len": args.prompt_len + new_tokens + 16,
        "gpu_memory_utilization": args.vllm_memory,
    }
    request_path = model_dir.parent / "vllm_request.json"
    request_path.write_text(json.dumps(request), "utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_bench.vllm_worker", str(request_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=args.vllm_timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise RuntimeError(f"vLLM worker failed (rc {proc.returncode}): {proc.stderr[-2000:]}")


def worker(request_path: str) -> dict[str, Any]:
    """Child process: load the folder in vLLM, generate once to warm up, once timed."""
    from vllm import LLM, SamplingParams

    request = json.loads(Path(request_path).read_text("utf-8"))
    start = time.perf_counter()
    llm = LLM(
        model=request["model_dir"],
        skip_tokenizer_init=True,
        dtype="bfloat16",
        seed=0,
        max_model_len=request["max_model_len"],
        gpu_memory_utilization=request["gpu_memory_utilization"],
    )
    startup = time.perf_counter() - start
    params = SamplingParams(
        n=request["n"],
        max_tokens=request["new_tokens"],
        min_tokens=request["new_tokens"],
        ignore_eos=True,
        temperature=request["temperature"],
        top_p=1.0,
        detokenize=False,
    )
    prompts = [{"prompt_token_ids": ids} for ids in request["prompts"]]
    llm.generate(prompts[:1], SamplingParams(max_tokens=4, detokenize=False), use_tqdm=False)
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    generated = sum(len(c.token_ids) for out in outputs for c in out.outputs)
    sequences = sum(len(out.outputs) for out in outputs)
    return {
        "backend": "vllm",
        "note": "base model only (no LoRA adapter), bf16",
        "sequences": sequences,
        "new_tokens": request["new_tokens"],
        "generated_tokens": generated,
        "full_length": generated == sequences * request["new_tokens"],
        "startup_s": round(startup, 2),
        "batch_s": round(seconds, 3),
        "tokens_per_s": round(generated / seconds, 1),
    }


if __name__ == "__main__":
    print(RESULT_PREFIX + json.dumps(worker(sys.argv[1])), flush=True)
