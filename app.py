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


def _watch(supervisor: Supervisor, period_s: float = 1.0) -> None:
    while True:
        time.sleep(period_s)
        supervisor.poll()


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
    from pipeline.processing.service import ProcessingService
    from pipeline.store import SnapshotStore

    store = SnapshotStore(settings.data_dir)
    service = ProcessingService(
        store, settings.cache_dir, settings.subsystems, alarms_config=settings.alarms_config
    )
    dash_app = create_app(settings, service=service)
    supervisor = Supervisor([] if args.dashboard_only else child_commands(settings))
    supervisor.start()
    threading.Thread(target=_watch, args=(supervisor,), name="supervisor", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # One line per browser request would bury what operators need to see (restarts, errors).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    log.info(
        "dashboard on http://%s:%d (data in %s)", settings.dash_host, settings.dash_port, settings.data_dir
    )
    try:
        dash_app.run(host=settings.dash_host, port=settings.dash_port, debug=False)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
        service.flush()  # processed histograms still queued for the disk cache
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
