"""GPU benchmark of the project's SFT step and of rollout/evaluation generation, per model family.

Each family is an architecture-true, random-init model built from its config (no weights are
downloaded): Qwen2.5-1.5B, Phi-3.5-mini and DeepSeek-R1-Distill-Qwen-7B. The 7B is quantised to
4-bit nf4 (QLoRA) the way the workflow loads it: the random bf16 model is saved to a temporary
folder and reloaded through ``rlcausality.models.loading.load_model`` (the project's
``quantization_config``), when CUDA and bitsandbytes are present; otherwise it stays bf16/fp32.

SFT step: the project's LoRA (family targets, ``lora.lora_config``), ``prepare_base``
(gradient checkpointing / k-bit preparation), ``choose_precision`` and ``sft.sft_config`` +
``SFTTrainer``, one sequence of ``--seq-len`` tokens per step, no gradient accumulation.
Generation: transformers ``generate`` on the LoRA model (adapter unmerged, as in GRPO), prompts
repeated ``--num-generations`` times, sampling at the GRPO temperature, ``min_new_tokens`` equal
to ``max_new_tokens`` so every sequence has exactly the measured length. vLLM when installed.

Usage (GPU, ~10 min on one H100/H200)::

    .venv/bin/python benchmarks/gpu_bench.py --out results/gpu_bench.json \
        --markdown results/gpu_bench.md

CPU smoke run (tiny dims, < 60 s)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gpu_bench.py --smoke --out /tmp/bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlcausality.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CONFIG_YAML = REPO / "config.yaml"

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), matched against get_device_name().
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIE", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("RTX 2080 TI", 53.8),  # fp16 tensor, fp32 accumulate: Turing has no bf16
)

FLOPS_FORMULA = (
    "train FLOPs/step = 6 * N * T: forward 2NT + gradient-checkpoint recompute 2NT + backward "
    "activation gradients 2NT (the frozen base computes no weight gradients); N = parameters of "
    "the matmul (Linear) layers incl. lm_head, counted unquantised; T = tokens per step. LoRA "
    "and attention-score FLOPs are not counted. mfu_8n uses 8 * N * T (also counting "
    "weight-gradient GEMMs that a frozen base skips) for comparison."
)

PROMPT_TOKENS = {"pad": 0, "eos": 1, "unk": 2}  # the benchmark tokenizer's whole vocabulary


@dataclass(frozen=True)
class Arch:
    """One benchmarked family: its config.yaml model entry and its architecture."""

    model: str  # the model's name in config.yaml
    hub_id: str  # what it stands for (never downloaded)
    config_class: str  # transformers config class
    dims: dict[str, Any]
    smoke_dims: dict[str, Any]


TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 512,
    "max_position_embeddings": 4096,
}

ARCHS: dict[str, Arch] = {
    arch.model: arch
    for arch in (
        Arch(
            model="qwen2.5-1.5b",
            hub_id="Qwen/Qwen2.5-1.5B-Instruct",
            config_class="Qwen2Config",
            dims={
                "hidden_size": 1536,
                "num_hidden_layers": 28,
                "num_attention_heads": 12,
                "num_key_value_heads": 2,
                "intermediate_size": 8960,
                "vocab_size": 151936,
                "tie_word_embeddings": True,
                "max_position_embeddings": 32768,
                "rope_theta": 1000000.0,
                "rms_norm_eps": 1e-6,
            },
            smoke_dims={**TINY, "num_key_value_heads": 2, "tie_word_embeddings": True},
        ),
        Arch(
            model="phi-3.5-mini",
            hub_id="microsoft/Phi-3.5-mini-instruct",
            config_class="Phi3Config",
            # The real config uses longrope scaling up to 128k; at <= 4k tokens plain RoPE costs
            # the same.
            dims={
                "hidden_size": 3072,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 32,
                "intermediate_size": 8192,
                "vocab_size": 32064,
                "tie_word_embeddings": False,
                "max_position_embeddings": 4096,
                "rms_norm_eps": 1e-5,
            },
            smoke_dims={**TINY, "num_key_value_heads": 4, "tie_word_embeddings": False},
        ),
        Arch(
            model="deepseek-r1-7b",
            hub_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
            config_class="Qwen2Config",
            dims={
                "hidden_size": 3584,
                "num_hidden_layers": 28,
                "num_attention_heads": 28,
                "num_key_value_heads": 4,
                "intermediate_size": 18944,
                "vocab_size": 152064,
                "tie_word_embeddings": False,
                "max_position_embeddings": 131072,
                "rope_theta": 10000.0,
                "rms_norm_eps": 1e-6,
            },
            smoke_dims={**TINY, "num_key_value_heads": 2, "tie_word_embeddings": False},
        ),
    )
}


# --------------------------------------------------------------------------- helpers


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def memory_gib() -> dict[str, float | None]:
    """Peak allocated/reserved GPU memory since the last reset (None on a CPU)."""
    import torch

    if not torch.cuda.is_available():
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3),
    }


def peak_rss_mib() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def peak_tflops(device_name: str | None, override: float | None) -> float | None:
    if override:
        return override
    if not device_name:
        return None
    upper = device_name.upper()
    for key, value in PEAK_BF16_TFLOPS:
        if key in upper:
            return value
    return None


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "gpu": gpu,
        "gpu_count": torch.cuda.device_count(),
        "gpu_memory_gib": (
            round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if gpu else None
        ),
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "versions": {
            name: version(name)
            for name in (
                "torch",
                "transformers",
                "trl",
                "peft",
                "bitsandbytes",
                "accelerate",
                "vllm",
                "deepspeed",
            )
        },
        "python": platform.python_version(),
        "host": platform.node(),
        "command": shlex.join([sys.executable, *sys.argv]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@contextlib.contextmanager
def scratch_dir(needed_bytes: int, preferred: str | None) -> Iterator[Path]:
    """A temporary folder: ``preferred``, else /dev/shm when it has room, else the system's."""
    root = preferred
    if root is None and Path("/dev/shm").is_dir():
        with contextlib.suppress(OSError):
            if shutil.disk_usage("/dev/shm").free > 1.3 * needed_bytes:
                root = "/dev/shm"
    with tempfile.TemporaryDirectory(prefix="gpu_bench_", dir=root) as tmp:
        yield Path(tmp)


