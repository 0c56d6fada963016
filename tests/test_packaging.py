"""The conda environment and the Python packaging pin the same versions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        name, _, version = req.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def test_conda_env_pins_match_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    python_pins = _pins(project["dependencies"] + project["optional-dependencies"]["gpu"])
    env = yaml.safe_load((REPO / "envs" / "rlcausality.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = _pins(pip_section)
    for name, version in conda_pins.items():
        assert python_pins.get(name) == version, (
            f"{name}: conda {version}, pyproject {python_pins.get(name)}"
        )
    # Every runtime dependency a job needs is in the conda environment.
    runtime = set(_pins(project["dependencies"])) - {"snakemake", "snakemake-executor-plugin-slurm"}
    assert runtime <= set(conda_pins), runtime - set(conda_pins)


def test_torch_pin_takes_the_cpu_wheel_on_disk() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_every_extra_resolves_against_the_pins(tmp_path: Path) -> None:
    """`pip install --dry-run '.[extra]'` resolves for each extra (vllm 0.33 once did not)."""
    import subprocess
    import sys

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = sorted(project["optional-dependencies"])
    assert "deepspeed" in extras
    for extra in extras:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-input",
             "--report", str(tmp_path / f"{extra}.json"), f"{REPO}[{extra}]"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, f"extra {extra!r} does not resolve:\n{proc.stderr[-3000:]}"
    for extra in extras:
        for requirement in project["optional-dependencies"][extra]:
            assert not requirement.startswith("vllm"), "vLLM cannot share these pins (README)"
