"""The run plan: steps, GPU memory and time of every SFT, GRPO and evaluation job, before any
GPU hour. ``jobs`` plans the jobs (``plan_jobs``), ``render`` writes the table, ``stages``,
``memory``, ``timing`` and ``arch`` hold the arithmetic, ``calibration`` and ``bench`` bring in
measured GPU times, ``advice`` the dry-run warnings. ``python -m rlcausality.plan`` prints the
plan without Snakemake.
"""
