"""A receiver in a process of its own (`python -m pipeline receiver`, as the supervisor starts one), for
tests that must kill it (-9) or stop it (SIGSTOP) as an operator or a crash would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.child_python import REPO_ROOT


def start_receiver(
    endpoint: str, data_dir: Path, period_s: float, timeout_s: float, subsystem: str = "EMC"
) -> subprocess.Popen:
    """The receiver of `subsystem`, asking `endpoint` for the objects whose names start with it."""
    command = [sys.executable, "-m", "pipeline", "--log-level", "WARNING", "receiver"]
    command += ["--endpoint", endpoint, "--subsystem", subsystem, "--data-dir", str(data_dir)]
    command += ["--select", f"^{subsystem}", "--period", str(period_s), "--timeout", str(timeout_s)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def end_receiver(process: subprocess.Popen) -> None:
    """Kill it (woken first, if it was stopped) and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.kill()
    process.wait(timeout=10)
