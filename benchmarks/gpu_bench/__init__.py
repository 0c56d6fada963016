"""GPU benchmark of the project's SFT step and of rollout/evaluation generation, per model.

The models are config.yaml's, by name (``--models``; default: its ``run`` list). Each is built
architecture-true from the run plan's facts of it (``rlcausality.plan.arch``), with random
weights: no weights are downloaded. A model configured ``quantization: 4bit`` (deepseek-r1-7b)
is quantised to nf4 (QLoRA) the way the workflow loads it: the random bf16 model is saved to a
temporary folder and reloaded through ``rlcausality.models.loading.load_model`` (the project's
``quantization_config``), when CUDA and bitsandbytes are present; otherwise it stays bf16/fp32.

SFT step: the project's LoRA (``lora.attach_lora``: the family's targets, ``prepare_base``'s
gradient checkpointing / k-bit preparation), ``choose_precision`` and ``sft.sft_config`` +
``SFTTrainer``, one sequence of ``--seq-len`` tokens per step, no gradient accumulation.
Generation: transformers ``generate`` on the LoRA model (adapter unmerged, as in GRPO), prompts
repeated ``--num-generations`` times, sampling at the GRPO temperature, ``min_new_tokens`` equal
to ``max_new_tokens`` so every sequence has exactly the measured length. vLLM when installed.

Modules: ``architectures`` (a model name to the model built), ``build`` (settings, base model,
LoRA), ``measure`` (SFT steps, ``generate``), ``vllm_worker`` (vLLM in a child process),
``estimates`` (the plan's figures for the same shapes), ``run`` (one model, part by part),
``report`` (Markdown), ``cli`` (options, the loop over models, the files written).

Usage, from the repository root (GPU, ~10 min on one H100/H200)::

    .venv/bin/python -m benchmarks.gpu_bench --out results/gpu_bench.json \\
        --markdown results/gpu_bench.md

CPU smoke run (tiny dims, < 60 s)::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.gpu_bench --smoke --out /tmp/bench.json
"""