def benchmark_tokenizer() -> Any:
    """A three-token tokenizer: the data are random ids, the trainer only needs pad/eos."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(
        WordLevel(vocab={f"<{k}>": v for k, v in PROMPT_TOKENS.items()}, unk_token="<unk>")
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def model_settings(model_name: str) -> dict[str, Any]:
    """The resolved settings of ``model_name`` from config.yaml (recipe defaults merged in)."""
    import yaml

    from rlcausality.config import resolve_model, validate_config

    config = validate_config(yaml.safe_load(CONFIG_YAML.read_text("utf-8")))
    return resolve_model(config, model_name)


# --------------------------------------------------------------------------- models


def model_config(arch: Arch, dims: dict[str, Any]) -> Any:
    import transformers

    config_class = getattr(transformers, arch.config_class)
    return config_class(
        **dims,
        pad_token_id=PROMPT_TOKENS["pad"],
        bos_token_id=PROMPT_TOKENS["eos"],
        eos_token_id=PROMPT_TOKENS["eos"],
        use_cache=True,
    )


def count_parameters(model: Any) -> dict[str, int]:
    """All parameters (embedding tables counted once if tied), and those of Linear layers."""
    import torch

    total = sum(p.numel() for p in model.parameters())
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return {"parameters": total, "matmul_parameters": matmul}


def build_base(
    arch: Arch, dims: dict[str, Any], settings: Settings, quantize: bool, args: Any
) -> tuple[Any, dict[str, Any]]:
    """The random-init base model, on the GPU (or CPU), quantised when asked."""
    import torch
    from transformers import AutoModelForCausalLM

    from rlcausality import lora
    from rlcausality.models.loading import load_model

    precision = lora.stage_precision(settings.model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    info: dict[str, Any] = {}
    start = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config(arch, dims), dtype=precision.dtype)
    sync()
    info["build_s"] = round(time.perf_counter() - start, 2)
    info.update(count_parameters(model))
    if not quantize:
        info["quantization"] = "none"
        return model, info
    quant_settings = dataclasses.replace(
        settings.model, quantization="4bit", trust_remote_code=False
    )
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    with scratch_dir(size, args.tmp_dir) as tmp:
        start = time.perf_counter()
        model.save_pretrained(tmp)
        info["save_s"] = round(time.perf_counter() - start, 2)
        del model
        free_memory()
        start = time.perf_counter()
        model = load_model(quant_settings, path=str(tmp), precision=precision)
        sync()
        info["quantize_load_s"] = round(time.perf_counter() - start, 2)
    info["quantization"] = "4bit-nf4 (bitsandbytes, double quant, reloaded via load_model)"
    info["stored_parameters"] = sum(p.numel() for p in model.parameters())
    return model, info


def lora_model(base: Any, settings: Settings) -> tuple[Any, dict[str, Any]]:
    """The project's own LoRA set-up (``lora.attach_lora``) on an already built base."""
    from rlcausality import lora

    precision = lora.stage_precision(settings.model)
    trainable = lora.attach_lora(base, settings.model, settings.sft, precision)
    model = trainable.model
    return model, {
        "family": trainable.family.name,
        "lora_r": settings.sft.lora.r,
        "lora_targets": trainable.adapted,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "lora_dropout": settings.sft.lora.dropout,
    }


