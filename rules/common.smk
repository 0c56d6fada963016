import functools
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow_scripts"))

from rlcausality.plan import advice as rladvice  # noqa: E402
from rlcausality import launch  # noqa: E402
from rlcausality import records as rlrecords  # noqa: E402
from rlcausality.settings import config as rlconfig  # noqa: E402
from rlcausality.settings import validation as rlvalidation  # noqa: E402
from rlcausality.training import tracking as rltracking  # noqa: E402
from rlcausality.cluster import gpu_request as rlgpu  # noqa: E402
from rlcausality.plan import jobs as rlplan  # noqa: E402
from rlcausality.plan import calibration as rlcalibration  # noqa: E402
from rlcausality.plan import render as rlplan_render  # noqa: E402
from rlcausality.models.sources import SOURCES  # noqa: E402
from rlcausality.stages import STAGES, TRAINING_STAGES, train_format  # noqa: E402
from rlcausality.models import hub as rlhub  # noqa: E402

try:
    # The error names every file merged, in order: a key may come from any of them.
    rlvalidation.validate_config(
        config,
        rlconfig.config_source(
            workflow.configfiles,
            workflow.config_settings.configfiles,
            overrides=bool(workflow.config_settings.config),
            replaced=workflow.config_settings.replace_workflow_config,
        ),
    )
except rlconfig.ConfigError as err:
    raise WorkflowError(str(err)) from None

# The GPU type each GPU job asks SLURM for (resources.<stage>.gpu_model, or the profile's
# set-resources): where it names a GPU the plan knows, the plan prices that rule on it.
GPU_TYPES = rlgpu.requested_types(
    config, workflow.resource_settings.overwrite_resources
)
config["plan"]["rules"] = rlgpu.plan_rules_from_requests(
    config["plan"], GPU_TYPES, rlplan.gpu_table()
)


# The run plan (rlcausality.plan): one TRAIN line per training job (launcher, steps, time and
# GPU memory against what it asks for), one PLAN line per job that does not fit, a summary;
# its times calibrated by the GPU benchmark of this cluster (rule gpu_bench) once it has run;
# a GPU line per job that names a GPU type, beside the GPU the plan priced it on.
# Computed in the process that prints it (and for rule plan), never in a job's own process.
@functools.cache
def plan_jobs():
    calibration = config["plan"]["calibration"]
    return rlplan.plan_jobs(
        config, rlcalibration.load(calibration) if calibration else None
    )


if workflow.is_main_process:
    CALIBRATION = (
        rlcalibration.load(config["plan"]["calibration"])
        if config["plan"]["calibration"]
        else None
    )
    # The lines of the jobs the command line's targets need (every job for `all`, a summary,
    # or no target); the result files named there are the targets.
    SHOWN = rlplan.for_targets(
        plan_jobs(), config, [arg for arg in sys.argv[1:] if arg.startswith("results/")]
    )
    plan_gpus = sorted({job.gpu for job in SHOWN if job.gpu != "CPU"})
    calibration_lines = (
        [rlcalibration.describe(CALIBRATION, plan_gpus)] if plan_gpus else []
    )
    plan_lines = rlplan.dry_run_lines(SHOWN) if SHOWN else []
    for line in (
        plan_lines
        + calibration_lines
        + rlgpu.request_lines(SHOWN, GPU_TYPES)
        + rladvice.learning_rate_warnings(config)
    ):
        print(line, file=sys.stderr)
    misfits = [rlplan.misfit_line(job) for job in SHOWN if not job.fits]
    if misfits and config["plan"]["strict"]:
        raise WorkflowError(
            "plan: strict, and these jobs do not fit what they ask for:\n"
            + "\n".join(misfits)
        )

