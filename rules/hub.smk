# Hub models for compute nodes without internet. hub_model runs where Snakemake runs (a local
# rule: the login node, which reaches the hub), resolves the model's revision to a commit once
# and downloads that snapshot into hub.cache_dir. The model's format, training and evaluation
# jobs take the manifest as input and load the snapshot with HF_HUB_OFFLINE=1 (rules/common.smk:
# stage_params, offline_env). To move a model with revision: null to a newer "main", delete
# its manifest (or run with --forcerun hub_model).


localrules:
    hub_model,


rule hub_model:
    output:
        manifest="results/models/{model}/hub/manifest.json",
    log:
        "results/logs/hub/{model}.log",
    wildcard_constraints:
        model="|".join(map(lambda m: m.replace(".", r"\."), HUB)) or "(?!)",
    conda:
        ENV
    params:
        settings=lambda w: json.dumps(
            rlconfig.hub_download_settings(config, w.model), sort_keys=True
        ),
    shell:
        "python -m rlcausality.models.hub --settings {params.settings:q}"
        " --manifest {output.manifest:q} > {log:q} 2>&1"
