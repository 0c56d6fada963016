# Checks a user runs on their cluster before a long run.


rule gpu_check:
    output:
        "results/cluster/gpu_check.json",
    log:
        "results/logs/cluster/gpu_check.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=lambda w: max_gpus(),
        mem_mb=4000,
        runtime=10,
        cpus_per_task=lambda w: max(1, max_gpus()),
    params:
        launcher=lambda w: launch.launcher(max_gpus()),
    shell:
        "{params.launcher} rlcausality.cluster.gpu_check --out {output:q} > {log:q} 2>&1"


# The GPU benchmark (benchmarks/gpu_bench) of the selected models on this cluster's GPU: an SFT
# step, a GRPO step (rollout and update timed apart) and evaluation generation per model, random
# architecture-true weights (nothing downloaded). Once it exists, every dry-run's plan prices
# time with these measurements (rlcausality.plan.calibration) and says so. Results are written
# after each model to the .partial file, so a cut job keeps what it measured. The models'
# settings (LoRA targets, quantisation) are read from the repository's config.yaml.
rule gpu_bench:
    output:
        "results/cluster/gpu_bench.json",
    log:
        "results/logs/cluster/gpu_bench.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=90,
        cpus_per_task=4,
    params:
        models=lambda w: ",".join(gpu_models()),
        partial=lambda w, output: output[0] + ".partial",
        table=lambda w, output: output[0].removesuffix(".json") + ".md",
        shapes=(
            "--gen-prompts 4 --gen-tokens= --eval-tokens 256 --grpo-steps 2 "
            "--grpo-tokens 256 --warmup-steps 2 --steps 3 --budget-s 4800 --vllm-models="
        ),
        root=workflow.basedir,
    shell:
        "PYTHONPATH={params.root:q}:$PYTHONPATH python -m benchmarks.gpu_bench "
        "--models {params.models} {params.shapes} --out {params.partial:q} "
        "--markdown {params.table:q} > {log:q} 2>&1 && mv {params.partial:q} {output:q}"
