"""LoRA on a base model: targets per family, the checks that they are the ones meant, dtypes.

``new_lora_model`` puts a fresh adapter on the base (SFT, or GRPO from the base);
``continued_lora_model`` loads an earlier stage's adapter to train on (GRPO from SFT). Both check
that the family matches the model and that the adapted modules are exactly the targets (Qwen2
names on a Phi-3 model would silently adapt only ``o_proj`` and ``down_proj``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlcausality.io import read_json
from rlcausality.models.families import Family, get_family, lora_targets
from rlcausality.models.loading import Precision, choose_precision, load_model
from rlcausality.settings.blocks import Lora, Model, TrainingStage


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


def lora_config(lora: Lora, targets: list[str] | str) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=int(lora.r),
        lora_alpha=float(lora.alpha),
        lora_dropout=float(lora.dropout),
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def prepare_base(model: Any, model_settings: Model, stage: TrainingStage) -> Any:
    """QLoRA preparation for a quantised base; gradient checkpointing set-up otherwise."""
    gradient_checkpointing = bool(stage.gradient_checkpointing)
    if model_settings.quantized:
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


def stage_precision(model: Model) -> Precision:
    return choose_precision(model.dtype)


def zero3_enabled(args: Any) -> bool:
    """True when the trainer arguments ``args`` run DeepSpeed ZeRO-3."""
    plugin = getattr(args, "deepspeed_plugin", None) if args is not None else None
    return plugin is not None and plugin.zero_stage == 3


def adapter_dtype_kwargs(model_settings: Model, args: Any) -> dict[str, Any]:
    """Keep LoRA weights in the base's dtype under ZeRO-3 (non-quantised), as TRL does.

    PEFT upcasts adapters to fp32 by default; ZeRO-3 gathers parameters into buffers of the
    first parameter's dtype, so a bf16 base with fp32 adapters fails at the first optimizer
    step (trl#6089, DeepSpeed#8072). TRL avoids it only when it builds the PEFT model itself.
    """
    if zero3_enabled(args) and not model_settings.quantized:
        return {"autocast_adapter_dtype": False}
    return {}


def fp32_adapters_for_fp16(model: Any, precision: Precision, model_settings: Model) -> int:
    """Trainable weights back to fp32 for fp16 mixed precision; returns how many were cast.

    TRL casts QLoRA adapters to bf16 when it builds its trainer (whatever the precision); on a
    pre-Ampere GPU training runs in fp16 autocast, where bf16 weights would be emulated and the
    fp16 gradient scaler expects fp32 master weights. Call after the trainer is built (its
    optimizer is created later, in ``train``).
    """
    import torch

    if not (precision.fp16 and model_settings.quantized):
        return 0
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


def new_lora_model(model_settings: Model, stage: TrainingStage, args: Any = None) -> TrainableModel:
    """The base model with a fresh LoRA adapter of the stage's settings, checked.

    Build the trainer's config (``args``) first: with ZeRO-3 the model must be loaded after it.
    """
    precision = stage_precision(model_settings)
    base = load_model(model_settings, precision=precision)
    return attach_lora(base, model_settings, stage, precision, args)


def attach_lora(
    base: Any, model_settings: Model, stage: TrainingStage, precision: Precision, args: Any = None
) -> TrainableModel:
    """A fresh LoRA adapter of the stage's settings on an already loaded ``base``, checked.

    The adapter's random initialisation (PEFT draws ``lora_A`` from torch's global generator)
    is seeded with the stage's ``seed`` first: the trainer seeds only once it is built, after
    the model, so without this two runs of one seed started from different ``lora_A`` (the
    first loss agrees, since ``lora_B`` starts at zero; every later one differed)."""
    from peft import get_peft_model
    from transformers import set_seed

    set_seed(int(stage.seed))

    family = get_family(model_settings.family)
    check_family(base, family)
    targets = lora_targets(stage.lora, family)
    check_targets_exist(base, targets)
    base = prepare_base(base, model_settings, stage)
    model = get_peft_model(
        base, lora_config(stage.lora, targets), **adapter_dtype_kwargs(model_settings, args)
    )
    adapted = check_adapted(model, targets)
    return TrainableModel(model, precision, family, targets, adapted)


def continued_lora_model(
    model_settings: Model, stage: TrainingStage, init_manifest: str, args: Any = None
) -> TrainableModel:
    """The base model plus the adapter of an earlier stage (its manifest), trainable."""
    from peft import PeftModel

    family = get_family(model_settings.family)
    manifest = read_json(init_manifest)
    precision = stage_precision(model_settings)
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
