"""Receiver liveness and counters, shared with the status panel through small JSON files.

A receiver rewrites `status/<SYS>.json` atomically before every request (the heartbeat) and after every
reply, and also touches `heartbeat.<SYS>Receiver` with a unix epoch, as the original receiver did.
The HTTP push receiver (`kind` "push") keeps the same counters in `status/<SYS>-push.json`, updated
on each push.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ZMQ = "zmq"  # pulls from a merger on a period: a silent one is dead
PUSH = "push"  # waits for HTTP clients: a silent one is only idle


@dataclass
class ReceiverStatus:
    subsystem: str
    endpoint: str = ""
    pid: int = field(default_factory=os.getpid)
    started_utc: float = field(default_factory=time.time)
    heartbeat_utc: float = 0.0
    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    socket_recreations: int = 0
    rejected_objects: int = 0  # every object or block refused, whatever the reason
    unsupported_objects: int = 0  # of those, objects of classes not stored (TProfile, TGraph, ...)
    skipped_replies: int = 0
    snapshots_stored: int = 0
    histograms_stored: int = 0
    last_reply_utc: float | None = None
    last_snapshot_utc: float | None = None
    last_run: int | None = None  # run named by the last reply, stored or not (0 between runs)
    last_error: str | None = None
    kind: str = ZMQ  # ZMQ or PUSH; files written before it existed are ZMQ receivers'

    @property
    def key(self) -> str:
        """Names its files and its row on the status page: `<SYS>`, or `<SYS>-push` for a push receiver,
        so both can report for one subsystem."""
        return self.subsystem if self.kind == ZMQ else f"{self.subsystem}-{self.kind}"

    def heartbeat_age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.heartbeat_utc


def status_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "status"


def write_status(data_dir: Path, status: ReceiverStatus) -> None:
    """Atomically replace the status file and the plain-epoch heartbeat file."""
    directory = status_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(directory / f"{status.key}.json", json.dumps(asdict(status)))
    _atomic_write(Path(data_dir) / f"heartbeat.{status.key}Receiver", f"{int(status.heartbeat_utc)}\n")


def read_status(data_dir: Path, key: str) -> ReceiverStatus | None:
    """One receiver's last status by its key (`<SYS>` or `<SYS>-push`); None if absent or unreadable."""
    try:
        return ReceiverStatus(**json.loads((status_dir(data_dir) / f"{key}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_all_status(data_dir: Path) -> list[ReceiverStatus]:
    """Every receiver's last status, sorted by subsystem; unreadable files are skipped."""
    statuses = []
    directory = status_dir(data_dir)
    if not directory.is_dir():
        return statuses
    for path in sorted(directory.glob("*.json")):
        status = read_status(data_dir, path.stem)
        if status is not None:
            statuses.append(status)
    return statuses


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
