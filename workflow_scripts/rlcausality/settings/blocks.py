"""Every setting of a job, declared once: frozen dataclasses, one field per key.

A field says all there is to say about its setting:

* its type (the hint: ``Literal`` for a choice, ``X | None`` where null is a value);
* its recipe value (the default: the original research recipe's; a subclass that
  only restates a default, ``learning_rate: float = 2.0e-5`` in ``Sft``, keeps its parent's
  declaration);
* its constraints, as JSON-schema keywords in ``setting(...)`` (``minimum=1``);
* what it is to the workflow: ``trainer`` (an argument of TRL's ``SFTConfig``/``GRPOConfig`` under
  the same name, passed as is: ``TrainingStage.trainer_arguments``), ``operational`` (decides no
  output: ``OPERATIONAL_KEYS``), ``dag`` (read by the workflow to build the DAG, never by a job:
  ``DAG_KEYS``), ``omit_none`` (None means "left out": no JSON null, and ``to_dict`` leaves it
  out).

Everything else is derived from these declarations: the config schema's blocks (``block_schema``,
assembled by ``config.schema``), the recipe's values under a block (``Block.from_dict`` fills
every key a block leaves out: the one merge of the recipe), the trainer arguments, and the
operational and DAG keys. A missing required key or an unknown key is a ``ConfigError`` naming
it; ``to_dict()`` gives the complete dict back, for params, manifests and settings hashes.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, Self

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


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """A new dict: ``base`` with ``override`` merged in key by key (override wins)."""
    merged = {key: _copied(value) for key, value in base.items()}
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _copied(value)
    return merged


def _copied(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


# --------------------------------------------------------------------------- declaring a setting


def setting(
    default: Any = dataclasses.MISSING,
    *,
    trainer: bool = False,
    operational: bool = False,
    dag: bool = False,
    omit_none: bool = False,
    user: bool = True,
    schema: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> Any:
    """A field declaring one setting: its recipe value (``default``), JSON-schema ``keywords``
    added to what its type says (``items`` merged into the items' schema), or a whole
    ``schema`` replacing it; ``user=False``: filled in by the workflow, not a key of the config."""
    metadata = {
        "trainer": trainer,
        "operational": operational,
        "dag": dag,
        "omit_none": omit_none,
        "user": user,
        "schema": schema,
        "keywords": keywords,
    }
    if default is not dataclasses.MISSING and type(default).__hash__ is None:
        return dataclasses.field(default_factory=lambda: default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _default(field: dataclasses.Field[Any]) -> Any:
    """A field's recipe value; ``dataclasses.MISSING`` when it has none (a required key)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _meta(cls: type, name: str) -> Mapping[str, Any]:
    """The declaration of field ``name``: the nearest class in the MRO that declared it with
    ``setting`` (a subclass restating only the default keeps its parent's)."""
    for klass in cls.__mro__:
        field = vars(klass).get("__dataclass_fields__", {}).get(name)
        if field is not None and field.metadata:
            return field.metadata
    return MappingProxyType({})


def flagged(cls: type, flag: str) -> tuple[str, ...]:
    """The fields of block ``cls`` declared with ``flag`` (``trainer``, ``operational``, ...)."""
    return tuple(f.name for f in dataclasses.fields(cls) if _meta(cls, f.name).get(flag))


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


# --------------------------------------------------------------------------- the schema of a block

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _type_schema(hint: Any, nullable: bool = True) -> dict[str, Any]:
    """The JSON schema a type hint says (``nullable=False``: None means left out, not null)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{hint}: declare its schema with setting(schema=...)")
        inner = _type_schema(rest[0])
        if nullable and len(rest) < len(args):
            inner["type"] = [inner["type"], "null"]
            if "enum" in inner:
                inner["enum"] = [*inner["enum"], None]
        return inner
    if origin is Literal:
        return {"type": _JSON_TYPES[type(args[0])], "enum": list(args)}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0])}
    if isinstance(hint, type) and issubclass(hint, Block):
        return block_schema(hint)
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"{hint}: no JSON type; declare its schema with setting(schema=...)")


def field_schema(cls: type, name: str, defaults: bool = False) -> dict[str, Any]:
    """The JSON schema of field ``name`` of block ``cls`` (with its default when ``defaults``)."""
    meta = _meta(cls, name)
    if meta.get("schema") is not None:
        made = dict(meta["schema"])
    else:
        made = _type_schema(_hints(cls)[name], nullable=not meta.get("omit_none"))
    for keyword, value in (meta.get("keywords") or {}).items():
        made[keyword] = {**made[keyword], **value} if keyword == "items" else value
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if _default(field) is not dataclasses.MISSING:
        made.pop("required", None)  # a block given in part is merged over the field's default
        if defaults:
            made["default"] = _plain(_default(field))
    return made


def block_schema(cls: type[Block], defaults: bool = False) -> dict[str, Any]:
    """The JSON schema of a block of the config: its user fields; a key is required only where
    the block declares no recipe value (``Model.source``); ``defaults``: with the recipe's
    values as the schema's defaults (blocks the validator fills in, ``tracking``)."""
    fields = [f for f in dataclasses.fields(cls) if _meta(cls, f.name).get("user", True)]
    made: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: field_schema(cls, f.name, defaults) for f in fields},
    }
    required = [f.name for f in fields if _default(f) is dataclasses.MISSING]
    if required:
        made["required"] = required
    if defaults:
        made["default"] = {}
    return made


