"""The local SLURM test cluster, and the Snakemake SLURM executor against it.

Uses a small self-contained workflow written into tmp_path, not the
project's Snakefile.  Needs root; the `slurm_cluster` fixture (conftest.py)
starts and stops the cluster.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROFILE_DIR = HERE / "profile"  # test-only profile: fast status polling
VENV_BIN = HERE.parents[1] / ".venv" / "bin"

pytestmark = pytest.mark.slurm

SNAKEFILE = textwrap.dedent(
    """
    localrules: all, summarize

    rule all:
        input: "summary.txt"

    rule gpu_job:
        output: "gpu.txt"
        resources:
            gpu=1,
            mem_mb=600,
            runtime=7,
            slurm_partition="gpu",
        shell:
            'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-unset}}" > {output}; '
            'echo "nproc=$(nproc)" >> {output}'

    rule cpu_job:
        output: "cpu.txt"
        resources:
            mem_mb=500,
            runtime=6,
            slurm_partition="cpu",
        shell:
            'echo "host=$(hostname) job=${{SLURM_JOB_ID:-none}}" > {output}'

    rule summarize:
        input: "gpu.txt", "cpu.txt"
        output: "summary.txt"
        shell: "cat {input} > {output}; echo local-job=${{SLURM_JOB_ID:-none}} >> {output}"
    """
)

FAILING_SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "never.txt"

    rule broken:
        output: "never.txt"
        resources:
            mem_mb=200,
            runtime=3,
            slurm_partition="cpu",
        shell: "echo going to fail; exit 1"
    """
)

# expected per rule: partition, time limit (minutes), memory, gpus
EXPECTED = {
    "gpu_job": {"partition": "gpu", "minutes": 7, "mem_mb": 600, "gpus": 1},
    "cpu_job": {"partition": "cpu", "minutes": 6, "mem_mb": 500, "gpus": 0},
}


def timed_run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float):
    """``subprocess.run`` capturing the output, plus ``elapsed`` (s) and ``log`` (both streams)."""
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    proc.elapsed = time.monotonic() - t0
    proc.log = proc.stdout + proc.stderr
    return proc


def run_snakemake(cluster, workdir: Path, *extra: str, timeout: float = 300):
    env = dict(cluster.env)
    env.pop("SNAKEMAKE_PROFILE", None)
    cmd = [
        str(VENV_BIN / "snakemake"),
        "--snakefile",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--profile",
        str(PROFILE_DIR),
        *extra,
    ]
    return timed_run(cmd, workdir, env, timeout)


def run_uuid(log: str) -> str:
    m = re.search(r"SLURM run ID: (\S+)", log)
    assert m, f"no SLURM run ID in snakemake output:\n{log}"
    return m.group(1)


def sacct_rows(cluster, name: str) -> list[dict[str, str]]:
    fields = "JobID,JobName,Partition,TimelimitRaw,ReqMem,AllocTRES,ReqTRES,State,ExitCode,Comment"
    out = cluster.run(
        "sacct", "-X", "-P", "-n", "-a", "-S", "now-1days", f"--name={name}", f"--format={fields}"
    ).stdout
    keys = fields.split(",")
    return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines() if line]