SCRIPTS = Path(workflow.basedir) / "workflow_scripts"
ENV = "../envs/rlcausality.yaml"
VLLM_ENV = "../envs/rlcausality-vllm.yaml"  # jobs with use_vllm (README: vLLM)
MODELS = sorted(config["models"])
BUILT = [m for m in MODELS if SOURCES[config["models"][m]["source"]].builder]
# Hub models downloaded once by the local rule hub_model; their jobs load the snapshot offline.
HUB = rlconfig.offline_hub_models(config)

# Every job finds the package from this checkout, also inside a conda environment. It also
# gets config `tracking:` (TensorBoard/W&B curves, GRPO's logged completions) in the environment,
# not in its params: how a run is watched decides no output, so changing it reruns nothing
# (rlcausality.training.tracking).
shell.prefix(
    "set -euo pipefail; export PYTHONPATH="
    + shlex.quote(str(SCRIPTS))
    + "${{PYTHONPATH:+:$PYTHONPATH}}; "
    + rltracking.shell_export(config["tracking"]).replace("{", "{{").replace("}", "}}")
)


wildcard_constraints:
    model="|".join(map(lambda m: m.replace(".", r"\."), MODELS)),
    stage="|".join(STAGES),
    trained="|".join(TRAINING_STAGES),
    fmt="sft|grpo|trace",
    split=r"[A-Za-z0-9_]+",
    test_set=r"[A-Za-z0-9_]+",


def settings(model):
    return rlconfig.resolve_model(config, model)


def stage_params(stage):
    """Params for a job of ``stage``: the JSON slice of settings it depends on."""

    def get(wildcards):
        return pinned_params(
            wildcards, rlconfig.stage_settings(config, wildcards.model, stage)
        )

    return get


def format_params(wildcards):
    """The format job's params: stage_params("format"), GRPO's train prompts balanced as
    format.grpo_balance says (rlconfig.format_settings)."""
    sliced = rlconfig.format_settings(
        config, wildcards.model, wildcards.fmt, wildcards.split
    )
    return pinned_params(wildcards, sliced)


def pinned_params(wildcards, sliced):
    """A job's settings slice as JSON. A hub model's block is pinned to its downloaded snapshot
    (path and commit), read from the hub manifest: an input of the job, and Snakemake evaluates
    params again once the inputs exist."""
    if wildcards.model in HUB:
        manifest = rlhub.manifest_path(wildcards.model)
        sliced["model"] = rlhub.pinned(sliced["model"], manifest)
    return json.dumps(sliced, sort_keys=True)


def operational_params(stage):
    """Params for a job of ``stage``: the settings that decide no output (how often to log,
    save or report; settings.OPERATIONAL_KEYS), as a param that does not rerun the job.
    """

    def get(wildcards):
        values = rlconfig.operational_settings(config, wildcards.model, stage)
        return rlconfig.OperationalParam(values)

    return get


def offline_env(wildcards):
    """Environment before a hub model's job command: the hub switched off, its cache ours."""
    if wildcards.model not in HUB:
        return ""
    cache = shlex.quote(config["hub"]["cache_dir"])
    return f"HF_HUB_OFFLINE=1 HF_HUB_CACHE={cache} "


def base_model_params(wildcards):
    """The base_model job's settings: the model's own block, not format or training settings."""
    return json.dumps(
        rlconfig.base_model_settings(config, wildcards.model), sort_keys=True
    )


def model_stages(model):
    return rlconfig.model_stages(config, model)


def corpus_splits():
    return rlconfig.corpus_splits(config)


def base_manifest(model):
    """The base model's manifest when a rule builds (or downloads) the base model, else nothing."""
    if model in BUILT:
        return made(f"results/models/{model}/base/manifest.json")
    if model in HUB:
        return made(rlhub.manifest_path(model))
    return []


@functools.cache
def recorded_outputs():
    """Snakemake's records of the earlier runs: each input's outputs (rlcausality.records)."""
    return rlrecords.outputs_by_input()


