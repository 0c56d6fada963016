"""Session fixture that brings the single-node SLURM test cluster up and down.

The cluster (munge, MariaDB, slurmdbd, slurmctld, slurmd) is started by
``tests/slurm/cluster.sh up STATE_DIR`` and stopped by ``cluster.sh down`` at
the end of the session.  STATE_DIR is ``<repo>/.slurm-test`` (git-ignored;
short enough for unix socket paths and reachable by the ``munge`` and
``mysql`` users), or ``$SLURM_TEST_STATE_DIR``.  Set
``SLURM_TEST_KEEP_CLUSTER=1`` to leave it running after the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CLUSTER_SH = HERE / "cluster.sh"
PROFILE_DIR = HERE / "profile"
VENV_BIN = REPO / ".venv" / "bin"

# cluster.sh `up` exits with this status when apt-get cannot install the packages
EXIT_NO_PACKAGES = 3


@dataclass(frozen=True)
class SlurmCluster:
    state_dir: Path
    slurm_conf: Path
    env: dict[str, str]  # os.environ + SLURM_CONF + the venv's bin first on PATH
    profile_dir: Path = PROFILE_DIR
    account: str = "rltest"
    bringup_seconds: float = 0.0

    def run(self, *cmd: str, timeout: float = 30, check: bool = True, **kw):
        """Run a command (e.g. sacct, sinfo) against the test cluster."""
        return subprocess.run(
            list(cmd),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            **kw,
        )


def _env(slurm_conf: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SLURM_CONF"] = str(slurm_conf)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(REPO / ".venv")
    return env


@pytest.fixture(scope="session")
def slurm_cluster():
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("the SLURM test cluster needs root (it installs packages and starts daemons)")
    if shutil.which("dpkg-query") is None:
        pytest.skip("the SLURM test cluster needs a Debian system (dpkg/apt)")

    state_dir = Path(os.environ.get("SLURM_TEST_STATE_DIR", REPO / ".slurm-test")).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(CLUSTER_SH), "up", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    bringup = time.monotonic() - t0
    print(f"\n[slurm_cluster] cluster.sh up took {bringup:.1f} s\n{proc.stdout}{proc.stderr}")
    if proc.returncode == EXIT_NO_PACKAGES:
        pytest.skip(f"cannot install the SLURM packages with apt-get: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(
            f"cluster.sh up {state_dir} failed (rc {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )

    slurm_conf = state_dir / "etc" / "slurm.conf"
    try:
        yield SlurmCluster(
            state_dir=state_dir,
            slurm_conf=slurm_conf,
            env=_env(slurm_conf),
            bringup_seconds=bringup,
        )
    finally:
        if os.environ.get("SLURM_TEST_KEEP_CLUSTER") != "1":
            down = subprocess.run(
                ["bash", str(CLUSTER_SH), "down", str(state_dir)],
                capture_output=True,
                text=True,
                timeout=300,
            )
            print(f"\n[slurm_cluster] cluster.sh down:\n{down.stdout}{down.stderr}")
            if down.returncode != 0:
                raise RuntimeError(f"cluster.sh down failed:\n{down.stdout}\n{down.stderr}")
