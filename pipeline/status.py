"""Receiver liveness and counters, shared with the processing through small JSON files.

A receiver rewrites `status/<SYS>.json` atomically at least every HEARTBEAT_EVERY_S while its process
lives (also while it waits for a silent merger), after every reply and after every timeout, and touches
`heartbeat.<SYS>Receiver` with a unix epoch, as the original receiver did. The heartbeat therefore says
only "the process is alive"; whether the merger answers and whether data are stored are told by
`last_reply_utc`, `consecutive_timeouts` and `last_snapshot_utc` (see `pipeline.liveness`).
The HTTP push receiver (`kind` "push") keeps the same counters in `status/<SYS>-push.json`, updated
on each push.

A full disk must not silence the status: that is when the status page has the most to say ("store
failed: No space left on device"). An atomic replace needs new blocks for the new file, so each status
file is padded to a fixed size (STATUS_FILE_BYTES, JSON allows trailing blanks), and when the replace
fails for want of space the same number of bytes is written over the old file in place, inside blocks
it already has. Such a rewrite is not atomic, so a reader retries a file it catches half-written. The
heartbeat file (a fixed-width epoch) is kept the same way.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from pipeline import atomic_files

log = logging.getLogger(__name__)

ZMQ = "zmq"  # pulls from a merger on a period: a silent one is dead
PUSH = "push"  # waits for HTTP clients: a silent one is only idle
# A live receiver rewrites its status at least this often, whatever it is waiting for.
HEARTBEAT_EVERY_S = 2.0
# Snapshot times a receiver keeps for its recent rate (the last RATE_WINDOW_S, at most this many).
RECENT_SNAPSHOTS_KEPT = 400
RATE_WINDOW_S = 300.0
# Every status file is padded to this size (a full RECENT_SNAPSHOTS_KEPT list and the counters take
# about 9 kB), so it can be rewritten in place when the disk is full.
STATUS_FILE_BYTES = 16384
# Errors that mean "no room for a new file", after which a rewrite in place is tried.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
# Attempts to read a status file that a rewrite in place may have caught half-written.
_READ_ATTEMPTS = 3


@dataclass
class ReceiverStatus:
    subsystem: str
    endpoint: str = ""
    pid: int = field(default_factory=os.getpid)
    started_utc: float = field(default_factory=time.time)
    heartbeat_utc: float = 0.0
    # The receiver's own cadence, so liveness can tell "late" from "not asked yet".
    period_s: float = 60.0
    timeout_s: float = 10.0
    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    consecutive_timeouts: int = 0  # requests without reply since the last reply
    socket_recreations: int = 0
    rejected_objects: int = 0  # every object or block refused, whatever the reason
    unsupported_objects: int = 0  # of those, objects of classes not stored (TProfile, TGraph, ...)
    skipped_replies: int = 0
    snapshots_stored: int = 0
    histograms_stored: int = 0
    last_reply_utc: float | None = None
    last_snapshot_utc: float | None = None
    # Times of the snapshots stored in the last RATE_WINDOW_S, oldest first. A restarted receiver
    # continues its predecessor's list: the rate is the subsystem's data flow, not one process's.
    recent_snapshots_utc: list[float] = field(default_factory=list)
    # Since when that list holds every snapshot stored: the start of the first receiver process whose
    # list this one continues (None, in files written before it existed: `started_utc`).
    recent_since_utc: float | None = None
    last_run: int | None = None  # run named by the last reply, stored or not (0 between runs)
    # When a reply first named `last_run`: a new run's first replies hold no histograms yet, and the
    # previous run's last snapshot must not make it look "not storing" (None in older files).
    run_since_utc: float | None = None
    last_error: str | None = None
    last_error_utc: float | None = None
    # When a request/reply cycle next completed without error: the error is then history, not news.
    last_error_cleared_utc: float | None = None
    kind: str = ZMQ  # ZMQ or PUSH; files written before it existed are ZMQ receivers'

    @property
    def key(self) -> str:
        """Names its files and its row on the status page: `<SYS>`, or `<SYS>-push` for a push receiver,
        so both can report for one subsystem."""
        return self.subsystem if self.kind == ZMQ else f"{self.subsystem}-{self.kind}"

    def heartbeat_age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.heartbeat_utc

    def record_error(self, message: str, now: float | None = None) -> None:
        self.last_error = message
        self.last_error_utc = time.time() if now is None else now
        self.last_error_cleared_utc = None

    def record_run(self, run: int, now: float | None = None) -> None:
        """A reply named `run`: remember it, and when it was first heard if it is a new one."""
        if run != self.last_run:
            self.run_since_utc = time.time() if now is None else now
        self.last_run = run

    @property
    def rate_since_utc(self) -> float:
        """Since when `recent_snapshots_utc` is complete (see `recent_since_utc`)."""
        return self.started_utc if self.recent_since_utc is None else self.recent_since_utc

    def record_snapshot(self, when_utc: float) -> None:
        self.snapshots_stored += 1
        self.last_snapshot_utc = when_utc
        recent = [t for t in self.recent_snapshots_utc if when_utc - t < RATE_WINDOW_S]
        recent.append(when_utc)
        self.recent_snapshots_utc = recent[-RECENT_SNAPSHOTS_KEPT:]


_FIELDS = frozenset(spec.name for spec in fields(ReceiverStatus))


def status_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "status"


def write_status(data_dir: Path, status: ReceiverStatus) -> None:
    """Replace the status file and the plain-epoch heartbeat file: atomically, or in place if the disk
    is full. Raises OSError if neither can be done (e.g. a read-only file system)."""
    directory = status_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(status)).ljust(STATUS_FILE_BYTES)
    _replace_small_file(directory / f"{status.key}.json", text)
    _replace_small_file(Path(data_dir) / f"heartbeat.{status.key}Receiver", f"{int(status.heartbeat_utc)}\n")


def read_status(data_dir: Path, key: str) -> ReceiverStatus | None:
    """One receiver's last status by its key (`<SYS>` or `<SYS>-push`); None if absent or unreadable."""
    path = status_dir(data_dir) / f"{key}.json"
    for attempt in range(_READ_ATTEMPTS):
        try:
            raw = json.loads(path.read_text())
        except OSError:
            return None
        except ValueError:  # caught during a rewrite in place (full disk), or damaged
            time.sleep(0.01 * (attempt + 1))
            continue
        try:
            # Fields this version does not know (a newer receiver's) are ignored.
            return ReceiverStatus(**{k: v for k, v in raw.items() if k in _FIELDS})
        except (TypeError, AttributeError):
            return None
    return None


