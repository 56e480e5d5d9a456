"""Run a snippet of this project's Python in a fresh interpreter: for what one process must not have done
before (glibc's malloc arenas, Arrow's and SQLite's memory), the tests measure it in a child of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_snippet(code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """What `python -c code args...` printed, run from the repository with it on the path; `env` replaces
    the environment (default: this process's). Raises CalledProcessError if the child fails."""
    environment = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return result.stdout
