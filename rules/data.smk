# Corpus -> base models built locally -> chat-formatted data per model.


localrules:
    corpus,
    base_model,


rule corpus:
    input:
        corpus_input,
    output:
        expand("results/data/corr2cause/{split}.jsonl", split=corpus_splits()),
        stats="results/data/corr2cause/stats.json",
    log:
        "results/logs/data/corpus.log",
    benchmark:
        "results/benchmarks/data/corpus.tsv"
    conda:
        ENV
    params:
        command="generate" if config["data"]["source"] == "generate" else "load",
        settings=json.dumps(
            (
                config["data"]["generate"]
                if config["data"]["source"] == "generate"
                else config["data"]
            ),
            sort_keys=True,
        ),
    shell:
        "python -m rlcausality.data.corpus {params.command} --settings {params.settings:q}"
        " --outdir results/data/corr2cause > {log:q} 2>&1"


rule base_model:
    input:
        unpack(base_model_input),
    output:
        "results/models/{model}/base/manifest.json",
    log:
        "results/logs/base_model/{model}.log",
    conda:
        ENV
    threads: 2
    params:
        settings=base_model_params,
        module=lambda w: SOURCES[config["models"][w.model]["source"]].builder,
        corpus=lambda w, input: (
            f"--corpus {shlex.quote(input.corpus)}" if "corpus" in input.keys() else ""
        ),
    shell:
        "python -m {params.module} --settings {params.settings:q} {params.corpus}"
        " --out-dir results/models/{wildcards.model:q}/base > {log:q} 2>&1"


rule format:
    input:
        unpack(format_input),
    output:
        data="results/data/{model}/{fmt}/{split}.jsonl",
        stats="results/data/{model}/{fmt}/{split}.stats.json",
    log:
        "results/logs/format/{model}/{fmt}/{split}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=resource("data", "mem_mb", scale=True),
        runtime=resource("data", "runtime", scale=True),
        cpus_per_task=1,
    params:
        settings=format_params,
        # Only the train split is cut to max_length; evaluation samples keep every item.
        keep_long=lambda w: "" if w.split == "train" else "--keep-long",
        env=offline_env,
        max_samples=lambda w: (
            settings(w.model)["format"]["max_train_samples"] or 0
            if w.split == "train"
            else 0
        ),
        exclude=lambda w, input: (
            f"--exclude {shlex.quote(input.exclude)}"
            if "exclude" in input.keys()
            else ""
        ),
    shell:
        "{params.env}python -m rlcausality.data.formatting --settings {params.settings:q} --fmt {wildcards.fmt}"
        " --input {input.data:q} --output {output.data:q} --stats {output.stats:q}"
        " --max-samples {params.max_samples} {params.keep_long} {params.exclude}"
        " --threads {threads} > {log:q} 2>&1"
