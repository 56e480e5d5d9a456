"""The main job on embedded defaults: HLT merger emulator, one receiver per subsystem, and the dashboard.

`python app.py` starts the emulator and receivers as child processes (as they would be separate
processes in production), serves the Dash app on http://127.0.0.1:8050 in this process, and stops every
child cleanly on Ctrl-C. `--dashboard-only` serves the app over an existing data folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.settings import DEFAULT_SELECTIONS, Settings

log = logging.getLogger("overwatch")


def child_commands(settings: Settings) -> list[list[str]]:
    """The emulator and receiver command lines the main job runs, in start order."""
    python = [sys.executable, "-m", "pipeline"]
    commands = [
        [
            *python,
            "emulator",
            "--bind",
            settings.emulator_endpoint,
            "--subsystems",
            ",".join(settings.subsystems),
        ]
    ]
    for subsystem in settings.subsystems:
        command = [
            *python,
            "receiver",
            "--endpoint",
            settings.emulator_endpoint,
            "--subsystem",
            subsystem,
            "--data-dir",
            str(settings.data_dir),
            "--period",
            str(settings.receiver_period_s),
            "--timeout",
            str(settings.receiver_timeout_s),
        ]
        if subsystem in DEFAULT_SELECTIONS:
            command += ["--select", DEFAULT_SELECTIONS[subsystem]]
        if settings.receiver_reset:
            command.append("--reset")
        commands.append(command)
    return commands


def start_children(settings: Settings) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    children = []
    for command in child_commands(settings):
        # Own process group: the terminal's Ctrl-C reaches us, and we stop children in order.
        children.append(subprocess.Popen(command, env=env, start_new_session=True))
        log.info("started %s (pid %d)", " ".join(command[2:5]), children[-1].pid)
    return children


def stop_children(children: list[subprocess.Popen], grace_s: float = 5.0) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop in %g s; killing it", child.pid, grace_s)
            child.kill()
            child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dashboard-only", action="store_true", help="no emulator, no receivers")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env(data_dir=args.data_dir, dash_port=args.port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    from dashboard.app import create_app

    dash_app = create_app(settings)
    children = [] if args.dashboard_only else start_children(settings)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info(
        "dashboard on http://%s:%d (data in %s)", settings.dash_host, settings.dash_port, settings.data_dir
    )
    try:
        dash_app.run(host=settings.dash_host, port=settings.dash_port, debug=False)
    except KeyboardInterrupt:
        pass
    finally:
        stop_children(children)
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