# --------------------------------------------------------------------------- SFT


def sft_settings(model_name: str, args: Any) -> Settings:
    """config.yaml's settings for the model, with the benchmark's step shape."""
    from rlcausality.config import load_settings

    settings = model_settings(model_name)
    sft = settings["sft"]
    sft["lora"] = {**sft.get("lora", {}), "r": args.lora_r, "alpha": 2 * args.lora_r}
    sft.update(
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.warmup_steps + args.steps,
        warmup_steps=0,
        max_length=args.seq_len,
        gradient_checkpointing=True,
        save_steps=10**9,
        save_total_limit=None,
        logging_steps=10**9,
        deepspeed=None,  # one process on one GPU: ZeRO would shard nothing
    )
    if args.dtype:
        settings["model"]["dtype"] = args.dtype
    return load_settings(settings, "config.yaml")


def sft_dataset(rows: int, seq_len: int, vocab: int, completion_fraction: float) -> Any:
    """Pre-tokenised rows of exactly ``seq_len`` random ids; the loss covers the completion."""
    import torch
    from datasets import Dataset

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(PROMPT_TOKENS), vocab, (rows, seq_len), generator=generator)
    completion = max(1, int(seq_len * completion_fraction))
    mask = [0] * (seq_len - completion) + [1] * completion
    return Dataset.from_dict({"input_ids": ids.tolist(), "completion_mask": [mask] * rows})


def step_timer() -> Any:
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


def measure_sft(
    model: Any, settings: Settings, vocab: int, n_matmul: int, args: Any, peak: float | None
) -> dict[str, Any]:
    from trl import SFTTrainer

    from rlcausality import lora, sft

    precision = lora.stage_precision(settings.model)

    steps = args.warmup_steps + args.steps
    data = sft_dataset(steps * args.batch_size, args.seq_len, vocab, args.completion_fraction)
    timer = step_timer()
    with tempfile.TemporaryDirectory(prefix="gpu_bench_sft_") as out:
        config = sft.sft_config(settings, out, precision, has_eval=False)
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
    timed = timer.times[args.warmup_steps :]
    if not timed:
        raise RuntimeError(f"no timed SFT steps ({len(timer.times)} steps ran)")
    step_s = sum(timed) / len(timed)
    tokens = args.batch_size * args.seq_len
    flops_6n = 6 * n_matmul * tokens
    result: dict[str, Any] = {
        "precision": precision.name,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "gradient_checkpointing": checkpointing,
        "warmup_steps": args.warmup_steps,
        "timed_steps": len(timed),
        "step_times_s": [round(t, 4) for t in timer.times],
        "mean_step_s": round(step_s, 4),
        "tokens_per_step": tokens,
        "tokens_per_s": round(tokens / step_s, 1),
        "train_wall_s": round(total, 2),
        **memory,
        "tflops_achieved": round(flops_6n / step_s / 1e12, 4),
        "mfu": round(flops_6n / step_s / (peak * 1e12), 4) if peak else None,
        "mfu_8n": round(8 * n_matmul * tokens / step_s / (peak * 1e12), 4) if peak else None,
    }
    if not cuda():
        result["peak_rss_mib"] = peak_rss_mib()
    return result


