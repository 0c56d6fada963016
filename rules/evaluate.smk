# Every model and stage is evaluated the same way on the same test sets.


rule evaluate:
    input:
        unpack(eval_input),
    output:
        predictions="results/eval/{model}/{stage}/{test_set}/predictions.jsonl",
        metrics="results/eval/{model}/{stage}/{test_set}/metrics.json",
    log:
        "results/logs/evaluate/{model}/{stage}/{test_set}.log",
    benchmark:
        "results/benchmarks/evaluate/{model}/{stage}/{test_set}.tsv"
    conda:
        job_env("evaluate")
    threads: resource("evaluate", "cpus")
    resources:
        gpu=resource("evaluate", "gpus"),
        gpu_model=gpu_model("evaluate"),
        mem_mb=resource("evaluate", "mem_mb", scale=True),
        runtime=resource("evaluate", "runtime", scale=True),
        cpus_per_task=resource("evaluate", "cpus"),
    params:
        settings=stage_params("evaluate"),
        operational=operational_params("evaluate"),
        env=offline_env,
        manifest=lambda w, input: (
            f"--manifest {shlex.quote(input.manifest)}"
            if "manifest" in input.keys()
            else ""
        ),
    shell:
        "{params.env}python -m rlcausality.evaluation.evaluate --settings {params.settings:q}"
        " --operational {params.operational:q}"
        " --stage {wildcards.stage} --test-set {wildcards.test_set}"
        " --data {input.data:q} {params.manifest}"
        " --predictions {output.predictions:q} --metrics {output.metrics:q}"
        " --threads {threads} > {log:q} 2>&1"


# Baselines score the items the models score; the relation prior learns from the train split.
rule baselines:
    input:
        unpack(baseline_input),
    output:
        metrics="results/eval/baselines/{test_set}.json",
        predictions="results/eval/baselines/{test_set}.predictions.jsonl",
    log:
        "results/logs/baselines/{test_set}.log",
    conda:
        ENV
    params:
        max_samples=baseline_max_samples(),
        train=lambda w, input: (
            f"--train {shlex.quote(input.train)}" if "train" in input.keys() else ""
        ),
    shell:
        "python -m rlcausality.evaluation.baselines --data {input.data:q} {params.train}"
        " --out {output.metrics:q} --predictions {output.predictions:q}"
        " {params.max_samples} > {log:q} 2>&1"
