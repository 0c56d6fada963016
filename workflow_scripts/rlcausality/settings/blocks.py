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

Everything else is derived from these declarations (by ``rlcausality.settings.fields``, where
``setting`` and ``Block`` are defined): the config schema's blocks (``block_schema``, assembled by
``config.schema``), the recipe's values under a block (``Block.from_dict`` fills every key a block
leaves out: the one merge of the recipe), the trainer arguments, and the operational and DAG keys.
A missing required key or an unknown key is a ``ConfigError`` naming it; ``to_dict()`` gives the
complete dict back, for params, manifests and settings hashes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, Self

from rlcausality.data.corr2cause.graphs import RELATIONS
from rlcausality.models.sources import BLOCKS
from rlcausality.settings.fields import Block, ConfigError, flagged, key_path, plain, setting

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
    # auto: bf16 on GPUs that have it, fp16 on older ones, fp32 on a CPU; bfloat16 on a CPU
    # trains fp32 weights under bf16 autocast (models.loading.choose_precision)
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
            raise ConfigError([f"{key_path(where, 'blocks')}: unknown key; check its spelling"])
        own = {key: value for key, value in data.items() if key not in BLOCKS}
        own["blocks"] = {key: value for key, value in data.items() if key in BLOCKS}
        return super().from_dict(own, where)

    def to_dict(self) -> dict[str, Any]:
        own = {key: value for key, value in super().to_dict().items() if key != "blocks"}
        return {**own, **plain(self.blocks)}

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


BALANCE = {"enum": [False, True, "relation"]}  # format.balance and format.grpo_balance
# format.trace_lookup and format.grpo_relations: relations, each once
RELATION_LIST = {
    "type": "array",
    "items": {"type": "string", "enum": list(RELATIONS)},
    "minItems": 1,
    "uniqueItems": True,
}


@dataclasses.dataclass(frozen=True)
class Format(Block):
    max_length: int = setting(1024, **POSITIVE)
    max_train_samples: int | None = setting(None, **POSITIVE)
    # Balance the capped train sample: true: max_train_samples // 2 Yes rows, the rest No rows
    # (the rarer label's rows repeated as needed); `relation`: an equal share of rows per
    # relation, half Yes and half No within each relation that has both labels, so that no
    # relation's rows teach an answer by the relation alone. Needs max_train_samples.
    balance: bool | Literal["relation"] = setting(False, schema=BALANCE)
    # What SFT teaches: `answer` (the one-word prompt, a Yes/No completion; the recipe) or
    # `trace` (the reasoning prompt GRPO uses, and the exact reasoner's derivation then
    # `Therefore: Yes|No`; rlcausality.task).
    sft_target: Literal["answer", "trace"] = setting("answer")
    # The relations whose `Check`, in the oracle traces SFT trains on (sft_target: trace),
    # first writes what it reads off the trace's own Fixed list (the cause's children or the
    # variables it reaches; for a common effect or cause, those of each variable), so that the
    # verdict compares copied lists (rlcausality.task.lookup_step); left out: none, the
    # relation then yes/no. In the params of SFT's train format job alone (format_settings):
    # GRPO's prompts and the test sets do not depend on it.
    trace_lookup: tuple[str, ...] | None = setting(
        None,
        omit_none=True,
        schema=RELATION_LIST,
    )
    # The train rows GRPO's prompts are drawn from: `same` (the sample SFT trains on; the
    # recipe) or `unseen` (a sample of the rows SFT's sample leaves out, drawn as SFT's is;
    # needs max_train_samples and an sft stage); left out: same. Read by the workflow, never by
    # a job: SFT's rows are an input of GRPO's train format job instead.
    grpo_prompts: Literal["same", "unseen"] | None = setting(None, dag=True, omit_none=True)
    # Balance GRPO's train prompts as `balance` does SFT's sample (true, relation): false draws
    # them at the train split's natural label rate; left out: as `balance`. Read by the
    # workflow, never by a job: it becomes `balance` in the params of GRPO's train format job
    # alone (format_settings).
    grpo_balance: bool | Literal["relation"] | None = setting(
        None, dag=True, omit_none=True, schema=BALANCE
    )
    # The relations GRPO's train prompts are drawn from (say [collider], the relation whose
    # check the SFT model gets wrong most); left out: every relation. In the params of GRPO's
    # train format job alone (format_settings), which keeps those relations' rows.
    grpo_relations: tuple[str, ...] | None = setting(
        None,
        omit_none=True,
        schema=RELATION_LIST,
    )


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
        return {name: plain(getattr(self, name)) for name in flagged(type(self), "trainer")}


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
    # Sample this many completions of each train prompt from the policy GRPO starts from and
    # train on the prompts whose answers disagree alone (rlcausality.training.prepass): groups
    # all right or all wrong carry no answer signal. Left out: every prompt, no pre-pass.
    prepass_samples: int | None = setting(None, omit_none=True, minimum=2)
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
    # bf16 or fp16 on a GPU, fp32 weights on a CPU); bfloat16 halves a CPU's decoding time
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
