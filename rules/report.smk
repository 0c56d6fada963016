# Reports: one per model and stage, and a summary across every model and stage built.


localrules:
    report_stage,
    summary,
    baselines,


rule report_stage:
    input:
        unpack(stage_report_input),
    output:
        report(
            "results/reports/{model}/{stage}.html",
            caption="../workflow_scripts/rlcausality/reporting/templates/stage_caption.rst",
            category="Models",
            subcategory="{model}",
            labels={"model": "{model}", "stage": "{stage}"},
        ),
    log:
        "results/logs/report/{model}/{stage}.log",
    conda:
        ENV
    params:
        manifest=lambda w, input: (
            f"--manifest {shlex.quote(input.manifest)}"
            " --log-history "
            + shlex.quote(str(Path(input.manifest).parent / "log_history.json"))
            if "manifest" in input.keys()
            else ""
        ),
    shell:
        "python -m rlcausality.reporting.report stage --metrics {input.metrics:q} {params.manifest}"
        " --predictions {input.predictions:q} --out {output:q} > {log:q} 2>&1"


rule summary:
    input:
        **summary_inputs(),
    output:
        html=report(
            "results/reports/summary.html",
            caption="../workflow_scripts/rlcausality/reporting/templates/summary_caption.rst",
            category="Summary",
            labels={"report": "summary"},
        ),
        md="results/reports/summary.md",
        tsv="results/reports/metrics.tsv",
        plots=directory("results/reports/plots"),
    log:
        "results/logs/report/summary.log",
    conda:
        ENV
    params:
        expected=expected_cells(),
        logs=[
            f"results/models/{m}/{s}/log_history.json"
            for m in config["run"]
            for s in ("sft", "grpo")
            if s in model_stages(m)
        ],
    shell:
        "python -m rlcausality.reporting.report summary --metrics {input.metrics:q}"
        " --predictions {input.predictions:q} --baselines {input.baselines:q}"
        " --baseline-predictions {input.baseline_predictions:q} --log-history {params.logs:q}"
        " --expected {params.expected:q} --out-html {output.html:q} --out-md {output.md:q}"
        " --out-tsv {output.tsv:q}"
        " --plots-dir {output.plots:q} > {log:q} 2>&1"