# --------------------------------------------------------------------------- generation


def random_prompts(n: int, length: int, vocab: int, device: Any) -> Any:
    import torch

    generator = torch.Generator().manual_seed(1)
    return torch.randint(len(PROMPT_TOKENS), vocab, (n, length), generator=generator).to(device)


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
    import torch

    device = next(model.parameters()).device
    ids = random_prompts(prompts, prompt_len, vocab, device).repeat_interleave(repeats, dim=0)
    mask = torch.ones_like(ids)
    sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0}
    sampling["top_k"] = None
    kwargs = {
        "attention_mask": mask,
        "pad_token_id": PROMPT_TOKENS["pad"],
        "eos_token_id": PROMPT_TOKENS["eos"],
        "use_cache": True,
        **sampling,
    }
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
    expected = new_tokens * ids.shape[0]
    result = {
        "backend": "transformers",
        "sequences": int(ids.shape[0]),
        "prompts": prompts,
        "completions_per_prompt": repeats,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "sampling": f"temperature {temperature}" if temperature > 0 else "greedy",
        "generated_tokens": generated,
        "full_length": generated == expected,
        "batch_s": round(seconds, 3),
        "tokens_per_s": round(generated / seconds, 1),
        "ms_per_decode_step": round(1000 * seconds / new_tokens, 2),
        **memory_gib(),
    }
    del out
    return result


def measure_vllm(model_dir: Path, args: Any, new_tokens: int, vocab: int) -> dict[str, Any]:
    """vLLM on the saved base model, in a child process (vLLM keeps GPU memory until exit)."""
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
        [sys.executable, __file__, "--vllm-worker", str(request_path)],
        capture_output=True,
        text=True,
        timeout=args.vllm_timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("VLLM_RESULT "):
            return json.loads(line.removeprefix("VLLM_RESULT "))
    raise RuntimeError(f"vLLM worker failed (rc {proc.returncode}): {proc.stderr[-2000:]}")


