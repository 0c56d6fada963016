"""What SFT and GRPO share: checkpoints, trainer arguments, DeepSpeed, saving, manifests.

LoRA set-up and its checks live in ``rlcausality.training.lora``; ``run_stage`` is the one sequence
both entry points follow (train, resume, save, manifest).

Layout of a training stage's ``output_dir``::

    checkpoints/checkpoint-N/   trainer checkpoints (resume point; not a declared output)
    checkpoints/run.json        what they were trained from (``run_fingerprint``); a job whose
                                fingerprint differs sets them aside (checkpoints.stale-K/)
    adapter/                    the final LoRA adapter (+ tokenizer)
    merged/                     base + adapter merged (when configured, base not quantised)
    log_history.json            the trainer's log history (loss / reward curves)
    training_run.json           what varies between identical runs: wall time, resumed from,
                                final loss, host, package versions, git commit, where GRPO's
                                logged completions were kept
    tensorboard/, wandb/        curves, as ``tracking.report_to`` asks
    (``rlcausality.training.tracking``) completions/                GRPO's logged completions
    (``tracking.log_completions``) manifest.json               written last; its presence means the
    stage finished. It holds
                                what was trained and nothing that varies between identical runs
                                (settings less their operational keys, data, init, the adapter's
                                sha256), so a rerun that trains the same weights writes the same
                                bytes and what reads it (GRPO from SFT) has no reason to restart
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from rlcausality.models.loading import Precision, choose_precision, load_model
from rlcausality.provenance import model_source, provenance, settings_hash
from rlcausality.settings.blocks import Model, Settings, Tracking, TrainingStage, deciding
from rlcausality.training import tracking
from rlcausality.training.lm_head import label_positions_only
from rlcausality.training.lora import TrainableModel, fp32_adapters_for_fp16

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
)
DEEPSPEED_DIR = Path(__file__).parent / "deepspeed"


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


def run_arguments(
    model: Model,
    stage: TrainingStage,
    output_dir: str | Path,
    precision: Precision,
    watched: Tracking | None = None,
) -> dict[str, Any]:
    """The keyword arguments of SFTConfig and GRPOConfig that are not a setting of the same
    name (those are ``stage.trainer_arguments()``): where checkpoints go, precision, device,
    DeepSpeed, curves; ``watched``: the job's tracking (``rlcausality.training.tracking``; None:
    none)."""
    return {
        "output_dir": str(Path(output_dir) / "checkpoints"),
        "activation_checkpointing": stage.gradient_checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": False},
        "save_strategy": "steps",
        "bf16": precision.bf16,
        "fp16": precision.fp16,
        "use_cpu": not launch.accelerator_present(),
        "deepspeed": deepspeed_config(stage.deepspeed, model.quantized),
        "report_to": tracking.report_to(watched),
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


def adapter_weights_sha256(adapter: Path) -> str | None:
    """The sha256 of the saved adapter's weights file (what the stage trained)."""
    for name in WEIGHT_FILES:
        if (Path(adapter) / name).is_file():
            return sha256_file(Path(adapter) / name)
    return None