# --------------------------------------------------------------------------- blocks


@dataclasses.dataclass(frozen=True)
class Block:
    """A block of settings: one field per key, each declared with ``setting``."""

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Self:
        """The block of ``data`` with the recipe's value of every key it leaves out (a nested
        block given in part: over the field's default block); ConfigError listing every missing
        or unknown key (with its path, ``where`` the path of the block itself)."""
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
            default = _default(field)
            if name not in data:
                if default is dataclasses.MISSING:
                    problems.append(f"{_key(where, name)}: missing")
                continue
            block = _block_type(_hints(cls)[name])
            if block is None or data[name] is None:
                values[name] = _frozen(data[name])
                continue
            given = data[name]
            if isinstance(default, Block) and isinstance(given, Mapping):
                given = deep_merge(default.to_dict(), given)
            try:
                values[name] = block.from_dict(given, _key(where, name))
            except ConfigError as err:
                problems += err.problems
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The complete dict of this block (the ``omit_none`` keys that are None left out)."""
        return {
            field.name: _plain(getattr(self, field.name))
            for field in dataclasses.fields(self)
            if not (
                _meta(type(self), field.name).get("omit_none") and getattr(self, field.name) is None
            )
        }

    def of(self, name: str) -> Any:
        """The field ``name`` when a stage or rule names it (``settings.of("sft")``,
        ``resources.of(rule)``); ConfigError when the block has no such key or left it out."""
        value = getattr(self, name, None) if name in _hints(type(self)) else None
        if value is None:
            raise ConfigError([f"{name}: missing; these settings have no {name!r} block"])
        return value


POSITIVE = {"minimum": 1}
FRACTION = {"exclusiveMinimum": 0, "maximum": 1}
Choice = Literal["sft", "grpo"]  # a prompt style (rlcausality.data.chat_format)


@dataclasses.dataclass(frozen=True)
class Model(Block):
    """A model's block (``models.<name>`` less its sections): where the base model loads from
    and how (``rlcausality.models``). ``system_prompt`` left out is the family's
    (``config.resolve_model``)."""

    name: str = setting(user=False)  # the key under models:
    source: str = setting()  # one of models.sources.SOURCES (the schema's enum: config.schema)
    family: str = setting(minLength=1)  # one of models.families.FAMILIES
    path: str = setting(user=False)  # where it loads from (config.base_model_path)
    quantization: Literal["none", "4bit", "8bit"] = setting("none")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = setting("auto")
    trust_remote_code: bool = setting(False)
    revision: str | None = setting(None)
    system_prompt: str | None = setting(None)
    # the stages the DAG builds for the model: which jobs exist, never what one writes
    stages: tuple[Literal["base", "sft", "grpo"], ...] | None = setting(
        None, operational=True, omit_none=True, uniqueItems=True, minItems=1
    )
    id: str | None = setting(None, omit_none=True, minLength=1)  # hub id or local folder
    # the downloaded snapshot it is pinned to (models.hub)
    hub: Mapping[str, Any] | None = setting(None, omit_none=True, user=False)
    # each built source's own block (tiny, gguf: models.sources.BLOCKS, with their schema), by key
    blocks: Mapping[str, Mapping[str, Any]] = setting(MappingProxyType({}), user=False)

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
    r: int = setting(64, **POSITIVE)
    alpha: float = setting(128, exclusiveMinimum=0)
    dropout: float = setting(0.05, minimum=0, maximum=1)
    # None: the family's targets (models.families)
    target_modules: tuple[str, ...] | str | None = setting(
        None,
        schema={
            "oneOf": [
                {"type": "null"},
                {"type": "string", "enum": ["all-linear"]},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            ]
        },
    )


@dataclasses.dataclass(frozen=True)
class Format(Block):
    max_length: int = setting(1024, **POSITIVE)
    max_train_samples: int | None = setting(None, **POSITIVE)
    # Balance the capped train sample: max_train_samples // 2 Yes rows, the rest No rows (the
    # rarer label's rows repeated as needed). Needs max_train_samples.
    balance: bool = setting(False)
    # What SFT teaches: `answer` (the one-word prompt, a Yes/No completion; the recipe) or
    # `trace` (the reasoning prompt GRPO uses, and the exact reasoner's derivation then
    # `Therefore: Yes|No`; rlcausality.task).
    sft_target: Literal["answer", "trace"] = setting("answer")
    # The train rows GRPO's prompts are drawn from: `same` (the sample SFT trains on; the
    # recipe) or `unseen` (a sample of the rows SFT's sample leaves out, drawn as SFT's is;
    # needs max_train_samples and an sft stage); left out: same. Read by the workflow, never by
    # a job: SFT's rows are an input of GRPO's train format job instead.
    grpo_prompts: Literal["same", "unseen"] | None = setting(None, dag=True, omit_none=True)


@dataclasses.dataclass(frozen=True)
class TrainingStage(Block):
    """What SFT and GRPO share; each restates the recipe values that differ."""

    lora: Lora = setting(Lora())
    per_device_train_batch_size: int = setting(1, trainer=True, **POSITIVE)
    gradient_accumulation_steps: int = setting(32, trainer=True, **POSITIVE)
    learning_rate: float = setting(2.0e-5, trainer=True, **FRACTION)
    num_train_epochs: float = setting(1, trainer=True, exclusiveMinimum=0)
    max_steps: int = setting(-1, trainer=True, minimum=-1, **{"not": {"const": 0}})
    warmup_steps: int = setting(10, trainer=True, minimum=0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = setting(
        "cosine", trainer=True
    )
    gradient_checkpointing: bool = setting(True)
    deepspeed: Literal["zero2", "zero3"] | None = setting("zero2")
    save_steps: int = setting(100, trainer=True, operational=True, **POSITIVE)
    save_total_limit: int = setting(2, trainer=True, operational=True, **POSITIVE)
    logging_steps: int = setting(10, trainer=True, operational=True, **POSITIVE)
    seed: int = setting(42, trainer=True, minimum=0)
    # seconds between progress lines (step/total, s/step, ETA) in the job log
    progress_interval_s: float = setting(60, operational=True, exclusiveMinimum=0)

    def trainer_arguments(self) -> dict[str, Any]:
        """The ``trainer`` settings: keyword arguments of TRL's SFTConfig/GRPOConfig, as is."""
        return {name: _plain(getattr(self, name)) for name in flagged(type(self), "trainer")}


