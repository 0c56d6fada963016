"""rlcausality: Corr2Cause data, SFT, GRPO and evaluation for a Snakemake workflow."""

__version__ = "0.1.0"
