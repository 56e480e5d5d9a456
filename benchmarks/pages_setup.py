"""What the dashboard benchmarks share: an emulated EMC run on disk, the dashboard served as its own
process (the production server, or Flask's development server as a baseline), and headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.dashboard.emulated_run import EmulatedRun
from tests.ports import free_tcp_port

REPO = Path(__file__).resolve().parents[1]
DEV_SERVER = (
    "from dashboard.app import create_app; from pipeline.settings import Settings; "
    "s = Settings.from_env(); create_app(s).run(host=s.dash_host, port=s.dash_port, threaded=True)"
)


def emc_run(data_dir: Path, snapshots: int = 6) -> EmulatedRun:
    """An EMC run of `snapshots` one-minute snapshots ending now (so it is live)."""
    run = EmulatedRun(data_dir, time.time() - 50.0 - 60.0 * (snapshots - 1) - 5.0)
    for _ in range(snapshots):
        run.store_snapshot()
    return run


@contextmanager
def dashboard_process(data_dir: Path, cache_dir: Path, server: str = "gunicorn", **env: str) -> Iterator[str]:
    """Serve the dashboard over `data_dir` in its own process; yields its base URL. `server` is
    "gunicorn" (what command 1 runs) or "flask-dev" (Flask's development server, threaded)."""
    port = free_tcp_port()
    environment = {
        **os.environ,
        "OVERWATCH_DATA_DIR": str(data_dir),
        "OVERWATCH_CACHE_DIR": str(cache_dir),
        "OVERWATCH_DASH_PORT": str(port),
        **{f"OVERWATCH_{key.upper()}": value for key, value in env.items()},
    }
    command = (
        [sys.executable, "-m", "dashboard.app"]
        if server == "gunicorn"
        else [sys.executable, "-c", DEV_SERVER]
    )
    log = (cache_dir.parent / f"{server}.log").open("wb")  # read it when a benchmark fails
    process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def chrome():
    """Headless Chromium with the test suite's options (offline, quiet)."""
    from selenium import webdriver

    from tests.conftest import pytest_setup_options

    options = pytest_setup_options()
    options.add_argument("--headless=new")
    driver = webdriver.Chrome(options=options)
    driver.set_window_size(1600, 1000)
    return driver
