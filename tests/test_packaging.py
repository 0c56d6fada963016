"""The conda environment and the Python packaging pin the same versions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
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


def _env_pins(name: str) -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / name).read_text())
    return _pins(next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)))


def test_the_vllm_job_environment_is_the_main_one_with_vllm_and_numpy_2_3() -> None:
    assert _env_pins("rlcausality-vllm.yaml") == {
        **_env_pins("rlcausality.yaml"),
        "numpy": "2.3.5",
        "vllm": "0.30.0",
    }


def _dry_run(tmp_path: Path, name: str, *requirements: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-input",
         "--ignore-installed", "--report", str(tmp_path / f"{name}.json"), *requirements],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.mark.slow
def test_vllm_resolves_in_its_job_environment_and_not_beside_the_slurm_plugin(
    tmp_path: Path,
) -> None:
    """vLLM 0.30.0 with every job pin resolves (numpy 2.3.5); with the package's own pins it
    cannot: its mistral-common caps numpy below 2.4 (Python <= 3.12), the SLURM executor plugin
    needs numpy >= 2.4.5. Hence a job environment, not a pip extra (README, "vLLM")."""
    job = _dry_run(
        tmp_path, "job", *(f"{k}=={v}" for k, v in _env_pins("rlcausality-vllm.yaml").items())
    )
    assert job.returncode == 0, job.stderr[-3000:]
    report = json.loads((tmp_path / "job.json").read_text())
    versions = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report["install"]}
    assert versions["vllm"] == "0.30.0" and versions["numpy"] == "2.3.5"
    assert versions["transformers"] == "5.24.0" and versions["trl"] == "1.16.0"
    # With the package's pins: numpy 2.4.6 is above mistral-common's cap ...
    beside = _dry_run(tmp_path, "beside", f"{REPO}", "vllm==0.30.0")
    said = beside.stdout + beside.stderr
    assert beside.returncode != 0
    assert re.search(r"mistral-common [\d.]+ depends on numpy<2.4", said), said[-3000:]
    # ... and numpy 2.3.5 is below the SLURM executor plugin's floor.
    lower = _dry_run(tmp_path, "lower", "snakemake-executor-plugin-slurm==2.8.0", "numpy==2.3.5")
    said = lower.stdout + lower.stderr
    assert lower.returncode != 0
    assert "snakemake-executor-plugin-slurm 2.8.0 depends on numpy<3 and >=2.4.5" in said, said
