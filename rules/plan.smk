# The run plan: steps, GPU memory and time of every job of the selected models, computed at
# parse time (rlcausality.plan) and written here as data and tables. No download, no GPU.


localrules:
    plan,


rule plan:
    output:
        json="results/plan.json",
        md="results/plan.md",
    log:
        "results/logs/plan.log",
    params:
        jobs=lambda w: json.dumps(
            [job.as_dict() for job in plan_jobs()], sort_keys=True
        ),
    run:
        rlplan_render.write(plan_jobs(), output.json, output.md, log[0])
