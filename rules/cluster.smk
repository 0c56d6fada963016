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
        "{params.launcher} rlcausality.gpu_check --out {output:q} > {log:q} 2>&1"
