"""A job's settings, typed: frozen dataclasses built once from the completed settings dict.

``config.load_settings`` is the one way an entry point reads ``--settings``: it lays the recipe's
values (``recipe_defaults.yaml``, the one home of every default) under each section, then
builds a ``Settings`` here. The fields are the keys of ``config.schema.yaml`` (the contract); a
field has a default only where the schema lets a block leave a key out (None: absent), never a
recipe value. A missing or unknown key is a ``ConfigError`` naming it. ``to_dict()`` gives back
exactly the dict a block was built from, for manifests, metrics and settings hashes.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Self

from rlcausality.models.sources import BLOCKS


class ConfigError(ValueError):
    """One or more problems in the configuration; ``problems`` lists them one per line."""

    def __init__(self, problems: Iterable[str], source: str = "config.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _block_type(hint: Any) -> type[Block] | None:
    """The block class of a field's type (``Lora``, ``Lora | None``), or None."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Block):
            return candidate
    return None


def _frozen(value: Any) -> Any:
    """Lists as tuples and dicts as read-only mappings, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def _plain(value: Any) -> Any:
    """The JSON shape of a value again: blocks and mappings as dicts, tuples as lists."""
    if isinstance(value, Block):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


@dataclasses.dataclass(frozen=True)
class Block:
    """A block of settings: one field per key. A field with the default None is a key the
    schema lets the block leave out; ``to_dict`` leaves it out again."""

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Self:
        """The block of ``data``; ConfigError listing every missing or unknown key (with its
        path, ``where`` the path of the block itself)."""
        if not isinstance(data, Mapping):
            kind = type(data).__name__
            raise ConfigError([f"{where or 'settings'}: expected a mapping, got {kind}"])
        fields = {field.name: field for field in dataclasses.fields(cls)}
        problems = [
            f"{_key(where, key)}: unknown key; check its spelling"
            for key in data
            if key not in fields
        ]
        values = {}
        for name, field in fields.items():
            if name not in data:
                if field.default is dataclasses.MISSING:
                    problems.append(f"{_key(where, name)}: missing")
                continue
            block = _block_type(_hints(cls)[name])
            if block is None or data[name] is None:
                values[name] = _frozen(data[name])
                continue
            try:
                values[name] = block.from_dict(data[name], _key(where, name))
            except ConfigError as err:
                problems += err.problems
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The dict this block was built from (the keys it left out stay out)."""
        return {
            field.name: _plain(getattr(self, field.name))
            for field in dataclasses.fields(self)
            if not (field.default is None and getattr(self, field.name) is None)
        }

    def of(self, name: str) -> Any:
        """The field ``name`` when a stage or rule names it (``settings.of("sft")``,
        ``resources.of(rule)``); ConfigError when the block has no such key or left it out."""
        value = getattr(self, name, None) if name in _hints(type(self)) else None
        if value is None:
            raise ConfigError([f"{name}: missing; these settings have no {name!r} block"])
        return value


@dataclasses.dataclass(frozen=True)
class Model(Block):
    """The ``model`` block: where the base model loads from and how (``rlcausality.models``)."""

    name: str
    source: str
    family: str
    path: str
    quantization: str
    dtype: str
    trust_remote_code: bool
    revision: str | None
    system_prompt: str | None
    # the stages the DAG builds for the model: the workflow's, never a job's (OPERATIONAL_KEYS)
    stages: tuple[str, ...] | None = None
    id: str | None = None  # the hub id or local folder (sources hub and path)
    hub: Mapping[str, Any] | None = None  # the downloaded snapshot it is pinned to (models.hub)
    # each source's own block (tiny, gguf: models.sources.BLOCKS), by its key
    blocks: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Self:
        if not isinstance(data, Mapping):
            return super().from_dict(data, where)
        if "blocks" in data:
            raise ConfigError([f"{_key(where, 'blocks')}: unknown key; check its spelling"])
        own = {key: value for key, value in data.items() if key not in BLOCKS}
        own["blocks"] = {key: value for key, value in data.items() if key in BLOCKS}
        return super().from_dict(own, where)

    def to_dict(self) -> dict[str, Any]:
        own = {key: value for key, value in super().to_dict().items() if key != "blocks"}
        return {**own, **_plain(self.blocks)}

    @property
    def quantized(self) -> bool:
        return self.quantization != "none"


@dataclasses.dataclass(frozen=True)
class Lora(Block):
    r: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...] | str | None  # None: the family's targets


@dataclasses.dataclass(frozen=True)
class Format(Block):
    max_length: int
    max_train_samples: int | None
    balance: bool
    sft_target: str
    # same | unseen (None: same); read by the workflow and validation, never in a job's
    # settings (config.DAG_KEYS): SFT's rows are an input of GRPO's train format job instead
    grpo_prompts: str | None = None


