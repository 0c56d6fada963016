# Supervised fine-tuning (LoRA / QLoRA). Checkpoints live in results/models/{model}/sft/checkpoints
# (not a declared output, so Snakemake never deletes them); a restarted job resumes from the
# newest complete one. The manifest is written last and is the only declared output.


rule sft:
    input:
        unpack(
            lambda w: {
                "train": sft_train(w.model),
                "base": base_manifest(w.model),
            }
        ),
    output:
        manifest="results/models/{model}/sft/manifest.json",
    log:
        "results/logs/sft/{model}.log",
    benchmark:
        "results/benchmarks/sft/{model}.tsv"
    conda:
        ENV
    threads: resource("sft", "cpus")
    resources:
        gpu=resource("sft", "gpus"),
        gpu_model=gpu_model("sft"),
        mem_mb=resource("sft", "mem_mb", scale=True),
        runtime=resource("sft", "runtime", scale=True),
        cpus_per_task=resource("sft", "cpus"),
    params:
        settings=stage_params("sft"),
        operational=operational_params("sft"),
        launcher=launcher("sft"),
        outdir=lambda w: f"results/models/{w.model}/sft",
    shell:
        "{params.launcher} rlcausality.training.sft --settings {params.settings:q}"
        " --operational {params.operational:q}"
        " --train {input.train:q} --output-dir {params.outdir:q}"
        " --manifest {output.manifest:q} --threads {threads} >> {log:q} 2>&1"
