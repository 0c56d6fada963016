"""How a training job is started, and what hardware it found: one home for both decisions.

The rule (used by the Snakemake rules and the dry-run's job lines):

* a job with DeepSpeed on one or more GPUs starts under ``torchrun`` (even on one GPU):
  DeepSpeed initialises its own process group and, without RANK, WORLD_SIZE, MASTER_ADDR and
  LOCAL_RANK in the environment, falls back to MPI discovery (``import mpi4py``) and dies;
* a job on several GPUs starts one ``torchrun`` process group over them;
* anything else (one GPU without DeepSpeed, the CPU) is one plain ``python -m`` process.

``accelerator_present`` (a device the trainer and DeepSpeed train on: ``use_cpu`` and DeepSpeed
follow it) and ``cuda_capability`` (the CUDA GPU itself: precision and device maps follow it) are
the only places that ask torch which device there is. The two-rank DeepSpeed tests on the CPU
replace ``accelerator_present`` alone (tests/workflow/deepspeed_cpu), so the code under test is
unchanged.
"""

from __future__ import annotations

import os

LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")


def launcher(processes: int, deepspeed: str | None = None) -> str:
    """The command prefix that runs a module (``… -m rlcausality.X``)."""
    if processes > 1 or (processes >= 1 and deepspeed):
        return f"torchrun --standalone --nproc_per_node={processes} -m"
    return "python -m"


def deepspeed_stage(name: str | None, quantized: bool) -> str | None:
    """The ZeRO stage a job really runs: a quantised base (QLoRA) is placed on each rank's GPU
    with a device map, which ZeRO-3 refuses, so it runs ZeRO-2 (only the adapter trains)."""
    if quantized and name == "zero3":
        return "zero2"
    return name


def describe(processes: int, deepspeed: str | None = None) -> str:
    """``torchrun ×2, DeepSpeed zero3`` or ``python, CPU``: the launcher in a few words."""
    kind = "torchrun" if launcher(processes, deepspeed).startswith("torchrun") else "python"
    where = f"{processes} GPU" + ("s" if processes != 1 else "") if processes else "CPU"
    ds = f", DeepSpeed {deepspeed}" if deepspeed and processes else ""
    return f"{kind}, {where}{ds}"


def accelerator_present() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_capability() -> tuple[int, int] | None:
    """The compute capability of the job's GPU, or None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    return tuple(torch.cuda.get_device_capability())  # type: ignore[return-value]


def missing_launcher_env() -> list[str]:
    """The torchrun variables that are not set (all of them in a plain ``python -m``)."""
    return [name for name in LAUNCHER_ENV if not os.environ.get(name)]


def require_launcher(what: str) -> None:
    """Refuse to start DeepSpeed outside a launcher, naming the fix (not an mpi4py crash)."""
    missing = missing_launcher_env()
    if missing:
        raise RuntimeError(
            f"{what} needs a distributed launcher, but {', '.join(missing)} "
            "is not set: start it as `torchrun --standalone --nproc_per_node=N -m rlcausality.X` "
            "(the workflow's rules do; see rlcausality.launch) or set deepspeed: null for this "
            "stage"
        )


def require_vllm(section: str) -> None:
    """``<section>.use_vllm: true`` where vLLM cannot run is an error, never a quiet fallback."""
    import importlib.util

    if not accelerator_present():
        raise RuntimeError(f"{section}.use_vllm: true, but no GPU is present; vLLM needs one")
    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(
            f"{section}.use_vllm: true, but the vllm package is not installed in this "
            "environment; run the job in envs/rlcausality-vllm.yaml (`--sdm conda` picks it for "
            "vLLM jobs; README: vLLM) or set use_vllm: false"
        )


def configure_threads(threads: int | None) -> None:
    """Pin CPU threads (the 2-core machines train tiny models far faster with few threads)."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        threads = int(env) if env and env.isdigit() else None
    if threads and cuda_capability() is None:
        import torch

        torch.set_num_threads(threads)