@dataclasses.dataclass(frozen=True)
class Sft(TrainingStage):
    max_length: int = setting(1024, trainer=True, **POSITIVE)
    completion_only_loss: bool = setting(True, trainer=True)
    merge: bool = setting(True)  # base + adapter merged into merged/ (base not quantised)


@dataclasses.dataclass(frozen=True)
class Grpo(TrainingStage):
    gradient_accumulation_steps: int = 16
    learning_rate: float = 5.0e-7
    warmup_steps: int = 0
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    deepspeed: Literal["zero2", "zero3"] | None = "zero3"
    save_steps: int = 50
    logging_steps: int = 5
    init: Literal["sft", "base"] = setting("sft")  # continue SFT's adapter, or a fresh LoRA
    rewards: tuple[str, ...] = setting(
        ("correctness", "format"), minItems=1, items={"minLength": 1}
    )  # names of rewards.REWARDS
    reward_weights: tuple[float, ...] | None = setting((1.0, 0.5), trainer=True)
    num_generations: int = setting(4, trainer=True, minimum=2)
    max_completion_length: int = setting(2048, trainer=True, **POSITIVE)
    temperature: float = setting(0.6, trainer=True, exclusiveMinimum=0)
    top_p: float = setting(1.0, trainer=True, **FRACTION)
    beta: float = setting(0.0, trainer=True, minimum=0)
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = setting("dapo", trainer=True)
    scale_rewards: Literal["group", "batch", "none"] = setting("group", trainer=True)
    use_vllm: bool = setting(False)
    # with use_vllm: the share of each GPU vLLM's colocated engine reserves for weights and KV
    # cache (left out: TRL's 0.3). The plan counts it.
    vllm_gpu_memory_utilization: float | None = setting(None, omit_none=True, **FRACTION)


