"""What the device has: package versions (as imported: the carried ones win), CUDA, NCCL,
DeepSpeed's accelerator, scratch space, and a bitsandbytes nf4 round trip and 4-bit matmul on
random data (relative errors against bf16), so a wrong native library shows here first."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import shutil
import subprocess
import sys
import time

PACKAGES = [
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
    "huggingface_hub",
    "safetensors",
    "bitsandbytes",
    "deepspeed",
    "pydantic",
    "numpy",
    "pandas",
    "pyarrow",
    "fsspec",
    "dill",
    "multiprocess",
    "xxhash",
    "regex",
    "typer",
    "jsonschema",
    "triton",
    "mpi4py",
    "psutil",
    "jinja2",
    "vllm",
]


def version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def where(name: str) -> str | None:
    try:
        return getattr(importlib.import_module(name), "__file__", None)
    except Exception as error:
        return f"import failed: {type(error).__name__}: {error}"[:300]


def bnb_check() -> dict:
    import torch

    out: dict = {}
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA"}
    import bitsandbytes as bnb
    import bitsandbytes.functional as F

    torch.manual_seed(0)
    w = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    q, state = F.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    back = F.dequantize_4bit(q, state)
    out["nf4_roundtrip_rel_err"] = float((back.float() - w.float()).norm() / w.float().norm())
    x = torch.randn(64, 4096, device="cuda", dtype=torch.bfloat16)
    ref = x.float() @ back.float().t()
    y = bnb.matmul_4bit(x, q.t(), quant_state=state)
    out["matmul_4bit_rel_err_vs_dequant"] = float((y.float() - ref).norm() / ref.norm())
    out["native_lib"] = str(getattr(bnb.cextension, "BNB_BACKEND", "")) or None
    lib = getattr(bnb.cextension, "lib", None)
    out["lib"] = str(getattr(lib, "_name", lib))[:200]
    return out


def main() -> None:
    start = time.perf_counter()
    info: dict = {"python": sys.version.split()[0], "versions": {p: version(p) for p in PACKAGES}}
    info["import_paths"] = {
        p: where(p)
        for p in ("torch", "transformers", "trl", "peft", "bitsandbytes", "deepspeed", "datasets")
    }
    import torch

    info["torch_cuda"] = torch.version.cuda
    info["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": list(torch.cuda.get_device_capability(0)),
            "sms": props.multi_processor_count,
        }
        info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        info["bf16_matmul_tflops"] = matmul_rate()
    for part, fn in (("bnb", bnb_check), ("deepspeed", ds_check), ("project", project_check)):
        try:
            info[part] = fn()
        except Exception as error:
            info[part] = {"error": f"{type(error).__name__}: {error}"[:1000]}
    info["disk_free_gib"] = {
        p: round(shutil.disk_usage(p).free / 2**30, 1)
        for p in ("/dev/shm", "/tmp")
        if shutil.os.path.isdir(p)
    }
    info["torchrun_on_path"] = shutil.which("torchrun")
    nvcc = shutil.which("nvcc")
    info["nvcc"] = (
        subprocess.run([nvcc, "--version"], capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
        if nvcc
        else None
    )
    info["probe_s"] = round(time.perf_counter() - start, 2)
    text = json.dumps(info, indent=1)
    if len(sys.argv) > 1:  # the file alone holds the JSON (libraries print to stdout too)
        with open(sys.argv[1], "w", encoding="utf-8") as out:
            out.write(text)
    print(text)


def matmul_rate() -> float:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return round(10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12, 1)


def ds_check() -> dict:
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    return {"version": deepspeed.__version__, "accelerator": get_accelerator()._name}


def project_check() -> dict:
    from rlcausality.evaluation import evaluate  # noqa: F401
    from rlcausality.launch import cuda_capability
    from rlcausality.models.loading import choose_precision
    from rlcausality.training import grpo, sft  # noqa: F401

    return {"imports": "ok", "capability": cuda_capability(), "precision": choose_precision().name}


if __name__ == "__main__":
    main()