def read_all_status(data_dir: Path) -> list[ReceiverStatus]:
    """Every receiver's last status, sorted by subsystem; unreadable files are skipped, and fields
    this version does not know (a newer receiver's) are ignored."""
    statuses = []
    directory = status_dir(data_dir)
    if not directory.is_dir():
        return statuses
    for path in sorted(directory.glob("*.json")):
        status = read_status(data_dir, path.stem)
        if status is not None:
            statuses.append(status)
    return statuses


def _replace_small_file(path: Path, text: str) -> None:
    """Replace `path` atomically; if the disk is full, overwrite it in place when `text` fits."""
    try:
        atomic_files.write_file(path, text, durable=False)
    except OSError as error:
        if error.errno not in _NO_SPACE or not _overwrite_in_place(path, text.encode()):
            raise
        log.debug("disk full: %s rewritten in place", path)


def _overwrite_in_place(path: Path, data: bytes) -> bool:
    """Write `data`, padded with blanks to the file's size, over `path`: no new block is needed. False
    if the file is missing or too small for `data`."""
    try:
        descriptor = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(descriptor).st_size
        content = data.rstrip(b" \n")
        if len(content) >= size:
            return False
        padded = content.ljust(size - 1) + b"\n"
        return os.pwrite(descriptor, padded, 0) == size
    finally:
        os.close(descriptor)