def poll_sacct(cluster, name: str, n: int, final: set[str], timeout: float = 60):
    """Rows reach slurmdbd a moment after the job ends: poll until n rows are final."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        rows = sacct_rows(cluster, name)
        if len(rows) >= n and all(r["State"].split()[0] in final for r in rows):
            return rows
        time.sleep(1)
    pytest.fail(f"sacct did not show {n} finished jobs named {name} in {timeout} s: {rows}")


def mem_mb(reqmem: str) -> float:
    m = re.fullmatch(r"([\d.]+)([KMGT])[nc]?", reqmem)
    assert m, reqmem
    return float(m.group(1)) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[m.group(2)]


# ---------------------------------------------------------------- the cluster


def test_cluster_partitions_idle(slurm_cluster):
    out = slurm_cluster.run("sinfo", "-h", "-o", "%R %T").stdout.split("\n")
    parts = dict(line.split() for line in out if line.strip())
    assert parts == {"cpu": "idle", "gpu": "idle"}, out
    node = slurm_cluster.run("scontrol", "show", "node").stdout
    assert "Gres=gpu:h200:2" in node, node
    default = slurm_cluster.run("scontrol", "show", "partition", "cpu").stdout
    assert "Default=YES" in default


def test_accounting_answers(slurm_cluster):
    slurm_cluster.run("sacct", "-n", "-X")
    assoc = slurm_cluster.run(
        "sacctmgr", "-n", "-P", "list", "assoc", "user=root", "format=account"
    ).stdout.split()
    assert slurm_cluster.account in assoc


def test_srun_gpu_job_sees_one_device(slurm_cluster, tmp_path):
    proc = slurm_cluster.run(
        "srun",
        "-p",
        "gpu",
        "--gpus=1",
        "--mem=100",
        "-t",
        "2",
        "sh",
        "-c",
        'echo "CVD=$CUDA_VISIBLE_DEVICES"',
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.stdout.strip() == "CVD=0", proc


# ---------------------------------------------------------------- snakemake


@pytest.fixture(scope="module")
def workflow_run(slurm_cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-wf")
    (workdir / "Snakefile").write_text(SNAKEFILE)
    proc = run_snakemake(slurm_cluster, workdir)
    print(f"first snakemake run took {proc.elapsed:.1f} s")
    return workdir, proc


def test_workflow_completes(workflow_run):
    workdir, proc = workflow_run
    assert proc.returncode == 0, proc.log
    for name in ("gpu.txt", "cpu.txt", "summary.txt"):
        assert (workdir / name).is_file(), f"{name} missing\n{proc.log}"
    gpu = dict(line.split("=", 1) for line in (workdir / "gpu.txt").read_text().splitlines())
    assert gpu["CUDA_VISIBLE_DEVICES"] == "0"
    assert int(gpu["nproc"]) >= 1
    cpu = (workdir / "cpu.txt").read_text()
    assert "job=none" not in cpu, "cpu_job did not run inside a SLURM job"
    summary = (workdir / "summary.txt").read_text()
    assert "local-job=none" in summary, "the local rule ran inside a SLURM job"
    # successful logs kept (slurm-keep-successful-logs)
    logs = list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(logs) == 2, logs


def test_workflow_jobs_in_sacct(slurm_cluster, workflow_run):
    _, proc = workflow_run
    assert proc.returncode == 0, proc.log
    rows = poll_sacct(slurm_cluster, run_uuid(proc.log), n=2, final={"COMPLETED"})
    by_rule = {r["Comment"].removeprefix("rule_"): r for r in rows}
    assert set(by_rule) == set(EXPECTED), rows  # the local rules were not submitted
    for rule, exp in EXPECTED.items():
        row = by_rule[rule]
        assert row["State"] == "COMPLETED", row
        assert row["Partition"] == exp["partition"], row
        assert int(row["TimelimitRaw"]) == exp["minutes"], row
        assert mem_mb(row["ReqMem"]) == exp["mem_mb"], row
        if exp["gpus"]:
            assert f"gres/gpu={exp['gpus']}" in row["AllocTRES"].split(","), row
        else:
            assert "gres/gpu" not in row["AllocTRES"], row


def test_second_invocation_submits_nothing(slurm_cluster, workflow_run):
    workdir, first = workflow_run
    assert first.returncode == 0, first.log
    proc = run_snakemake(slurm_cluster, workdir, timeout=120)
    assert proc.returncode == 0, proc.log
    assert "Nothing to be done" in proc.log, proc.log
    assert "has been submitted" not in proc.log, proc.log
    m = re.search(r"SLURM run ID: (\S+)", proc.log)
    if m:
        time.sleep(2)
        assert sacct_rows(slurm_cluster, m.group(1)) == []


def test_failing_rule_is_reported(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    try:
        proc = run_snakemake(slurm_cluster, tmp_path, timeout=180)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"snakemake hung on a failed SLURM job: {e}")
    assert proc.returncode != 0, proc.log
    assert proc.elapsed < 150
    assert not (tmp_path / "never.txt").exists()
    assert re.search(r"Error in rule broken|failed", proc.log), proc.log
    rows = poll_sacct(slurm_cluster, run_uuid(proc.log), n=1, final={"FAILED"})
    assert rows[0]["ExitCode"].startswith("1:"), rows
