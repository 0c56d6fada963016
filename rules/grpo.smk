# GRPO. With grpo.init: sft the job continues from the SFT adapter (and the DAG holds the SFT
# job); with grpo.init: base it starts from the base model and the DAG has no SFT job.


rule grpo:
    input:
        unpack(grpo_input),
    output:
        manifest="results/models/{model}/grpo/manifest.json",
    log:
        "results/logs/grpo/{model}.log",
    benchmark:
        "results/benchmarks/grpo/{model}.tsv"
    conda:
        job_env("grpo")
    threads: resource("grpo", "cpus")
    resources:
        gpu=resource("grpo", "gpus"),
        gpu_model=gpu_model("grpo"),
        mem_mb=resource("grpo", "mem_mb", scale=True),
        runtime=resource("grpo", "runtime", scale=True),
        cpus_per_task=resource("grpo", "cpus"),
    params:
        settings=stage_params("grpo"),
        operational=operational_params("grpo"),
        launcher=launcher("grpo"),
        outdir=lambda w: f"results/models/{w.model}/grpo",
        init=lambda w, input: (
            f"--init-manifest {shlex.quote(input.init)}"
            if "init" in input.keys()
            else ""
        ),
    shell:
        "{params.launcher} rlcausality.training.grpo --settings {params.settings:q}"
        " --operational {params.operational:q}"
        " --train {input.train:q} {params.init} --output-dir {params.outdir:q}"
        " --manifest {output.manifest:q} --threads {threads} >> {log:q} 2>&1"