@dataclasses.dataclass(frozen=True)
class StagePrompts(Block):
    """``evaluate.prompt``: the prompt style (sft or grpo) each stage is evaluated with."""

    base: Choice = setting("grpo")
    sft: Choice = setting("sft")
    grpo: Choice = setting("grpo")


@dataclasses.dataclass(frozen=True)
class NewTokens(Block):
    """``evaluate.max_new_tokens``: the completion budget of each prompt style."""

    sft: int = setting(8, **POSITIVE)
    grpo: int = setting(2048, **POSITIVE)


@dataclasses.dataclass(frozen=True)
class Evaluate(Block):
    # null: every test split the corpus yields (test and its robustness variants:
    # config.test_splits); which jobs exist, never what one writes
    test_sets: tuple[str, ...] | None = setting(
        None, operational=True, minItems=1, uniqueItems=True, items={"pattern": "^[A-Za-z0-9_]+$"}
    )
    prompt: StagePrompts = setting(StagePrompts())
    batch_size: int = setting(16, **POSITIVE)
    max_new_tokens: NewTokens = setting(NewTokens())
    temperature: float = setting(0.0, minimum=0)
    top_p: float = setting(1.0, **FRACTION)
    max_samples: int | None = setting(None, **POSITIVE)
    use_vllm: bool = setting(False)
    # the precision evaluation runs the model in; auto: the model's own (as training chose it:
    # bf16 or fp16 on a GPU, fp32 on a CPU); bfloat16 halves a CPU's decoding time
    dtype: Literal["auto", "bfloat16", "float32"] = setting("auto")
    # predictions saved every chunk_size items (a killed job resumes from them); the batches do
    # not depend on it (generation.generate_transformers)
    chunk_size: int = setting(64, operational=True, **POSITIVE)
    # a progress line (items, s/item, ETA) in the job log this often
    progress_interval_s: float = setting(60, operational=True, minimum=0)


