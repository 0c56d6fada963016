# rlcausality: Corr2Cause data -> SFT -> GRPO -> evaluation -> reports, for every configured model.
#
#   snakemake --profile profiles/local        the embedded default (tiny model, CPU, offline)
#   snakemake --profile slurm                 every configured model on a SLURM cluster
#   snakemake -n results/reports/deepseek-r1-7b/grpo.html    what one target needs


from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/hub.smk"
include: "rules/data.smk"
include: "rules/sft.smk"
include: "rules/grpo.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/cluster.smk"
include: "rules/plan.smk"


rule all:
    default_target: True
    input:
        all_targets(),