def forced(path):
    """Whether this run rebuilds ``path`` anyway: --forcerun of the file or of its rule, -F."""
    dag = workflow.dag_settings
    if dag is None:
        return False
    if dag.forceall or path in dag.forcerun:
        return True
    return any(
        each.name in dag.forcerun and each.is_producer(path) for each in workflow.rules
    )


def made(path):
    """An input that a rule of this workflow makes. When it is missing while files an earlier
    run made from it are still here (its job failed after a change, or it was deleted),
    Snakemake would keep those as up to date and rebuild nothing: the DAG stops and says so,
    with the --forcerun that rebuilds it and all that was made from it.
    """
    if not os.path.exists(path) and not forced(path):
        stale = rlrecords.made_from(path, recorded_outputs())
        if stale:
            raise WorkflowError(rlrecords.stale_message(path, stale))
    return path


def resource(stage, key, scale=False):
    def get(wildcards, attempt):
        value = settings(wildcards.model)["resources"][stage][key]
        return value * attempt if scale else value

    return get


def job_env(stage):
    """The conda environment of a job of ``stage``: the vLLM one where the model's stage sets
    use_vllm (vLLM cannot share the main environment's numpy pin), else the main one."""

    def get(wildcards):
        return VLLM_ENV if settings(wildcards.model)[stage]["use_vllm"] else ENV

    return get


def gpu_model(stage):
    """The site's GPU type a job asks for (sbatch --gpus=TYPE:N), None for any type or no GPU;
    a profile's set-resources gpu_model replaces it (rlcausality.cluster.gpu_request).
    """

    def get(wildcards):
        return rlgpu.gpu_model(settings(wildcards.model), stage, {})

    return get


def launcher(stage):
    """The job's command start: its environment (offline_env) and the launcher."""

    def get(w):
        resolved = settings(w.model)
        return offline_env(w) + launch.launcher(
            resolved["resources"][stage]["gpus"], resolved[stage].get("deepspeed")
        )

    return get


def eval_targets(model):
    test_sets = settings(model)["evaluate"]["test_sets"]
    return [
        f"results/eval/{model}/{stage}/{test_set}/metrics.json"
        for stage in model_stages(model)
        for test_set in test_sets
    ]


def summary_inputs():
    metrics = [path for model in config["run"] for path in eval_targets(model)]
    test_sets = sorted(
        {t for model in config["run"] for t in settings(model)["evaluate"]["test_sets"]}
    )
    return {
        "metrics": metrics,
        "predictions": [
            p.replace("metrics.json", "predictions.jsonl") for p in metrics
        ],
        "baselines": [f"results/eval/baselines/{t}.json" for t in test_sets],
        "baseline_predictions": [
            f"results/eval/baselines/{t}.predictions.jsonl" for t in test_sets
        ],
    }


def expected_cells():
    return [
        f"{model}:{stage}:{test_set}"
        for model in config["run"]
        for stage in model_stages(model)
        for test_set in settings(model)["evaluate"]["test_sets"]
    ]


def all_targets():
    targets = ["results/reports/summary.html", "results/reports/summary.md"]
    for model in config["run"]:
        targets += [
            f"results/reports/{model}/{stage}.html" for stage in model_stages(model)
        ]
    return targets


def corpus_input(wildcards):
    """The user's data files with data.source file, so that editing one reruns the corpus."""
    if config["data"]["source"] == "file":
        return [
            config["data"]["file"][split] for split in sorted(config["data"]["file"])
        ]
    return []


def base_model_input(wildcards):
    if SOURCES[config["models"][wildcards.model]["source"]].needs_corpus:
        return {"corpus": "results/data/corr2cause/train.jsonl"}
    return {}


def format_input(wildcards):
    inputs = {"data": made(f"results/data/corr2cause/{wildcards.split}.jsonl")}
    base = base_manifest(wildcards.model)
    if base:
        inputs["base"] = base
    if excludes_sft_rows(wildcards):
        inputs["exclude"] = sft_train(wildcards.model)
    return inputs


