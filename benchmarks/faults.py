"""Fault soaks: a receiver killed mid-ingest, mergers that go away and come back (real processes).

    .venv/bin/python -m benchmarks.faults crash --kills 50     # SIGKILL mid-ingest while a reader reads
    .venv/bin/python -m benchmarks.faults outages --cycles 20  # merger down and up, new runs, recovery

Both run the real `python -m pipeline emulator` and `python -m pipeline receiver` on 127.0.0.1 (OS-chosen
ports) with the HLT objects filled every second, and print their figures. The CI tests
(`tests/pipeline/test_faults.py`) run the same functions a few times.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow.parquet as pq
import zmq

from pipeline.atomic_files import TEMP_SUFFIX, final_name_of_temp
from pipeline.status import ReceiverStatus, read_all_status
from pipeline.store import SUFFIX as SNAPSHOT_SUFFIX
from pipeline.store import SnapshotStore
from pipeline.wire.messages import build_request
from tests.ports import free_tcp_port

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBSYSTEM = "HLT"
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float, poll_s: float = 0.05) -> T | None:
    """Poll `condition` until it returns something truthy (returned) or the deadline passes (None)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)


def _pipeline(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def start_emulator(port: int, log_path: Path, first_run: int = 300000) -> subprocess.Popen:
    env = {
        # A fill a second: faster fills starve a loaded machine (each fill is 250,000 bins), and the
        # merger then answers too late for reasons that are not the fault being tested.
        "OVERWATCH_EMULATOR_STEP_S": "1.0",
        "OVERWATCH_EMULATOR_RUN_LENGTH_S": "3600",
        "OVERWATCH_EMULATOR_FIRST_RUN": str(first_run),
    }
    return _pipeline(
        ["emulator", "--bind", f"tcp://127.0.0.1:{port}", "--subsystems", SUBSYSTEM], log_path, env
    )


def start_receiver(
    port: int, data_dir: Path, log_path: Path, period_s: float = 0.3, timeout_s: float = 10.0
) -> subprocess.Popen:
    args = ["receiver", "--endpoint", f"tcp://127.0.0.1:{port}", "--subsystem", SUBSYSTEM]
    args += ["--data-dir", str(data_dir), "--period", str(period_s), "--timeout", str(timeout_s)]
    return _pipeline(args, log_path)


def ask_merger(port: int, select: str = "^$", timeout_s: float = 0.5) -> list[bytes] | None:
    """One request of our own to the merger (a REP socket serves several clients), or None if silent."""
    context = zmq.Context.instance()
    probe = context.socket(zmq.REQ)
    probe.setsockopt(zmq.LINGER, 0)
    try:
        probe.connect(f"tcp://127.0.0.1:{port}")
        probe.send_multipart(build_request(select))
        if not probe.poll(int(timeout_s * 1000)):
            return None
        return probe.recv_multipart()
    finally:
        probe.close(linger=0)


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def status_of(data_dir: Path) -> ReceiverStatus | None:
    return next((s for s in read_all_status(data_dir) if s.subsystem == SUBSYSTEM), None)


def snapshot_files(data_dir: Path) -> list[Path]:
    """Every `*.parquet` file under the snapshot area (what readers of the layout list)."""
    area = data_dir / "snapshots"
    return sorted(area.rglob("*.parquet")) if area.is_dir() else []


def snapshot_count(data_dir: Path) -> int:
    return SnapshotStore(data_dir).count_snapshots()


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class StoreReader(threading.Thread):
    """What a dashboard does while the receiver writes: list the store, read the newest snapshot, and
    glob the area with DuckDB. Every problem it meets (a partial or unreadable file) is recorded."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(daemon=True)
        self.data_dir = data_dir
        self.stop_event = threading.Event()
        self.reads = 0
        self.problems: list[str] = []
        # Complete small state files (heartbeat, status) replaced by a rename pass through a hidden temp
        # name for an instant (`pipeline/atomic_files.py`); counted, not a problem: no data file is partial.
        self.state_temp_names_seen = 0

    def run(self) -> None:
        area = self.data_dir / "snapshots"
        while not self.stop_event.wait(0.05):
            try:
                store = SnapshotStore(self.data_dir)
                for run in store.runs()["run"].tolist():
                    newest = store.latest_snapshot_id(run, SUBSYSTEM)
                    if newest:
                        store.read_snapshot(newest)
                if area.is_dir() and any(area.rglob("*.parquet")):
                    glob = str(area / "**" / "*.parquet")
                    duckdb.sql(
                        f"select count(*) from read_parquet('{glob}', hive_partitioning=true)"
                    ).fetchall()
                # A bare `**/*` (which lists hidden files too) must never meet a file being written.
                listed = duckdb.sql(f"select file from glob('{self.data_dir}/**/*')").fetchall()
                # What each temp file stands for (a temp name of another form: the name itself).
                temps = [
                    (name, final_name_of_temp(Path(name).name) or name)
                    for (name,) in listed
                    if name.endswith(TEMP_SUFFIX)
                ]
                self.problems += [
                    f"glob listed a snapshot being written: {name}"
                    for name, final in temps
                    if SNAPSHOT_SUFFIX in final
                ]
                self.state_temp_names_seen += sum(SNAPSHOT_SUFFIX not in final for _, final in temps)
                self.reads += 1
            except FileNotFoundError:
                continue  # a run folder listed while it was being created
            except Exception as error:
                self.problems.append(f"{type(error).__name__}: {error}")

    def finish(self) -> None:
        self.stop_event.set()
        self.join(10)


# ---- crash safety -------------------------------------------------------------------------------


@dataclass
class CrashReport:
    kills: int = 0
    mid_write: int = 0  # kills that landed while the receiver had a file being written (unnamed) open
    temp_files_left: int = 0  # complete temp files of replaced files left by kills (removed at restart)
    snapshots: int = 0
    reader_reads: int = 0
    state_temp_names_seen: int = 0  # complete heartbeat/status files caught between link and rename
    problems: list[str] = field(default_factory=list)
    restart_to_snapshot_s: list[float] = field(default_factory=list)
    counters: tuple[int, int] = (0, 0)  # (status snapshots_stored, files visible) at the end


def check_intact(data_dir: Path, known: dict[Path, str]) -> list[str]:
    """Problems with the snapshot area: a file that is not a complete Parquet snapshot, or a committed
    one that changed or vanished. Records new files in `known`."""
    problems = []
    for path, sha in known.items():
        if not path.is_file() or digest(path) != sha:
            problems.append(f"committed snapshot changed or vanished: {path.name}")
    for path in snapshot_files(data_dir):
        if path in known:
            continue
        try:
            pq.read_table(path)
        except Exception as error:
            problems.append(f"unreadable snapshot {path.name}: {error}")
            continue
        known[path] = digest(path)
    return problems


def dead_writer_temp_files(data_dir: Path) -> list[Path]:
    """Temp files anywhere in the data tree left by writers whose process is gone (files are written
    unnamed, so there should be none; the receiver removes any at start)."""
    left = []
    for path in data_dir.rglob(".*.tmp"):
        pid = int(path.name.rsplit(".", 3)[-3])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            left.append(path)
    return left


def writing_unnamed_file(pid: int) -> bool:
    """Whether process `pid` holds open a file with no name: a snapshot (or status) being written."""
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(descriptor).endswith(" (deleted)"):
                return True
        except OSError:
            continue
    return False


def crash_soak(kills: int, data_dir: Path, seed: int = 1, log: Callable[[str], None] = print) -> CrashReport:
    """Kill the receiver with SIGKILL `kills` times at random points of its ingest loop."""
    rng = random.Random(seed)
    report = CrashReport()
    port = free_tcp_port()
    logs = data_dir.parent
    emulator = start_emulator(port, logs / "emulator.log")
    reader = StoreReader(data_dir)
    reader.start()
    known: dict[Path, str] = {}
    receiver = None
    try:
        for kill in range(kills):
            before = snapshot_count(data_dir)
            restarted = time.monotonic()
            receiver = start_receiver(port, data_dir, logs / "receiver.log", period_s=0.05)
            # The restarted receiver removed the temp files of the killed one, and stores again.
            if not wait_for(lambda b=before: snapshot_count(data_dir) > b, 120):
                report.problems.append(f"kill {kill}: no snapshot within 120 s of the restart")
            else:
                report.restart_to_snapshot_s.append(time.monotonic() - restarted)
            report.problems += [
                f"kill {kill}: left by a dead writer: {p.name}" for p in dead_writer_temp_files(data_dir)
            ]
            time.sleep(rng.uniform(0.0, 1.0))  # a random point of the ingest loop (writes take most of it)
            writing = writing_unnamed_file(receiver.pid)
            receiver.send_signal(signal.SIGKILL)
            receiver.wait(timeout=10)
            report.kills += 1
            report.mid_write += writing
            # A snapshot is never named before it is complete; a replaced file (status, streamers) has a
            # temp name for the instant between its link and its rename, which the restart clears.
            left = dead_writer_temp_files(data_dir)
            report.temp_files_left += len(left)
            report.problems += [
                f"kill {kill}: a snapshot temp file left: {p}" for p in left if ".parquet." in p.name
            ]
            report.problems += [f"kill {kill}: {problem}" for problem in check_intact(data_dir, known)]
            if (kill + 1) % 10 == 0:
                log(f"  {kill + 1} kills, {len(known)} snapshots, {len(report.problems)} problems")
        # One last start: its status continues the killed processes' counters.
        receiver = start_receiver(port, data_dir, logs / "receiver.log")
        wait_for(lambda: (s := status_of(data_dir)) and s.pid == receiver.pid, 30)
        stop(receiver)
        if dead_writer_temp_files(data_dir):
            report.problems.append("temp files of dead writers left after the last restart")
    finally:
        if receiver is not None:
            stop(receiver, signal.SIGKILL)
        stop(emulator)
        reader.finish()
    report.problems += check_intact(data_dir, known)
    report.problems += [f"reader: {problem}" for problem in reader.problems]
    report.snapshots = len(known)
    report.reader_reads = reader.reads
    report.state_temp_names_seen = reader.state_temp_names_seen
    status = status_of(data_dir)
    report.counters = (status.snapshots_stored if status else 0, snapshot_count(data_dir))
    return report


# ---- merger outages -----------------------------------------------------------------------------


@dataclass
class OutageReport:
    cycles: int = 0
    recovery_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    timeouts: int = 0
    receiver_pid_changed: bool = False
    runs_seen: list[int] = field(default_factory=list)


def outage_soak(
    cycles: int, data_dir: Path, down_s: float = 2.0, seed: int = 1, log: Callable[[str], None] = print
) -> OutageReport:
    """Stop the merger `cycles` times for `down_s`, bring it back (every other time with a new run) and
    measure how long the receiver takes to store again; the receiver process is never restarted."""
    rng = random.Random(seed)
    report = OutageReport()
    port = free_tcp_port()
    logs = data_dir.parent
    run = 400000
    emulator = start_emulator(port, logs / "emulator.log", first_run=run)
    receiver = start_receiver(port, data_dir, logs / "receiver.log", period_s=0.2, timeout_s=3.0)
    try:
        if not wait_for(lambda: snapshot_count(data_dir) > 0, 60):
            report.problems.append("no first snapshot within 60 s")
            return report
        for cycle in range(cycles):
            stop(emulator, rng.choice((signal.SIGTERM, signal.SIGKILL)))
            down_until = time.monotonic() + down_s * rng.uniform(0.5, 1.5)
            timeouts_before = (status_of(data_dir) or ReceiverStatus(SUBSYSTEM)).timeouts
            # While it is down the receiver times out and says so, and keeps running.
            if not wait_for(lambda t=timeouts_before: (s := status_of(data_dir)) and s.timeouts > t, 30):
                report.problems.append(f"cycle {cycle}: no timeout counted while the merger was down")
            time.sleep(max(0.0, down_until - time.monotonic()))
            if cycle % 2:
                run += 1  # a merger that comes back on a new run
            count = snapshot_count(data_dir)
            emulator = start_emulator(port, logs / "emulator.log", first_run=run)
            # Recovery counts from when the merger answers again, not from its (slow) process start.
            wait_for(lambda: ask_merger(port), 60, poll_s=0.0)
            back = time.monotonic()
            if wait_for(lambda c=count: snapshot_count(data_dir) > c, 120):
                report.recovery_s.append(time.monotonic() - back)
            else:
                report.problems.append(f"cycle {cycle}: no snapshot within 120 s of the merger's return")
            if receiver.poll() is not None:
                report.problems.append(f"cycle {cycle}: the receiver exited ({receiver.returncode})")
                break
            report.cycles += 1
            if (cycle + 1) % 5 == 0:
                log(f"  {cycle + 1} outages, recovery {max(report.recovery_s, default=0):.1f} s at most")
    finally:
        stop(receiver)
        stop(emulator)
    status = status_of(data_dir)
    report.timeouts = status.timeouts if status else 0
    report.receiver_pid_changed = status is None or status.pid != receiver.pid
    store = SnapshotStore(data_dir)
    report.runs_seen = sorted(store.runs()["run"].tolist())
    if status and status.snapshots_stored != snapshot_count(data_dir):
        held = snapshot_count(data_dir)
        report.problems.append(
            f"status says {status.snapshots_stored} snapshots stored, the store holds {held}"
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    crash = commands.add_parser("crash", help="SIGKILL the receiver at random points of ingest")
    crash.add_argument("--kills", type=int, default=50)
    outages = commands.add_parser("outages", help="stop and restart the merger")
    outages.add_argument("--cycles", type=int, default=20)
    outages.add_argument("--down-s", type=float, default=3.0)
    for command in (crash, outages):
        command.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks stop the emulator and receiver processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(prefix="faults-") as folder:
        data_dir = Path(folder) / "data"
        started = time.monotonic()
        if args.command == "crash":
            report = crash_soak(args.kills, data_dir, args.seed)
            recovery = report.restart_to_snapshot_s
            print(
                f"kills {report.kills} ({report.mid_write} during a write, "
                f"{report.temp_files_left} temp files left, all removed at restart), "
                f"committed snapshots {report.snapshots} all intact: "
                f"{not report.problems}, reader passes {report.reader_reads} (a complete status or "
                f"heartbeat file seen under its temp name in {report.state_temp_names_seen})\n"
                f"restart to next snapshot: median {statistics.median(recovery):.2f} s, "
                f"max {max(recovery):.2f} s\n"
                f"status snapshots_stored {report.counters[0]} across restarts, files {report.counters[1]} "
                "(a kill between a snapshot's publish and the status write loses that one count)"
            )
        else:
            report = outage_soak(args.cycles, data_dir, args.down_s, args.seed)
            recovery = report.recovery_s or [0.0]
            print(
                f"outages {report.cycles}, receiver restarted: {report.receiver_pid_changed}, "
                f"timeouts counted {report.timeouts}, runs stored {report.runs_seen}\n"
                f"merger back to next snapshot: median {statistics.median(recovery):.2f} s, "
                f"max {max(recovery):.2f} s"
            )
        print(f"time {time.monotonic() - started:.0f} s")
        for problem in report.problems[:20]:
            print("PROBLEM", problem)
        print("MET" if not report.problems else f"NOT MET: {len(report.problems)} problems")
        return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
