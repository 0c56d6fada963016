"""``python -m rlcausality.plan``: the plan without Snakemake (what ``snakemake
results/plan.md`` writes), for config files given in order (later ones override).

    python -m rlcausality.plan [--configfile config.yaml [more.yaml ...]] [--run a,b]
"""

from __future__ import annotations

import argparse
import sys

from rlcausality.plan import jobs as plan
from rlcausality.plan import render
from rlcausality.settings.config import ConfigError, read_config_files
from rlcausality.settings.validation import validate_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"])
    parser.add_argument("--run", default=None, help="comma list of models (config's run)")
    parser.add_argument("--json", default="results/plan.json")
    parser.add_argument("--md", default="results/plan.md")
    args = parser.parse_args(argv)
    config = read_config_files(args.configfile)
    if args.run:
        config["run"] = [name.strip() for name in args.run.split(",") if name.strip()]
    try:
        validate_config(config, ", ".join(args.configfile))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    jobs = plan.plan_jobs(config)
    for line in plan.dry_run_lines(jobs):
        print(line)
    render.write(jobs, args.json, args.md)
    return 0 if all(job.fits for job in jobs) or not config["plan"]["strict"] else 1


if __name__ == "__main__":
    sys.exit(main())
