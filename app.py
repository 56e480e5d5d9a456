"""The main job on embedded defaults: HLT merger emulator, one receiver per subsystem, and the dashboard.

`python app.py` starts the supervisor in its own process (it runs the emulator and the receivers as
its children and restarts any that dies), then serves the dashboard on http://127.0.0.1:8050 with the
production server (gunicorn: `dash_workers` x `dash_threads`) from this process. Ctrl-C stops
everything cleanly. `--dashboard-only` serves the app over an existing data folder, without supervisor.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipeline.settings import DEFAULT_SELECTIONS, Settings

log = logging.getLogger("overwatch")


def child_commands(settings: Settings) -> list[list[str]]:
    """The emulator, receiver and QC service command lines the main job runs, in start order."""
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
    # QC follows the store the receivers write, like them a supervised child.
    commands.append([*python, "qc", "--data-dir", str(settings.data_dir), "--poll", str(settings.qc_poll_s)])
    return commands


class Supervisor:
    """Keeps the emulator and receivers running: a child that exits is logged and started again, after
    a back-off that doubles (up to a minute) while it keeps dying quickly, as a receiver host's
    supervisord would. The operator sees every restart in the log."""

    def __init__(self, commands: list[list[str]], min_backoff_s: float = 1.0, max_backoff_s: float = 60.0):
        self.commands = commands
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.children: list[subprocess.Popen | None] = [None] * len(commands)
        self.restarts = [0] * len(commands)
        self._backoff_s = [min_backoff_s] * len(commands)
        self._started_at = [0.0] * len(commands)
        self._restart_at: list[float | None] = [None] * len(commands)
        self._lock = threading.Lock()  # the watcher thread polls while the main thread may stop
        self._stopped = False

    def start(self) -> None:
        for index in range(len(self.commands)):
            self._spawn(index)

    def poll(self, now: float | None = None) -> None:
        """Notice children that exited and restart those whose back-off has passed."""
        with self._lock:
            if not self._stopped:
                self._poll(time.monotonic() if now is None else now)

    def _poll(self, now: float) -> None:
        for index, child in enumerate(self.children):
            if child is not None and child.poll() is not None:
                lived_s = now - self._started_at[index]
                # A child that ran a while before dying starts the back-off afresh.
                if lived_s > self.max_backoff_s:
                    self._backoff_s[index] = self.min_backoff_s
                delay = self._backoff_s[index]
                log.error(
                    "%s exited with code %s after %.0f s; restarting in %g s",
                    _label(self.commands[index]), child.returncode, lived_s, delay,
                )  # fmt: skip
                self.children[index] = None
                self._restart_at[index] = now + delay
                self._backoff_s[index] = min(2 * delay, self.max_backoff_s)
            restart_at = self._restart_at[index]
            if self.children[index] is None and restart_at is not None and now >= restart_at:
                self.restarts[index] += 1
                self._spawn(index, now)

    def stop(self, grace_s: float = 5.0) -> None:
        with self._lock:
            self._stopped = True
        running = [child for child in self.children if child is not None]
        for child in reversed(running):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in running:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop in %g s; killing it", child.pid, grace_s)
                child.kill()
                child.wait()

    def _spawn(self, index: int, now: float | None = None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Own process group: the terminal's Ctrl-C reaches us, and we stop children in order.
        child = subprocess.Popen(self.commands[index], env=env, start_new_session=True)
        self.children[index] = child
        self._started_at[index] = time.monotonic() if now is None else now
        self._restart_at[index] = None
        log.info("started %s (pid %d)", _label(self.commands[index]), child.pid)


def _label(command: list[str]) -> str:
    """'receiver --endpoint tcp://...' for `python -m pipeline receiver --endpoint ...`."""
    return " ".join(command[3:6]) if command[1:3] == ["-m", "pipeline"] else " ".join(command[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dashboard-only", action="store_true", help="no emulator, no receivers")
    parser.add_argument("--supervisor-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env(data_dir=args.data_dir, dash_port=args.port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.supervisor_only:
        return run_supervisor(settings)

    from dashboard.access.policy import StartRefused, check_startable
    from dashboard.server import serve

    try:
        check_startable(settings)  # before any process starts: nothing runs exposed, nothing half-starts
    except StartRefused as refused:
        log.error("%s", refused)
        return 2

    supervisor = None
    if not args.dashboard_only:
        # Its own process: the web server's workers fork from this one, and must not inherit it.
        command = [sys.executable, str(Path(__file__).resolve()), "--supervisor-only"]
        if args.data_dir is not None:
            command += ["--data-dir", str(args.data_dir)]
        supervisor = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.info(
        "dashboard on http://%s:%d (data in %s, %d workers x %d threads)",
        settings.dash_host, settings.dash_port, settings.data_dir,
        settings.dash_workers, settings.dash_threads,
    )  # fmt: skip
    try:
        serve(settings)  # returns (or exits) when gunicorn stops on SIGINT/SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        if supervisor is not None:
            _stop(supervisor)
        log.info("stopped")
    return 0


def run_supervisor(settings: Settings) -> int:
    """The supervisor process: start the emulator and receivers, restart any that dies, stop them all
    on SIGTERM or SIGINT."""
    supervisor = Supervisor(child_commands(settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    supervisor.start()
    while not stop.wait(1.0):
        supervisor.poll()
    supervisor.stop()
    return 0


def _stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":
    sys.exit(main())
