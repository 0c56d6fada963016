"""Killing a test's subprocess the way a node failure would: every process, SIGKILL."""

from __future__ import annotations

import contextlib
import signal
import subprocess

import psutil


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process and all its children (a job killed as a node failure would)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(proc.pid)
        for victim in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