@dataclasses.dataclass(frozen=True)
class TrainingStage(Block):
    """What SFT and GRPO share (``training_common`` in the schema)."""

    lora: Lora
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    learning_rate: float
    num_train_epochs: float
    max_steps: int
    warmup_steps: int
    lr_scheduler_type: str
    gradient_checkpointing: bool
    deepspeed: str | None
    save_steps: int
    save_total_limit: int
    logging_steps: int
    seed: int
    progress_interval_s: float


@dataclasses.dataclass(frozen=True)
class Sft(TrainingStage):
    max_length: int
    completion_only_loss: bool
    merge: bool


@dataclasses.dataclass(frozen=True)
class Grpo(TrainingStage):
    init: str
    rewards: tuple[str, ...]
    reward_weights: tuple[float, ...] | None
    num_generations: int
    max_completion_length: int
    temperature: float
    top_p: float
    beta: float
    loss_type: str
    scale_rewards: str
    use_vllm: bool
    # the GPU share vLLM's colocated engine takes (None: TRL's default, 0.3)
    vllm_gpu_memory_utilization: float | None = None


@dataclasses.dataclass(frozen=True)
class StagePrompts(Block):
    """``evaluate.prompt``: the prompt style (sft or grpo) each stage is evaluated with."""

    base: str
    sft: str
    grpo: str


@dataclasses.dataclass(frozen=True)
class NewTokens(Block):
    """``evaluate.max_new_tokens``: the completion budget of each prompt style."""

    sft: int
    grpo: int


@dataclasses.dataclass(frozen=True)
class Evaluate(Block):
    test_sets: tuple[str, ...] | None  # None: every test split of the corpus
    prompt: StagePrompts
    batch_size: int
    max_new_tokens: NewTokens
    temperature: float
    top_p: float
    max_samples: int | None
    use_vllm: bool
    dtype: str  # auto (the model's training precision) | bfloat16 | float32
    chunk_size: int
    progress_interval_s: float


@dataclasses.dataclass(frozen=True)
class Resource(Block):
    gpus: int
    mem_mb: int
    runtime: int
    cpus: int
    seconds_per_step: float | None = None  # measured; None: the plan's estimate
    gpu_model: str | None = None  # the site's GPU type (sbatch --gpus=TYPE:N); None: any


@dataclasses.dataclass(frozen=True)
class Resources(Block):
    data: Resource
    sft: Resource
    grpo: Resource
    evaluate: Resource


@dataclasses.dataclass(frozen=True)
class Tracking(Block):
    """``tracking``: how a training run is watched (``rlcausality.tracking``). Not part of a
    job's ``Settings``: it decides no output, so it is no job's params."""

    report_to: str  # none | tensorboard | wandb
    log_completions: bool  # GRPO: TRL's sampled completions, rewards and advantages
    wandb_project: str


@dataclasses.dataclass(frozen=True)
class Settings(Block):
    """A job's settings: the model block and the sections the job has (a stage's job gets its
    own section, ``config.stage_settings``; ``config.resolve_model`` gives them all)."""

    model: Model
    format: Format | None = None
    sft: Sft | None = None
    grpo: Grpo | None = None
    evaluate: Evaluate | None = None
    resources: Resources | None = None


# --------------------------------------------------------------------------- operational keys

_SAVING = frozenset({"logging_steps", "save_steps", "save_total_limit", "progress_interval_s"})
# The keys that decide no output, declared once for every change detector (a job's Snakemake
# params, its manifest, the checkpoints' run record, the partial predictions' fingerprint): how
# often a job logs, saves or reports progress, how evaluation cuts the chunks it saves (its
# batches do not depend on it: generation.generate_transformers), and which stages and test sets
# exist (they decide which jobs exist, not what a job writes). A job gets them apart from its
# params (``--operational``), so changing one reruns nothing. Resources are not settings of a job.
OPERATIONAL_KEYS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "model": frozenset({"stages"}),
        "sft": _SAVING,
        "grpo": _SAVING,
        "evaluate": frozenset({"progress_interval_s", "chunk_size", "test_sets"}),
    }
)


def split_operational(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A settings dict as (what decides the job's output, the ``OPERATIONAL_KEYS`` in it)."""
    deciding: dict[str, Any] = {}
    operational: dict[str, Any] = {}
    for section, value in settings.items():
        keys = OPERATIONAL_KEYS.get(section, frozenset())
        if not isinstance(value, Mapping) or not keys:
            deciding[section] = value
            continue
        deciding[section] = {k: v for k, v in value.items() if k not in keys}
        if picked := {k: v for k, v in value.items() if k in keys}:
            operational[section] = picked
    return deciding, operational


def deciding(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` without its operational keys: what may change an output."""
    return split_operational(settings)[0]
