"""How a training run is watched: curves for TensorBoard or W&B, and GRPO's sampled completions.

Config ``tracking:`` (defaults in settings.Tracking: TensorBoard, completions logged). It decides no
output, so it is no job's params: the workflow hands it to every job in ``RLCAUSALITY_TRACKING`` (a
JSON object, exported by ``shell.prefix`` in rules/common.smk) and an entry point reads it with
``from_env`` (the declared defaults when the variable is unset). Changing it reruns nothing.

What it writes into a training stage's folder (``results/models/{model}/{stage}/``)::

    tensorboard/   event files of transformers' TensorBoardCallback (report_to "tensorboard"),
                   one per session: a resumed session's writer purges the steps after its
                   checkpoint (torch's ``purge_step``), so the curve continues instead of
                   starting over; checkpoints set aside as stale take the folder with them
    wandb/         W&B's offline run (report_to "wandb"; ``wandb sync`` uploads it), one run id
                   per checkpoint fingerprint, so a resumed session continues the same run
    completions/   GRPO: TRL's ``completions_NNNNN.parquet`` per logged step (prompt,
                   completion, each reward, advantage), copied from ``checkpoints/completions``
                   (where TRL writes them) when the stage ends
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlcausality.io import atomic_directory
from rlcausality.settings.blocks import Tracking
from rlcausality.settings.fields import ConfigError

ENV_VAR = "RLCAUSALITY_TRACKING"
TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
COMPLETIONS_DIR = "completions"


def defaults() -> dict[str, Any]:
    """The recipe's values of the ``tracking`` block (declared in ``settings.Tracking``)."""
    return Tracking().to_dict()


def load(value: Mapping[str, Any] | None, source: str = "tracking") -> Tracking:
    """The typed ``tracking`` block: ``value`` over the declared defaults."""
    try:
        return Tracking.from_dict({**defaults(), **(value or {})}, "tracking")
    except ConfigError as err:
        raise ConfigError(err.problems, source) from None


def from_env() -> Tracking:
    """A job's tracking: ``RLCAUSALITY_TRACKING`` when set, else the declared defaults."""
    text = os.environ.get(ENV_VAR)
    if not text:
        return load(None)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError([f"{ENV_VAR}: not valid JSON ({err.msg})"], ENV_VAR) from None
    return load(value, ENV_VAR)


def shell_export(config_tracking: Mapping[str, Any] | None) -> str:
    """``export RLCAUSALITY_TRACKING='{...}'; ``: the shell prefix that hands config
    ``tracking`` to every job (validated first)."""
    value = load(config_tracking).to_dict()
    return f"export {ENV_VAR}={shlex.quote(json.dumps(value, sort_keys=True))}; "


def report_to(tracking: Tracking | None) -> str:
    """TrainingArguments' ``report_to``: ``none`` without tracking."""
    return tracking.report_to if tracking is not None else "none"


def require(tracking: Tracking | None) -> None:
    """Stop before any model is loaded when the backend asked for cannot be used."""
    if report_to(tracking) == "wandb" and importlib.util.find_spec("wandb") is None:
        raise RuntimeError(
            "tracking.report_to: wandb, but the wandb package is not installed in this "
            "environment; `pip install -e '.[wandb]'` or set tracking.report_to: tensorboard"
        )
    if report_to(tracking) == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise RuntimeError(
            "tracking.report_to: tensorboard, but the tensorboard package is not installed in "
            "this environment (a dependency of rlcausality); reinstall it or set "
            "tracking.report_to: none"
        )


def wandb_environment(
    tracking: Tracking | None, stage_dir: str | Path, name: str, run_id: str
) -> None:
    """W&B offline, in the stage's folder, one run per checkpoint fingerprint (``run_id``):
    read by ``wandb.init`` when training begins. Nothing without report_to ``wandb``."""
    if report_to(tracking) != "wandb":
        return
    directory = Path(stage_dir)
    (directory / WANDB_DIR).mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "WANDB_MODE": "offline",
            "WANDB_DIR": str(directory),
            "WANDB_PROJECT": tracking.wandb_project,
            "WANDB_NAME": name,
            "WANDB_RUN_ID": run_id,
            "WANDB_RESUME": "allow",
        }
    )


def tensorboard_dir(stage_dir: str | Path) -> Path:
    return Path(stage_dir) / TENSORBOARD_DIR


def start_tensorboard(trainer: Any, stage_dir: str | Path, resumed_step: int) -> Path | None:
    """Give the trainer's TensorBoardCallback (present with report_to "tensorboard") a writer
    in ``stage_dir/tensorboard`` that purges every step after ``resumed_step`` (0 for a fresh
    run): steps logged after the checkpoint a session resumes from were trained again, and
    TensorBoard shows the new ones in their place. Returns the folder, None without a callback.
    """
    from transformers.integrations import TensorBoardCallback

    handler = trainer.callback_handler
    callbacks = [c for c in handler.callbacks if isinstance(c, TensorBoardCallback)]
    if not callbacks or not trainer.is_world_process_zero():
        return None
    from torch.utils.tensorboard import SummaryWriter

    folder = tensorboard_dir(stage_dir)
    for callback in callbacks:
        callback.tb_writer = SummaryWriter(log_dir=str(folder), purge_step=resumed_step + 1)
    return folder


def set_aside(stage_dir: str | Path, stale_checkpoints: Path, log_completions: bool) -> None:
    """After checkpoints were set aside as stale: their curves go with them (still a run in
    TensorBoard), and the completions folder TRL made when the trainer was built (and writes
    into at every logged step) is made again."""
    folder = tensorboard_dir(stage_dir)
    if folder.is_dir():
        folder.rename(stale_checkpoints / TENSORBOARD_DIR)
    if log_completions:
        (Path(stage_dir) / "checkpoints" / COMPLETIONS_DIR).mkdir(parents=True, exist_ok=True)


def keep_completions(checkpoints: str | Path, stage_dir: str | Path) -> Path | None:
    """Copy TRL's logged completions (``checkpoints/completions/*.parquet``) into
    ``stage_dir/completions``, atomically; None when none were logged."""
    source = Path(checkpoints) / COMPLETIONS_DIR
    files = sorted(source.glob("completions_*.parquet")) if source.is_dir() else []
    if not files:
        return None
    target = Path(stage_dir) / COMPLETIONS_DIR
    with atomic_directory(target) as tmp:
        for path in files:
            shutil.copy2(path, tmp / path.name)
    return target