def excludes_sft_rows(wildcards):
    """GRPO's train prompts leave SFT's sample out (format.grpo_prompts: unseen)."""
    return (
        wildcards.fmt == "grpo"
        and wildcards.split == "train"
        and settings(wildcards.model)["format"].get("grpo_prompts") == "unseen"
    )


def sft_train(model):
    """The rows SFT trains on: those of its target (format.sft_target, stages.SFT_TARGETS)."""
    fmt = train_format("sft", settings(model)["format"]["sft_target"])
    return made(f"results/data/{model}/{fmt}/train.jsonl")


def trained(model, stage):
    """A training stage's manifest, as an input; one whose listed files are gone (an adapter
    deleted by hand, a scratch disk cleaned) is not up to date: the DAG stops and says so,
    unless this run trains the stage again (--forcerun).
    """
    path = f"results/models/{model}/{stage}/manifest.json"
    problems = rlconfig.manifest_problems(path)
    if problems and not forced(path):
        raise WorkflowError(problems[0])
    return made(path)


def grpo_input(wildcards):
    inputs = {
        "train": made(f"results/data/{wildcards.model}/grpo/train.jsonl"),
        "base": base_manifest(wildcards.model),
    }
    if settings(wildcards.model)["grpo"]["init"] == "sft":
        inputs["init"] = trained(wildcards.model, "sft")
    return inputs


def eval_input(wildcards):
    fmt = settings(wildcards.model)["evaluate"]["prompt"][wildcards.stage]
    inputs = {
        "data": made(
            f"results/data/{wildcards.model}/{fmt}/{wildcards.test_set}.jsonl"
        ),
        "base": base_manifest(wildcards.model),
    }
    if wildcards.stage != "base":
        inputs["manifest"] = trained(wildcards.model, wildcards.stage)
    return inputs


def stage_report_input(wildcards):
    cells = [
        f"results/eval/{wildcards.model}/{wildcards.stage}/{t}"
        for t in settings(wildcards.model)["evaluate"]["test_sets"]
    ]
    inputs = {
        "metrics": [f"{cell}/metrics.json" for cell in cells],
        # right and wrong answers per relation
        "predictions": [f"{cell}/predictions.jsonl" for cell in cells],
    }
    if wildcards.stage != "base":
        inputs["manifest"] = trained(wildcards.model, wildcards.stage)
    return inputs


def gpu_models():
    """The selected models that train on a GPU: what rule gpu_bench measures."""
    models = [
        m
        for m in config["run"]
        if any(settings(m)["resources"][s]["gpus"] for s in ("sft", "grpo", "evaluate"))
    ]
    if not models:
        raise WorkflowError(
            "results/cluster/gpu_bench.json: no model of `run` uses a GPU "
            f"({', '.join(config['run'])}); set run to the models to calibrate, e.g. "
            "--config run='[qwen2.5-1.5b]'"
        )
    return models


def max_gpus():
    """The largest GPU request of any selected model's stage (what gpu_check asks for)."""
    return max(
        (
            settings(m)["resources"][s]["gpus"]
            for m in config["run"]
            for s in ("sft", "grpo", "evaluate")
        ),
        default=0,
    )


def baseline_input(wildcards):
    """The test set, and the train split (for the relation prior) where the corpus has one."""
    inputs = {"data": f"results/data/corr2cause/{wildcards.test_set}.jsonl"}
    if "train" in corpus_splits():
        inputs["train"] = "results/data/corr2cause/train.jsonl"
    return inputs


def baseline_max_samples():
    """Baselines score the items the models score: the models' shared max_samples, if any."""
    caps = {settings(m)["evaluate"]["max_samples"] for m in config["run"]}
    cap = caps.pop() if len(caps) == 1 else None
    return f"--max-samples {cap}" if cap else ""