def save_merged(
    model_settings: Model, adapter: Path, tokenizer: Any, output_dir: str | Path
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
    precision = choose_precision(model_settings.dtype)
    base = load_model(dataclasses.replace(model_settings, quantization="none"), precision=precision)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    target = Path(output_dir) / "merged"
    with atomic_directory(target) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


@dataclass
class StageRun:
    """One training stage, ready to train: what ``run_stage`` needs, and what its manifest says.

    Build the trainer's arguments before the model (ZeRO-3 shards a model loaded after them).
    """

    settings: Settings
    stage: str  # "sft" or "grpo"
    output_dir: Path
    manifest_path: Path
    tokenizer: Any
    trainable: TrainableModel
    trainer: Any
    data: dict[str, Any]
    merge: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    watched: Tracking | None = None  # how the run is watched (rlcausality.training.tracking)


def run_fingerprint(run: StageRun) -> dict[str, Any]:
    """What the stage's checkpoints are trained from: the stage's settings and the model block
    (less ``settings.OPERATIONAL_KEYS``), the train rows' sha256 and the init manifest's. A
    checkpoint resumes only a run with the same fingerprint."""
    settings = deciding(run.settings.to_dict())
    stage = settings.get(run.stage, {})
    model = settings["model"]
    init = run.trainable.init_manifest
    return {
        "stage": run.stage,
        "settings": stage,
        "model": model,
        "train_sha256": run.data.get("train", {}).get("sha256"),
        "init_manifest_sha256": sha256_file(init) if init else None,
    }


def set_aside_stale_checkpoints(checkpoints: Path, fingerprint: dict[str, Any]) -> Path | None:
    """Move ``checkpoints`` to ``checkpoints.stale-K`` when they were trained from anything but
    ``fingerprint`` (other settings, other rows, another init; or no record of it), then record
    ``fingerprint`` there. Returns where stale checkpoints went, None when none were."""
    record = checkpoints / "run.json"
    moved = None
    # Empty folders (TRL's completions/, made when the trainer is built) are no checkpoints.
    if checkpoints.is_dir() and any(path.is_file() for path in checkpoints.rglob("*")):
        try:
            recorded = read_json(record)
        except (OSError, ValueError):
            recorded = None
        if recorded != json.loads(json.dumps(fingerprint)):
            k = 1
            while (moved := checkpoints.with_name(f"{checkpoints.name}.stale-{k}")).exists():
                k += 1
            checkpoints.rename(moved)
            print(
                f"checkpoints: {checkpoints} were trained from other settings, rows or init "
                f"than this run's; moved to {moved}, training starts afresh",
                flush=True,
            )
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_json(record, fingerprint)
    return moved


def run_stage(run: StageRun) -> dict[str, Any] | None:
    """Train (resuming from the newest complete checkpoint), save, write the manifest last.

    Call on every rank; returns the manifest on the main process, None on the others.
    """
    fp32_adapters_for_fp16(run.trainer.model, run.trainable.precision, run.settings.model)
    fingerprint = run_fingerprint(run)
    if run.trainer.is_world_process_zero():
        stale = set_aside_stale_checkpoints(Path(run.output_dir) / "checkpoints", fingerprint)
        if stale is not None:
            logs_completions = bool(getattr(run.trainer.args, "log_completions", False))
            tracking.set_aside(run.output_dir, stale, logs_completions)
    run_id = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{run.settings.model.name}/{run.stage}"
    tracking.wandb_environment(run.watched, run.output_dir, name, run_id)
    run.trainer.accelerator.wait_for_everyone()
    output, runtime, resumed = train(run.trainer, run.output_dir)
    return finish_stage(run, output, runtime, resumed)


def write_run_facts(
    output_dir: Path,
    trained: dict[str, Any],
    train_output: Any,
    runtime_s: float,
    resumed_from: Path | None,
) -> None:
    """``training_run.json``: what varies between identical runs, beside the manifest (GRPO's
    logged completions are kept in the stage folder first)."""
    completions = tracking.keep_completions(output_dir / "checkpoints", output_dir)
    write_json(
        output_dir / "training_run.json",
        {
            "train_loss": getattr(train_output, "training_loss", None),
            "train_runtime_s": round(runtime_s, 3),
            "resumed_from": str(resumed_from) if resumed_from else None,
            "completions_path": str(completions) if completions else None,
            "provenance": provenance(trained),
        },
    )


def finish_stage(
    run: StageRun, train_output: Any, runtime_s: float, resumed_from: Path | None
) -> dict[str, Any] | None:
    """Save adapter, merged weights, log history, then the manifest (last).

    Call on every rank; only the main process writes beyond the (collective) adapter save.
    """
    trainer, settings, trainable = run.trainer, run.settings, run.trainable
    model_settings = settings.model
    output_dir = Path(run.output_dir)
    adapter = save_adapter(trainer, run.tokenizer, output_dir)
    if not trainer.is_world_process_zero():
        return None
    merged = None
    if run.merge and not model_settings.quantized:
        merged = save_merged(model_settings, adapter, run.tokenizer, output_dir)
    log_history_path = output_dir / "log_history.json"
    write_json(log_history_path, trainer.state.log_history)
    trained = deciding(settings.to_dict())
    write_run_facts(output_dir, trained, train_output, runtime_s, resumed_from)
    manifest = {
        "model": model_settings.name,
        "stage": run.stage,
        "base_model": model_settings.path,
        "adapter_path": str(adapter),
        "merged_path": str(merged) if merged else None,
        "init": trainable.init,
        "init_manifest": trainable.init_manifest,
        "family": trainable.family.name,
        "quantization": model_settings.quantization,
        "lora_targets": trainable.targets,
        "adapted_modules": trainable.adapted,
        "adapter_sha256": adapter_weights_sha256(adapter),
        "settings": trained,
        "data": run.data,
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "log_history_path": str(log_history_path),
        "training_run_path": str(output_dir / "training_run.json"),
        "precision": trainable.precision.name,
        "deepspeed": launch.deepspeed_stage(
            run.settings.of(run.stage).deepspeed if trainer.args.deepspeed else None,
            model_settings.quantized,
        ),
        "world_size": trainer.args.world_size,
        "provenance": {
            "settings_hash": settings_hash(trained),
            "model_source": model_source(trained),
        },
        **run.extra,
    }
    write_json(run.manifest_path, manifest)
    return manifest


class _RunFinished(Exception):
    """Raised before the first step of a resumed run whose checkpoint is its last step."""


def _stop_if_finished() -> Any:
    """A callback that ends ``train`` as it begins when the resumed state is already at
    ``max_steps``: transformers would train one more step (past the schedule's end) before
    checking. Weights, optimizer and state are loaded by then, by transformers' own resume
    (DeepSpeed included), so what is saved is the checkpoint's."""
    from transformers import TrainerCallback

    class StopIfFinished(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if 0 < state.max_steps <= state.global_step:
                raise _RunFinished(state.global_step)

    return StopIfFinished()


def train(trainer: Any, output_dir: str | Path) -> tuple[Any, float, Path | None]:
    """Run the trainer, resuming from the newest complete checkpoint when there is one. A
    checkpoint of the run's last step is loaded, not trained on (the output is None)."""
    resume = latest_checkpoint(Path(output_dir) / "checkpoints")
    resumed_step = int(CHECKPOINT_PATTERN.match(resume.name).group(1)) if resume else 0
    tracking.start_tensorboard(trainer, output_dir, resumed_step)
    if resume is not None:
        print(f"resuming from {resume}", flush=True)
        trainer.add_callback(_stop_if_finished())
    start = time.monotonic()
    output = None
    try:
        with label_positions_only():  # the fused LM head skips the prompt on a CPU too
            output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except _RunFinished as finished:
        print(f"{resume} is the run's last step ({finished}): loaded, nothing trained", flush=True)
    return output, time.monotonic() - start, resume
