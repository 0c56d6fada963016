"""GRPO steps through the project's own ``grpo.grpo_config`` and TRL's ``GRPOTrainer``, the
rollout (generation and scoring) and the update (forward, backward, optimizer) timed apart.

The model is the benchmark's LoRA model after its SFT steps (GRPO continuing an adapter, as
``grpo.init: sft`` does). Prompts are random words of a word-level tokenizer over the model's
whole vocabulary, so they are exactly ``--prompt-len`` tokens; ``min_new_tokens`` makes every
completion ``--grpo-tokens`` long (random weights would stop at a random EOS); a reward of
pseudo-random values per completion gives the groups non-zero advantages, so the update is the
one a real step runs. One GRPO step generates ``--gen-prompts`` × ``--num-generations``
completions (per-device batch 1, gradient accumulation of that many: the recipe's round).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import zlib
from typing import Any

import torch

from benchmarks.gpu_bench.architectures import PROMPT_TOKENS
from benchmarks.gpu_bench.build import SftSetup
from benchmarks.gpu_bench.environment import free_memory, memory_gib, sync
from benchmarks.gpu_bench.measure import flops_figures, step_timer
from rlcausality.training import grpo

GENERATION_METHOD = "_generate_and_score_completions"  # TRL 1.16: rollout, rewards, advantages


def word_tokenizer(vocab: int) -> Any:
    """A word-level tokenizer whose words ``w{id}`` are the ids 3..vocab-1 (pad, eos, unk below)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    words = {f"<{k}>": v for k, v in PROMPT_TOKENS.items()}
    words.update({f"w{i}": i for i in range(len(PROMPT_TOKENS), vocab)})
    backend = Tokenizer(WordLevel(vocab=words, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def random_prompts(rows: int, length: int, vocab: int) -> Any:
    """A dataset of ``rows`` prompts of exactly ``length`` random words."""
    from datasets import Dataset

    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(len(PROMPT_TOKENS), vocab, (rows, length), generator=generator)
    return Dataset.from_dict({"prompt": [" ".join(f"w{i}" for i in row) for row in ids.tolist()]})


def noise_reward(completions: list[str], **_: Any) -> list[float]:
    """A value in [0, 1) per completion, fixed by its text: groups whose rewards differ."""
    return [zlib.crc32(text.encode("utf-8")) / 2**32 for text in completions]


def grpo_settings(setup: SftSetup, args: Any) -> Any:
    """config.yaml's GRPO stage at the benchmark's shape: the SFT adapter's LoRA, one rollout
    round of ``gen_prompts`` × ``num_generations`` per step, ``grpo_tokens`` new tokens."""
    stage = setup.settings.of("grpo")
    rollouts = args.gen_prompts * args.num_generations
    stage = dataclasses.replace(
        stage,
        lora=setup.sft.lora,
        num_generations=args.num_generations,
        max_completion_length=args.grpo_tokens,
        temperature=args.temperature,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=rollouts,
        max_steps=args.grpo_steps,
        warmup_steps=0,
        gradient_checkpointing=True,
        save_steps=10**9,
        save_total_limit=None,
        logging_steps=1,  # each step's completion lengths in the log history
        reward_weights=None,
        use_vllm=False,
        deepspeed=args.deepspeed,
    )
    return dataclasses.replace(setup.settings, grpo=stage)


def timed_method(trainer: Any, name: str, times: list[float]) -> None:
    """Replace ``trainer.<name>`` by a wrapper that appends its synchronised duration."""
    method = getattr(trainer, name)

    def wrapper(*positional: Any, **keyword: Any) -> Any:
        sync()
        start = time.perf_counter()
        out = method(*positional, **keyword)
        sync()
        times.append(time.perf_counter() - start)
        return out

    setattr(trainer, name, wrapper)


def train_grpo(model: Any, setup: SftSetup, args: Any, vocab: int) -> dict[str, Any]:
    """``args.grpo_steps`` GRPO steps: per step its total and rollout seconds, peak memory."""
    from trl import GRPOTrainer

    settings = grpo_settings(setup, args)
    rows = args.grpo_steps * args.gen_prompts
    data = random_prompts(rows, args.prompt_len, vocab)
    timer = step_timer()
    rollout_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gpu_bench_grpo_") as out:
        config = grpo.grpo_config(settings, out, setup.precision, args.prompt_len)
        config.generation_kwargs = {"min_new_tokens": args.grpo_tokens}
        model.train()
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[noise_reward],
            args=config,
            train_dataset=data,
            processing_class=word_tokenizer(vocab),
            callbacks=[timer],
        )
        timed_method(trainer, GENERATION_METHOD, rollout_times)
        free_memory()
        trainer.train()
        sync()
        memory = memory_gib()
        lengths = [h["completions/mean_length"] for h in trainer.state.log_history
                   if "completions/mean_length" in h]  # fmt: skip
        trainer.accelerator.free_memory()
        del trainer
    return {
        "times": timer.times,
        "rollouts": rollout_times,
        "memory": memory,
        "mean_length": lengths,
        "settings": settings.grpo,
    }


def measure_grpo(
    model: Any, setup: SftSetup, vocab: int, n_matmul: int, args: Any, peak: float | None
) -> dict[str, Any]:
    """Warm-up and timed GRPO steps; the last ``grpo_steps - 1`` steps are the figures (the
    first, which warms the generation and update kernels up, is reported alone)."""
    run = train_grpo(model, setup, args, vocab)
    steps, rollouts = run["times"], run["rollouts"]
    if len(steps) != args.grpo_steps or len(rollouts) != args.grpo_steps:
        raise RuntimeError(
            f"GRPO: {len(steps)} steps and {len(rollouts)} rollouts timed, "
            f"{args.grpo_steps} expected (TRL's {GENERATION_METHOD} renamed?)"
        )
    timed = slice(1, None) if args.grpo_steps > 1 else slice(0, None)
    step_s = sum(steps[timed]) / len(steps[timed])
    rollout_s = sum(rollouts[timed]) / len(rollouts[timed])
    update_s = step_s - rollout_s
    sequences = args.gen_prompts * args.num_generations
    new_tokens = args.grpo_tokens
    update_tokens = sequences * (args.prompt_len + new_tokens)
    stage = run["settings"]
    return {
        "precision": setup.precision.name,
        "sequences": sequences,
        "prompts": args.gen_prompts,
        "completions_per_prompt": args.num_generations,
        "prompt_len": args.prompt_len,
        "new_tokens": new_tokens,
        "loss_type": stage.loss_type,
        "beta": stage.beta,
        "deepspeed": stage.deepspeed,
        "steps": args.grpo_steps,
        "step_times_s": [round(t, 3) for t in steps],
        "rollout_times_s": [round(t, 3) for t in rollouts],
        "mean_completion_tokens": run["mean_length"],
        "mean_step_s": round(step_s, 3),
        "rollout_s": round(rollout_s, 3),
        "update_s": round(update_s, 3),
        "rollout_tokens_per_s": round(sequences * new_tokens / rollout_s, 1),
        "ms_per_decode_step": round(1000 * rollout_s / new_tokens, 2),
        "update_tokens": update_tokens,
        "update_tokens_per_s": round(update_tokens / update_s, 1) if update_s > 0 else None,
        **run["memory"],
        **(flops_figures(n_matmul * update_tokens / update_s, peak) if update_s > 0 else {}),
    }
