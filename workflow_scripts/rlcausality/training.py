"""What SFT and GRPO share: LoRA set-up and checks, checkpoints, DeepSpeed, saving, manifests.

Layout of a training stage's ``output_dir``::

    checkpoints/checkpoint-N/   trainer checkpoints (resume point; not a declared output)
    adapter/                    the final LoRA adapter (+ tokenizer)
    merged/                     base + adapter merged (when configured, base not quantised)
    log_history.json            the trainer's log history (loss / reward curves)
    manifest.json               written last; its presence means the stage finished
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcausality import launch
from rlcausality.io import atomic_directory, read_json, sha256_file, write_json
from rlcausality.models.families import Family, get_family, lora_targets
from rlcausality.models.loading import Precision, choose_precision, load_model
from rlcausality.provenance import provenance

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
)
DEEPSPEED_DIR = Path(__file__).parent / "deepspeed"


# --------------------------------------------------------------------------- LoRA


def linear_module_names(model: Any) -> set[str]:
    """Last name components of every linear layer (bitsandbytes layers included)."""
    import torch

    names = set()
    for name, module in model.named_modules():
        kind = type(module).__name__
        if isinstance(module, torch.nn.Linear) or kind in ("Linear4bit", "Linear8bitLt"):
            names.add(name.rsplit(".", 1)[-1])
    return names


def check_targets_exist(model: Any, targets: list[str] | str) -> None:
    """Every LoRA target must name a linear layer of the model (no silent partial LoRA)."""
    if isinstance(targets, str):
        return  # "all-linear": PEFT finds the layers itself
    present = linear_module_names(model)
    missing = [t for t in targets if t not in present]
    if missing:
        model_type = getattr(model.config, "model_type", "?")
        raise ValueError(
            f"LoRA target module(s) {missing} do not exist in this {model_type} model; its linear "
            f"layers are {sorted(present)}. Set the model's family or lora.target_modules to match."
        )


def adapted_module_names(model: Any) -> set[str]:
    """Last name components of the modules that carry a LoRA adapter."""
    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if hasattr(module, "lora_A") and len(getattr(module, "lora_A", {})) > 0
    }


def check_adapted(model: Any, targets: list[str] | str) -> list[str]:
    """The adapted modules must be exactly ``targets``; returns them sorted."""
    adapted = adapted_module_names(model)
    if not adapted:
        raise ValueError("no module carries a LoRA adapter")
    if not isinstance(targets, str) and adapted != set(targets):
        raise ValueError(
            f"LoRA adapted modules {sorted(adapted)} differ from the targets {sorted(targets)}"
        )
    return sorted(adapted)


def check_family(model: Any, family: Family) -> None:
    model_type = getattr(model.config, "model_type", None)
    if model_type not in family.model_types:
        raise ValueError(
            f"family {family.name!r} expects model_type {list(family.model_types)}, but the model "
            f"is {model_type!r}; fix the model's family in config.yaml"
        )


def lora_config(stage: dict[str, Any], targets: list[str] | str) -> Any:
    from peft import LoraConfig

    lora = stage.get("lora") or {}
    return LoraConfig(
        r=int(lora.get("r", 8)),
        lora_alpha=float(lora.get("alpha", 16)),
        lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def is_quantized(model_settings: dict[str, Any]) -> bool:
    return model_settings.get("quantization", "none") != "none"


def prepare_base(model: Any, model_settings: dict[str, Any], stage: dict[str, Any]) -> Any:
    """QLoRA preparation for a quantised base; gradient checkpointing set-up otherwise."""
    gradient_checkpointing = bool(stage.get("gradient_checkpointing"))
    if is_quantized(model_settings):
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    if gradient_checkpointing:
        model.enable_input_require_grads()
    return model


@dataclass
class TrainableModel:
    model: Any
    precision: Precision
    family: Family
    targets: list[str] | str
    adapted: list[str] = field(default_factory=list)
    init: str = "base"
    init_manifest: str | None = None


def stage_precision(settings: dict[str, Any]) -> Precision:
    return choose_precision(settings["model"].get("dtype", "auto"))


def zero3_enabled(args: Any) -> bool:
    """True when the trainer arguments ``args`` run DeepSpeed ZeRO-3."""
    plugin = getattr(args, "deepspeed_plugin", None) if args is not None else None
    return plugin is not None and plugin.zero_stage == 3


def adapter_dtype_kwargs(model_settings: dict[str, Any], args: Any) -> dict[str, Any]:
    """Keep LoRA weights in the base's dtype under ZeRO-3 (non-quantised), as TRL does.

    PEFT upcasts adapters to fp32 by default; ZeRO-3 gathers parameters into buffers of the
    first parameter's dtype, so a bf16 base with fp32 adapters fails at the first optimizer
    step (trl#6089, DeepSpeed#8072). TRL avoids it only when it builds the PEFT model itself.
    """
    if zero3_enabled(args) and not is_quantized(model_settings):
        return {"autocast_adapter_dtype": False}
    return {}


def fp32_adapters_for_fp16(model: Any, precision: Precision, model_settings: dict) -> int:
    """Trainable weights back to fp32 for fp16 mixed precision; returns how many were cast.

    TRL casts QLoRA adapters to bf16 when it builds its trainer (whatever the precision); on a
    pre-Ampere GPU training runs in fp16 autocast, where bf16 weights would be emulated and the
    fp16 gradient scaler expects fp32 master weights. Call after the trainer is built (its
    optimizer is created later, in ``train``).
    """
    import torch

    if not (precision.fp16 and is_quantized(model_settings)):
        return 0
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


def new_lora_model(settings: dict[str, Any], stage_name: str, args: Any = None) -> TrainableModel:
    """The base model with a fresh LoRA adapter of the stage's settings, checked.

    Build the trainer's config (``args``) first: with ZeRO-3 the model must be loaded after it.
    """
    from peft import get_peft_model

    model_settings, stage = settings["model"], settings[stage_name]
    family = get_family(model_settings["family"])
    precision = stage_precision(settings)
    base = load_model(model_settings, precision=precision)
    check_family(base, family)
    targets = lora_targets(stage, family)
    check_targets_exist(base, targets)
    base = prepare_base(base, model_settings, stage)
    model = get_peft_model(
        base, lora_config(stage, targets), **adapter_dtype_kwargs(model_settings, args)
    )
    adapted = check_adapted(model, targets)
    return TrainableModel(model, precision, family, targets, adapted)


def continued_lora_model(
    settings: dict[str, Any], stage_name: str, init_manifest: str, args: Any = None
) -> TrainableModel:
    """The base model plus the adapter of an earlier stage (its manifest), trainable."""
    from peft import PeftModel

    model_settings, stage = settings["model"], settings[stage_name]
    family = get_family(model_settings["family"])
    manifest = read_json(init_manifest)
    precision = stage_precision(settings)
    base = load_model(model_settings, path=manifest["base_model"], precision=precision)
    check_family(base, family)
    base = prepare_base(base, model_settings, stage)
    model = PeftModel.from_pretrained(
        base,
        manifest["adapter_path"],
        is_trainable=True,
        **adapter_dtype_kwargs(model_settings, args),
    )
    targets = model.peft_config["default"].target_modules
    targets = targets if isinstance(targets, str) else sorted(targets)
    adapted = check_adapted(model, targets)
    return TrainableModel(model, precision, family, targets, adapted, "sft", str(init_manifest))


# --------------------------------------------------------------------------- checkpoints


def checkpoint_is_complete(path: Path) -> bool:
    """trainer_state.json (written last by the Trainer) parses, and weights are present."""
    state = path / "trainer_state.json"
    if not state.is_file() or not any((path / name).is_file() for name in WEIGHT_FILES):
        return False
    try:
        json.loads(state.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return True


def latest_checkpoint(checkpoints_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoint-N`` in ``checkpoints_dir``; None if there is none."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return None
    found = []
    for child in root.iterdir():
        match = CHECKPOINT_PATTERN.match(child.name)
        if match and child.is_dir() and checkpoint_is_complete(child):
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


# --------------------------------------------------------------------------- trainer arguments


def deepspeed_config(name: str | None, quantized: bool = False) -> str | None:
    """The DeepSpeed JSON for ``zero2``/``zero3`` on a GPU; None on a CPU or when unset.

    A quantised base runs ZeRO-2 (``launch.deepspeed_stage``). DeepSpeed must run under a
    launcher (``rlcausality.launch``): without one this stops with the fix named, not with
    DeepSpeed's ``import mpi4py`` fallback.
    """
    if not name or not launch.accelerator_present():
        return None
    if launch.deepspeed_stage(name, quantized) != name:
        print("deepspeed: zero3 with a quantised base is not supported; using zero2", flush=True)
        name = launch.deepspeed_stage(name, quantized)
    path = DEEPSPEED_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"deepspeed: {name!r} has no config file {path}")
    if importlib.util.find_spec("deepspeed") is None:
        raise RuntimeError(
            f"deepspeed: {name!r} is configured and a GPU is present, but the deepspeed package "
            "is not installed; `pip install -e '.[deepspeed]'` or set deepspeed: null for this "
            "stage"
        )
    launch.require_launcher(f"deepspeed: {name}")
    return str(path)


def common_arguments(
    settings: dict[str, Any], stage_name: str, output_dir: str | Path, precision: Precision
) -> dict[str, Any]:
    """Keyword arguments shared by SFTConfig and GRPOConfig."""
    stage = settings[stage_name]
    return {
        "output_dir": str(Path(output_dir) / "checkpoints"),
        "per_device_train_batch_size": stage["per_device_train_batch_size"],
        "gradient_accumulation_steps": stage["gradient_accumulation_steps"],
        "learning_rate": stage["learning_rate"],
        "num_train_epochs": stage.get("num_train_epochs", 1),
        "max_steps": stage.get("max_steps", -1),
        "warmup_steps": stage.get("warmup_steps", 0),
        "lr_scheduler_type": stage.get("lr_scheduler_type", "linear"),
        "activation_checkpointing": bool(stage.get("gradient_checkpointing")),
        "activation_checkpointing_kwargs": {"use_reentrant": False},
        "save_strategy": "steps",
        "save_steps": stage["save_steps"],
        "save_total_limit": stage.get("save_total_limit"),
        "logging_steps": stage["logging_steps"],
        "seed": stage.get("seed", 42),
        "bf16": precision.bf16,
        "fp16": precision.fp16,
        "use_cpu": not launch.accelerator_present(),
        "deepspeed": deepspeed_config(stage.get("deepspeed"), is_quantized(settings["model"])),
        "report_to": "none",
        "disable_tqdm": True,
    }


# --------------------------------------------------------------------------- saving


def data_info(path: str | Path, rows: int) -> dict[str, Any]:
    return {"path": str(path), "sha256": sha256_file(path), "rows": rows}


def save_adapter(trainer: Any, tokenizer: Any, output_dir: str | Path) -> Path:
    """The trained adapter (and tokenizer) into ``output_dir/adapter``, atomically.

    Every rank must call this: ``trainer.save_model`` gathers ZeRO-3 shards. The main process
    then moves the staged files into place.
    """
    target = Path(output_dir) / "adapter"
    staging = Path(output_dir) / ".adapter.staging"
    main = trainer.is_world_process_zero()
    if main:
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    if main:
        with atomic_directory(target) as tmp:
            for item in staging.iterdir():
                shutil.move(str(item), tmp / item.name)
            tokenizer.save_pretrained(tmp)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def save_merged(
    model_settings: dict[str, Any], adapter: Path, tokenizer: Any, output_dir: str | Path
) -> Path:
    """Base + adapter merged into plain weights in ``output_dir/merged``, atomically.

    The unquantised base is loaded afresh so the trained (possibly sharded) model is untouched.
    """
    from peft import PeftModel
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    # Under ZeRO-3 the trainer registered its DeepSpeed config globally, and a model loaded
    # while it is registered is partitioned on load (a collective: rank 0 alone would block in
    # zero.Init). The merge runs on the main process only, on a plain unsharded copy.
    unset_hf_deepspeed_config()
    precision = choose_precision(model_settings.get("dtype", "auto"))
    base = load_model({**model_settings, "quantization": "none"}, precision=precision)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    target = Path(output_dir) / "merged"
    with atomic_directory(target) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def finish_stage(
    *,
    trainer: Any,
    tokenizer: Any,
    settings: dict[str, Any],
    stage_name: str,
    trainable: TrainableModel,
    output_dir: str | Path,
    manifest_path: str | Path,
    data: dict[str, Any],
    train_output: Any,
    runtime_s: float,
    resumed_from: Path | None,
    merge: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Save adapter, merged weights, log history, then the manifest (last).

    Call on every rank; only the main process writes beyond the (collective) adapter save.
    """
    model_settings = settings["model"]
    output_dir = Path(output_dir)
    adapter = save_adapter(trainer, tokenizer, output_dir)
    if not trainer.is_world_process_zero():
        return None
    merged = None
    if merge and not is_quantized(model_settings):
        merged = save_merged(model_settings, adapter, tokenizer, output_dir)
    log_history_path = output_dir / "log_history.json"
    write_json(log_history_path, trainer.state.log_history)
    manifest = {
        "model": model_settings.get("name"),
        "stage": stage_name,
        "base_model": model_settings["path"],
        "adapter_path": str(adapter),
        "merged_path": str(merged) if merged else None,
        "init": trainable.init,
        "init_manifest": trainable.init_manifest,
        "family": trainable.family.name,
        "quantization": model_settings.get("quantization", "none"),
        "lora_targets": trainable.targets,
        "adapted_modules": trainable.adapted,
        "settings": settings,
        "data": data,
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "train_loss": getattr(train_output, "training_loss", None),
        "train_runtime_s": round(runtime_s, 3),
        "resumed_from": str(resumed_from) if resumed_from else None,
        "log_history_path": str(log_history_path),
        "precision": trainable.precision.name,
        "deepspeed": trainer.args.deepspeed,
        "world_size": trainer.args.world_size,
        "provenance": provenance(settings),
        **(extra or {}),
    }
    write_json(manifest_path, manifest)
    return manifest


def train(trainer: Any, output_dir: str | Path) -> tuple[Any, float, Path | None]:
    """Run the trainer, resuming from the newest complete checkpoint when there is one."""
    resume = latest_checkpoint(Path(output_dir) / "checkpoints")
    if resume is not None:
        print(f"resuming from {resume}", flush=True)
    start = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return output, time.monotonic() - start, resume