def vllm_worker(request_path: str) -> None:
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
    result = {
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
    print("VLLM_RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- the plan's figures


def plan_estimates(
    arch: Arch, dims: dict[str, Any], result: dict[str, Any], args: Any, env: dict[str, Any]
) -> dict[str, Any]:
    """rlcausality.plan's estimate of every measured shape, on the benchmark's GPU (or on
    ``--plan-gpu``; an A100-80GB without a GPU), to stand beside the measurement."""
    from rlcausality.plan import arch as archs
    from rlcausality.plan import bench

    gpu_name = args.plan_gpu or bench.match_gpu(env["gpu"], env["gpu_memory_gib"])
    if gpu_name is None and env["gpu"] is None:
        gpu_name = "A100-80GB"
    if gpu_name is None:
        return {"skipped": f"{env['gpu']} is not in rlcausality/plan/gpus.yaml"}
    model_type = arch.config_class.removesuffix("Config").lower()
    facts = archs.from_config({"model_type": model_type, **dims}, arch.hub_id)
    quant = "4bit" if str(result.get("quantization", "")).startswith("4bit") else "none"
    targets = result["lora_targets"]
    lora = facts.lora_parameters(targets, args.lora_r)
    estimates: dict[str, Any] = {
        "sft": bench.sft_step(
            facts,
            quant,
            gpu_name,
            targets,
            args.lora_r,
            result.get("lora_dropout", 0.0),
            args.batch_size,
            args.seq_len,
        ),
        "generation": [],
    }
    for gen in result.get("generation", []):
        if "sequences" in gen:
            estimates["generation"].append(
                {
                    "kind": gen["kind"],
                    "new_tokens": gen["new_tokens"],
                    **bench.generation(
                        facts,
                        quant,
                        gpu_name,
                        lora,
                        gen["sequences"],
                        gen["prompt_len"],
                        gen["new_tokens"],
                    ),
                }
            )
    return estimates


# --------------------------------------------------------------------------- one family


class Budget:
    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> bool:
        return self.elapsed() < self.seconds


def run_family(name: str, args: Any, env: dict[str, Any], budget: Budget) -> dict[str, Any]:
    import torch

    arch = ARCHS[name]
    dims = arch.smoke_dims if args.smoke else arch.dims
    from rlcausality import lora

    settings = sft_settings(name, args)
    configured_quant = settings.model.quantization
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    if args.quantize == "auto":
        quantize = configured_quant == "4bit" and bnb and torch.cuda.is_available()
    else:
        quantize = args.quantize == "4bit" and configured_quant == "4bit"
    result: dict[str, Any] = {
        "model": name,
        "stands_for": arch.hub_id,
        "architecture": arch.config_class.removesuffix("Config"),
        "dims": dims,
        "configured_quantization": configured_quant,
        "errors": {},
    }
    if configured_quant == "4bit" and not quantize:
        why = "no CUDA" if not torch.cuda.is_available() else "bitsandbytes missing"
        why = "--quantize none" if args.quantize == "none" else why
        result["quantization_note"] = f"configured 4bit, measured unquantised ({why})"
    peak = peak_tflops(env["gpu"], args.peak_tflops)
    vocab = dims["vocab_size"]
    model: Any = None
    vllm_dir: tempfile.TemporaryDirectory[str] | None = None
    try:
        free_memory()
        base, info = build_base(arch, dims, settings, quantize, args)
        result.update(info)
        result["precision"] = lora.stage_precision(settings.model).name
        result["build_memory"] = memory_gib()
        result["weights_gib"] = (
            round(torch.cuda.memory_allocated() / 2**30, 3) if torch.cuda.is_available() else None
        )
        if name in args.vllm_families and env["vllm_available"] and not args.smoke:
            vllm_dir = tempfile.TemporaryDirectory(prefix="gpu_bench_vllm_", dir=args.tmp_dir)
            if quantize:  # the bf16 weights are gone; saving them twice would not fit the budget
                result["vllm"] = {"skipped": "quantised family: vLLM is measured on bf16 only"}
                vllm_dir.cleanup()
                vllm_dir = None
            else:
                base.save_pretrained(Path(vllm_dir.name) / "model")
        model, lora = lora_model(base, settings)
        del base
        result.update(lora)
    except Exception as error:  # recorded; the other families still run
        result["errors"]["build"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()
        model = None

    if model is not None:
        try:
            result["sft"] = measure_sft(
                model, settings, vocab, result["matmul_parameters"], args, peak
            )
        except Exception as error:
            result["errors"]["sft"] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        free_memory()
        runs = [
            ("rollout", args.gen_prompts, args.num_generations, args.temperature, n)
            for n in args.gen_tokens
        ]
        runs += [("eval", args.eval_batch, 1, 0.0, n) for n in args.eval_tokens]
        result["generation"] = []
        for kind, prompts, repeats, temperature, new_tokens in runs:
            label = f"{kind}@{new_tokens}"
            if not budget.left():
                result["generation"].append(
                    {"kind": kind, "new_tokens": new_tokens, "skipped": "time budget spent"}
                )
                continue
            try:
                figures = measure_generate(
                    model, vocab, prompts, repeats, args.prompt_len, new_tokens, temperature
                )
                result["generation"].append({"kind": kind, **figures})
            except Exception as error:
                result["errors"][label] = f"{type(error).__name__}: {error}"
                traceback.print_exc()
            free_memory()
    del model
    free_memory()

    if vllm_dir is not None:
        try:
            if budget.left():
                result["vllm"] = measure_vllm(
                    Path(vllm_dir.name) / "model", args, max(args.gen_tokens), vocab
                )
            else:
                result["vllm"] = {"skipped": "time budget spent"}
        except Exception as error:
            result["errors"]["vllm"] = f"{type(error).__name__}: {error}"
        finally:
            vllm_dir.cleanup()
    elif "vllm" not in result:
        if args.smoke:
            reason = "smoke mode"
        elif not env["vllm_available"]:
            reason = "vllm not installed (or no CUDA)"
        else:
            reason = "family not in --vllm-families"
        result["vllm"] = {"skipped": reason}
    if "lora_targets" in result:
        try:
            result["plan"] = plan_estimates(arch, dims, result, args, env)
        except Exception as error:
            result["errors"]["plan"] = f"{type(error).__name__}: {error}"
    result["wall_s"] = round(budget.elapsed(), 1)
    return result


# --------------------------------------------------------------------------- output


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell, formatted as the run plan's tables format theirs."""
    from rlcausality.plan.render import cell

    return cell(value, digits)


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [
        f"GPU: {env['gpu'] or 'none (CPU)'}; torch {env['versions']['torch']}, "
        f"transformers {env['versions']['transformers']}, trl {env['versions']['trl']}, "
        f"peft {env['versions']['peft']}, bitsandbytes {env['versions']['bitsandbytes']}, "
        f"CUDA {env['cuda']}; smoke: {results['smoke']}",
        "",
        "| model | quantisation | params | trainable | SFT step (s) | SFT tok/s | "
        "SFT peak alloc / reserved (GiB) | MFU (6N) | generation | gen tok/s | batch (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for fam in results["families"]:
        sft = fam.get("sft") or {}
        gens = [g for g in fam.get("generation", []) if "tokens_per_s" in g]
        vllm = fam.get("vllm") or {}
        if "tokens_per_s" in vllm:
            gens.append({**vllm, "kind": "vllm"})
        if not gens:
            gens = [{}]
        for index, gen in enumerate(gens):
            first = index == 0
            memory = (
                f"{fmt(sft.get('peak_allocated_gib'), 2)} / {fmt(sft.get('peak_reserved_gib'), 2)}"
            )
            mfu = sft.get("mfu")
            label = (
                f"{gen['kind']} {gen['sequences']}×{gen['new_tokens']}"
                if gen
                else "; ".join(f"{k}: {v}" for k, v in fam["errors"].items()) or "–"
            )
            lines.append(
                "| "
                + " | ".join(
                    [
                        fam["model"] if first else "",
                        fam.get("quantization", "–").split(" ")[0] if first else "",
                        fmt(fam.get("parameters")) if first else "",
                        fmt(fam.get("trainable_parameters")) if first else "",
                        fmt(sft.get("mean_step_s"), 3) if first else "",
                        fmt(sft.get("tokens_per_s")) if first else "",
                        memory if first else "",
                        (f"{100 * mfu:.1f} %" if mfu is not None else "–") if first else "",
                        label,
                        fmt(gen.get("tokens_per_s")),
                        fmt(gen.get("batch_s"), 2),
                    ]
                )
                + " |"
            )
    lines += ["", FLOPS_FORMULA, "", *plan_table(results)]
    return "\n".join(lines) + "\n"


def plan_table(results: dict[str, Any]) -> list[str]:
    """Measured beside rlcausality.plan's estimate, per family and shape."""
    lines = [
        "| model | shape | measured peak reserved (GiB) | plan (GiB) | measured s | plan s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for fam in results["families"]:
        plan = fam.get("plan") or {}
        sft = fam.get("sft") or {}
        if "sft" in plan:
            lines.append(
                f"| {fam['model']} | SFT step ({plan['sft']['gpu']}) | "
                f"{fmt(sft.get('peak_reserved_gib'), 2)} | {fmt(plan['sft']['peak_gib'], 2)} | "
                f"{fmt(sft.get('mean_step_s'), 3)} | {fmt(plan['sft']['step_s'], 3)} |"
            )
        measured = {(g["kind"], g.get("new_tokens")): g for g in fam.get("generation", [])}
        for est in plan.get("generation", []):
            got = measured.get((est["kind"], est["new_tokens"]), {})
            lines.append(
                f"| {fam['model']} | {est['kind']} {got.get('sequences', '?')}×"
                f"{est['new_tokens']} | {fmt(got.get('peak_reserved_gib'), 2)} | "
                f"{fmt(est['peak_gib'], 2)} | {fmt(got.get('batch_s'), 2)} | "
                f"{fmt(est['batch_s'], 2)} |"
            )
    return lines


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()] if text else []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", default=",".join(ARCHS), help="comma list of: %(default)s")
    parser.add_argument("--smoke", action="store_true", help="tiny dims on the CPU (< 60 s)")
    parser.add_argument("--out", default="gpu_bench.json", help="results JSON")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    parser.add_argument("--seq-len", type=int, default=None, help="SFT tokens per sequence (1024)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed SFT steps (3)")
    parser.add_argument("--steps", type=int, default=None, help="timed SFT steps (5)")
    parser.add_argument("--lora-r", type=int, default=64)
    parser.add_argument("--completion-fraction", type=float, default=0.25)
    parser.add_argument(
        "--quantize",
        choices=("auto", "4bit", "none"),
        default="auto",
        help="for models configured 4bit: auto = 4bit when CUDA and bitsandbytes are present",
    )
    parser.add_argument("--dtype", default=None, help="model.dtype override (auto/bfloat16/...)")
    parser.add_argument("--gen-prompts", type=int, default=None, help="rollout prompts (8)")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--prompt-len", type=int, default=None, help="prompt tokens (256)")
    parser.add_argument("--gen-tokens", default=None, help="rollout new tokens, list (2048)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--eval-batch", type=int, default=16)
    parser.add_argument("--eval-tokens", default=None, help="greedy eval new tokens, list (256)")
    parser.add_argument("--vllm-families", default="qwen2.5-1.5b", help="'' for none")
    parser.add_argument("--vllm-memory", type=float, default=0.6)
    parser.add_argument("--vllm-timeout", type=int, default=300)
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the bf16 peak")
    parser.add_argument(
        "--plan-gpu", default=None, help="the plan's GPU for its estimates (default: this one)"
    )
    parser.add_argument("--tmp-dir", default=None, help="scratch for the 4-bit reload")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="skip later generation after this (540)"
    )
    parser.add_argument("--vllm-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    full = {
        "seq_len": 1024,
        "warmup_steps": 3,
        "steps": 5,
        "gen_prompts": 8,
        "prompt_len": 256,
        "gen_tokens": "2048",
        "eval_tokens": "256",
        "budget_s": 540.0,
    }
    smoke = {
        "seq_len": 64,
        "warmup_steps": 1,
        "steps": 1,
        "gen_prompts": 2,
        "prompt_len": 16,
        "gen_tokens": "16",
        "eval_tokens": "16",
        "budget_s": 300.0,
    }
    for key, value in (smoke if args.smoke else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.smoke:
        args.eval_batch = min(args.eval_batch, 4)
    args.gen_tokens = int_list(args.gen_tokens)
    args.eval_tokens = int_list(args.eval_tokens)
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    args.vllm_families = [f.strip() for f in args.vllm_families.split(",") if f.strip()]
    unknown = [f for f in args.families if f not in ARCHS]
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(ARCHS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.vllm_worker:
        vllm_worker(args.vllm_worker)
        return 0
    if args.smoke:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch initialises CUDA
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from rlcausality.models.loading import configure_threads

    configure_threads(None)
    budget = Budget(args.budget_s)
    env = environment()
    env["vllm_available"] = importlib.util.find_spec("vllm") is not None and cuda()
    results: dict[str, Any] = {
        "benchmark": "rlcausality gpu_bench",
        "smoke": args.smoke,
        "environment": env,
        "peak_bf16_tflops": peak_tflops(env["gpu"], args.peak_tflops),
        "flops_formula": FLOPS_FORMULA,
        "options": {k: v for k, v in vars(args).items() if k != "vllm_worker"},
        "families": [],
    }
    if not torch.cuda.is_available() and not args.smoke:
        print("warning: no CUDA device; timings are CPU timings", file=sys.stderr)
    for name in args.families:
        print(f"== {name}", file=sys.stderr, flush=True)
        results["families"].append(run_family(name, args, env, budget))
    results["wall_s"] = round(budget.elapsed(), 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    table = markdown(results)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table, "utf-8")
    print(table)
    print(f"results: {out} ({results['wall_s']} s)")
    return 1 if any(f["errors"] for f in results["families"]) else 0


if __name__ == "__main__":
    sys.exit(main())
