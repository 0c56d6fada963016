"""The timed measurements: SFT steps through the project's trainer set-up, and ``generate``."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import torch

from benchmarks.gpu_bench.architectures import PROMPT_TOKENS, benchmark_tokenizer
from benchmarks.gpu_bench.build import SftSetup
from benchmarks.gpu_bench.environment import cuda, free_memory, memory_gib, peak_rss_mib, sync
from rlcausality.training import sft

FLOPS_FORMULA = (
    "train FLOPs/step = 6 * N * T: forward 2NT + gradient-checkpoint recompute 2NT + backward "
    "activation gradients 2NT (the frozen base computes no weight gradients); N = parameters of "
    "the matmul (Linear) layers incl. lm_head, counted unquantised; T = tokens per step. LoRA "
    "and attention-score FLOPs are not counted. mfu_8n uses 8 * N * T (also counting "
    "weight-gradient GEMMs that a frozen base skips) for comparison."
)


# --------------------------------------------------------------------------- SFT


def sft_dataset(rows: int, seq_len: int, vocab: int, completion_fraction: float) -> Any:
    """Pre-tokenised rows of exactly ``seq_len`` random ids; the loss covers the completion."""
    from datasets import Dataset

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(PROMPT_TOKENS), vocab, (rows, seq_len), generator=generator)
    completion = max(1, int(seq_len * completion_fraction))
    mask = [0] * (seq_len - completion) + [1] * completion
    return Dataset.from_dict({"input_ids": ids.tolist(), "completion_mask": [mask] * rows})


def step_timer() -> Any:
    """A trainer callback that times every optimizer step, the GPU synchronised at both ends."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.started = 0.0
            self.times: list[float] = []

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            sync()
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            sync()
            self.times.append(time.perf_counter() - self.started)

    return StepTimer()


def train_timed(model: Any, setup: SftSetup, data: Any) -> dict[str, Any]:
    """``sft.sft_config`` and a plain ``SFTTrainer`` over ``data``: step times, wall time, peak
    memory and whether gradient checkpointing was on."""
    from trl import SFTTrainer

    timer = step_timer()
    with tempfile.TemporaryDirectory(prefix="gpu_bench_sft_") as out:
        config = sft.sft_config(setup.settings, out, setup.precision, has_eval=False)
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=data,
            processing_class=benchmark_tokenizer(),
            callbacks=[timer],
        )
        free_memory()
        start = time.perf_counter()
        trainer.train()
        sync()
        total = time.perf_counter() - start
        memory = memory_gib()
        checkpointing = bool(getattr(model.get_base_model(), "is_activation_checkpointing", False))
        trainer.accelerator.free_memory()
        del trainer
    return {"times": timer.times, "total": total, "memory": memory, "checkpointing": checkpointing}


def measure_sft(
    model: Any, setup: SftSetup, vocab: int, n_matmul: int, args: Any, peak: float | None
) -> dict[str, Any]:
    """Warm-up and timed SFT steps of ``args.batch_size`` × ``args.seq_len`` tokens."""
    steps = args.warmup_steps + args.steps
    data = sft_dataset(steps * args.batch_size, args.seq_len, vocab, args.completion_fraction)
    run = train_timed(model, setup, data)
    timed = run["times"][args.warmup_steps :]
    if not timed:
        raise RuntimeError(f"no timed SFT steps ({len(run['times'])} steps ran)")
    step_s = sum(timed) / len(timed)
    tokens = args.batch_size * args.seq_len
    result: dict[str, Any] = {
        "precision": setup.precision.name,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "gradient_checkpointing": run["checkpointing"],
        "warmup_steps": args.warmup_steps,
        "timed_steps": len(timed),
        "step_times_s": [round(t, 4) for t in run["times"]],
        "mean_step_s": round(step_s, 4),
        "tokens_per_step": tokens,
        "tokens_per_s": round(tokens / step_s, 1),
        "train_wall_s": round(run["total"], 2),
        **run["memory"],
        **flops_figures(n_matmul * tokens / step_s, peak),
    }
    if not cuda():
        result["peak_rss_mib"] = peak_rss_mib()
    return result


def flops_figures(matmul_rate: float, peak: float | None) -> dict[str, float | None]:
    """Achieved TFLOP/s and MFU (6N and 8N) from N × T / step seconds (``FLOPS_FORMULA``)."""
    return {
        "tflops_achieved": round(6 * matmul_rate / 1e12, 4),
        "mfu": round(6 * matmul_rate / (peak * 1e12), 4) if peak else None,
        "mfu_8n": round(8 * matmul_rate / (peak * 1e12), 4) if peak else None,
    }


# --------------------------------------------------------------------------- generation


def random_prompts(n: int, length: int, vocab: int, device: Any) -> Any:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(len(PROMPT_TOKENS), vocab, (n, length), generator=generator).to(device)


def sampling_kwargs(temperature: float) -> dict[str, Any]:
    """``generate`` arguments: sampling at ``temperature``, greedy at 0."""
    sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0}
    return {
        "pad_token_id": PROMPT_TOKENS["pad"],
        "eos_token_id": PROMPT_TOKENS["eos"],
        "use_cache": True,
        **sampling,
        "top_k": None,
    }


def timed_generate(model: Any, ids: Any, new_tokens: int, temperature: float) -> tuple[int, float]:
    """One warm-up and one timed ``generate`` of exactly ``new_tokens``: (generated, seconds)."""
    kwargs = {"attention_mask": torch.ones_like(ids), **sampling_kwargs(temperature)}
    model.eval()
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kwargs)  # warm-up
        free_memory()
        torch.manual_seed(0)
        sync()
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kwargs)
        sync()
        seconds = time.perf_counter() - start
    generated = int(out.shape[1] - ids.shape[1]) * int(out.shape[0])
    del out
    return generated, seconds


def measure_generate(
    model: Any,
    vocab: int,
    prompts: int,
    repeats: int,
    prompt_len: int,
    new_tokens: int,
    temperature: float,
) -> dict[str, Any]:
    """One timed ``generate`` of prompts × repeats sequences of exactly ``new_tokens``."""
    device = next(model.parameters()).device
    ids = random_prompts(prompts, prompt_len, vocab, device).repeat_interleave(repeats, dim=0)
    generated, seconds = timed_generate(model, ids, new_tokens, temperature)
    return {
        "backend": "transformers",
        "sequences": int(ids.shape[0]),
        "prompts": prompts,
        "completions_per_prompt": repeats,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "sampling": f"temperature {temperature}" if temperature > 0 else "greedy",
        "generated_tokens": generated,
        "full_length": generated == new_tokens * ids.shape[0],
        "batch_s": round(seconds, 3),
        "tokens_per_s": round(generated / seconds, 1),
        "ms_per_decode_step": round(1000 * seconds / new_tokens, 2),
        **memory_gib(),
    }