@dataclasses.dataclass(frozen=True)
class Resource(Block):
    """What a job asks the scheduler for; never a job's settings (a change reruns nothing)."""

    gpus: int = setting(minimum=0)
    mem_mb: int = setting(**POSITIVE)
    runtime: int = setting(**POSITIVE)  # minutes
    cpus: int = setting(**POSITIVE)
    # measured seconds of one optimizer step (a job log's progress lines): replaces the plan's
    # estimate for this job (rlcausality.plan.timing); left out: the estimate
    seconds_per_step: float | None = setting(None, omit_none=True, exclusiveMinimum=0)
    # the site's GPU type (sinfo -o %G: gpu:TYPE:N) a job with gpus asks for: sbatch
    # --gpus=TYPE:N (rlcausality.cluster.gpu_request); a profile's set-resources gpu_model wins
    gpu_model: str | None = setting(None, omit_none=True, pattern="^[A-Za-z0-9_.]+$")


@dataclasses.dataclass(frozen=True)
class Resources(Block):
    data: Resource = setting(Resource(gpus=0, mem_mb=8000, runtime=60, cpus=2))
    sft: Resource = setting(Resource(gpus=1, mem_mb=32000, runtime=480, cpus=8))
    grpo: Resource = setting(Resource(gpus=1, mem_mb=32000, runtime=720, cpus=8))
    evaluate: Resource = setting(Resource(gpus=1, mem_mb=16000, runtime=120, cpus=4))


@dataclasses.dataclass(frozen=True)
class Tracking(Block):
    """``tracking``: how a training run is watched (``rlcausality.training.tracking``). Not part of
    a job's ``Settings``: it decides no output, so it is no job's params."""

    report_to: Literal["none", "tensorboard", "wandb"] = setting("tensorboard")
    # GRPO: TRL's sampled completions, rewards and advantages, kept and shown in the reports
    log_completions: bool = setting(True)
    wandb_project: str = setting("rlcausality", minLength=1)


@dataclasses.dataclass(frozen=True)
class Settings(Block):
    """A job's settings: the model block and the sections the job has (a stage's job gets its
    own section, ``config.stage_settings``; ``config.resolve_model`` gives them all)."""

    model: Model = setting()
    format: Format | None = setting(None, omit_none=True)
    sft: Sft | None = setting(None, omit_none=True)
    grpo: Grpo | None = setting(None, omit_none=True)
    evaluate: Evaluate | None = setting(None, omit_none=True)
    resources: Resources | None = setting(None, omit_none=True)


# the sections of a model's settings, by key (config.yaml's defaults: and models.<name>.<key>)
SECTIONS: Mapping[str, type[Block]] = MappingProxyType(
    {"format": Format, "sft": Sft, "grpo": Grpo, "evaluate": Evaluate, "resources": Resources}
)


def recipe() -> dict[str, Any]:
    """The recipe's values of every section (derived from the declarations above)."""
    return {name: block().to_dict() for name, block in SECTIONS.items()}


def _flagged_keys(flag: str) -> Mapping[str, frozenset[str]]:
    found = {"model": frozenset(flagged(Model, flag))}
    found.update({name: frozenset(flagged(block, flag)) for name, block in SECTIONS.items()})
    return MappingProxyType({name: keys for name, keys in found.items() if keys})


# The keys that decide no output (declared ``operational``), for every change detector (a job's
# Snakemake params, its manifest, the checkpoints' run record, the partial predictions'
# fingerprint): how often a job logs, saves or reports progress, how evaluation cuts the chunks
# it saves, and which stages and test sets exist (they decide which jobs exist, not what a job
# writes). A job gets them apart from its params (``--operational``), so changing one reruns
# nothing. Resources are not settings of a job.
OPERATIONAL_KEYS = _flagged_keys("operational")
# Keys the workflow reads to build the DAG and no job reads (declared ``dag``): they reach a job
# as its inputs, so Snakemake's input trigger reruns what they change, and only that.
DAG_KEYS = _flagged_keys("dag")


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
