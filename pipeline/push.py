"""The HTTP push source (the original's DQM receiver path): a pushed ROOT file becomes one snapshot.

A client sends a whole ROOT file with the run number and time stamp in the original's headers
(`runNumber`, `timeStamp` in unix seconds, `amoreAgent`, `dataStatus`). The file's objects are framed as
the merger reply they would have been (`wire.rootfile`) and decoded by the same code as a ZeroMQ reply,
with the file's own streamers, then stored by `ingest.store_reply`: unsupported classes counted,
corrupt objects rejected, run 0 refused, exactly as for a reply. Nothing here knows about HTTP beyond
the status code each refusal deserves; `pipeline.web.push` is the route.

Counters go to `status/<SYS>-push.json` (a `ReceiverStatus` of kind "push"). Several web workers may
receive pushes at once, so each push updates that file under a lock, read-modify-write.
"""

from __future__ import annotations

import fcntl
import io
import logging
import math
import re
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.ingest import IngestResult, Outcome, store_reply
from pipeline.status import PUSH, ReceiverStatus, read_status, status_dir, write_status
from pipeline.store import SnapshotStore
from pipeline.store_schema import SUBSYSTEM_PATTERN
from pipeline.wire.class_version import reply_th1_version
from pipeline.wire.messages import Reply, build_reply, decode_reply, format_info
from pipeline.wire.rootfile import ROOT_MAGIC, read_file_objects
from pipeline.wire.tmessage import StreamerContext

log = logging.getLogger(__name__)

PUSH_ENDPOINT = "http push"
DEFAULT_AGENT = "DQM"  # the original's default amoreAgent
PUSHED_HLT_MODE = "U"  # a pushed file says nothing of the HLT mode
DATA_STATUSES = {0: "middle", 1: "start", 2: "end"}  # the original parsed these and used none
MAX_FUTURE_S = 86400.0  # a time stamp a day ahead is a client's clock or unit error, not data
_AGENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# ROOT file header: "root", version (int32), fBEGIN (int32), then fEND: int32 for small files, int64
# once the version is >= 1000000 (files past 2 GB).
_SMALL_HEADER = struct.Struct(">4siii")
_LARGE_HEADER = struct.Struct(">4siiq")


class PushRefused(Exception):
    """A push that stores nothing: `status_code` for the HTTP answer, `field` naming the bad header."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class PushHeaders:
    """What the original's headers say about a pushed file."""

    run: int
    snapshot_time_utc: datetime
    agent: str = DEFAULT_AGENT
    data_status: int | None = None


@dataclass(frozen=True)
class PushReport:
    """A push that was read: what was stored (or why not) and what the headers said."""

    subsystem: str
    headers: PushHeaders
    result: IngestResult


def parse_push_headers(headers: Mapping[str, str], now: float | None = None) -> PushHeaders:
    """The run, time stamp, agent and data status of a push; PushRefused (400) naming a bad header.

    Header names are case-insensitive (HTTP); a missing `timeStamp` is the time of receipt.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    now = time.time() if now is None else now
    run_text = lowered.get("runnumber")
    if run_text is None or not run_text.strip():
        raise PushRefused(400, "runNumber: header required (the run the file belongs to)", "runNumber")
    run = _whole_number("runNumber", run_text)
    if run < 0:
        raise PushRefused(400, f"runNumber: must be >= 0, got {run_text!r}", "runNumber")
    stamp_text = lowered.get("timestamp")
    stamp = now if stamp_text is None or not stamp_text.strip() else _seconds("timeStamp", stamp_text)
    if stamp < 0 or stamp > now + MAX_FUTURE_S:
        raise PushRefused(
            400,
            f"timeStamp: must be unix seconds between 0 and now (+1 day), got {stamp_text!r}",
            "timeStamp",
        )
    agent = (lowered.get("amoreagent") or DEFAULT_AGENT).strip()
    if not _AGENT.fullmatch(agent):
        raise PushRefused(400, "amoreAgent: must be 1-64 letters, digits, '_', '.' or '-'", "amoreAgent")
    data_status = None
    if (lowered.get("datastatus") or "").strip():
        data_status = _whole_number("dataStatus", lowered["datastatus"])
        if data_status not in DATA_STATUSES:
            raise PushRefused(400, "dataStatus: must be 0 (middle), 1 (start) or 2 (end)", "dataStatus")
    return PushHeaders(run, datetime.fromtimestamp(stamp, UTC), agent, data_status)


def check_root_file(body: bytes) -> None:
    """PushRefused (400) unless `body` starts like a ROOT file and is as long as its header says.

    A file cut short may still open (uproot reads keys near the start of the file, as ROOT writes them)
    and silently lose its last objects, so its length is checked against the header's fEND.
    """
    if not body:
        raise PushRefused(400, "no file uploaded and the payload was empty")
    if len(body) < _LARGE_HEADER.size or not body.startswith(ROOT_MAGIC):
        raise PushRefused(400, "the body is not a ROOT file (it does not start with 'root')")
    version, end = _SMALL_HEADER.unpack_from(body)[1::2]
    if version >= 1000000:
        end = _LARGE_HEADER.unpack_from(body)[3]
    if end > len(body):
        raise PushRefused(
            400, f"the ROOT file is truncated: its header says {end} bytes, {len(body)} arrived"
        )


def reply_from_root_file(
    body: bytes, run: int, hlt_mode: str = PUSHED_HLT_MODE, beam_type: str = ""
) -> tuple[Reply, int | None]:
    """The merger reply a pushed file stands for: its objects decoded by the ZeroMQ reply's rules,
    and the TH1 class version they came in (recorded in the snapshot, as receivers record it).

    PushRefused (400) when the bytes are not a whole ROOT file that uproot can open.
    """
    check_root_file(body)
    try:
        found = read_file_objects(io.BytesIO(body))
    except Exception as error:  # uproot raises many kinds on bad bytes; all mean "not a valid file"
        raise PushRefused(
            400, f"the body is not a valid ROOT file: {type(error).__name__}: {error}"
        ) from None
    frames = build_reply(
        format_info(run, hlt_mode, beam_type), list(found.objects.items()), found.streamer_block
    )
    # A context of its own: the file's streamers describe its objects and nothing else.
    reply = decode_reply(frames, StreamerContext())
    reply.errors.extend(found.unreadable)
    return reply, reply_th1_version(frames)


class PushReceiver:
    """Stores pushed files of the configured subsystems under `data_dir`, counting them per subsystem."""

    def __init__(self, data_dir: Path, subsystems: Sequence[str]) -> None:
        self.data_dir = Path(data_dir)
        self.subsystems = tuple(subsystems)
        self.store = SnapshotStore(self.data_dir)

    def check_subsystem(self, subsystem: str) -> None:
        """PushRefused (404) for a subsystem that is not configured (nothing is created for it)."""
        if subsystem not in self.subsystems or not SUBSYSTEM_PATTERN.fullmatch(subsystem):
            known = ", ".join(self.subsystems)
            raise PushRefused(404, f"unknown subsystem {subsystem!r} (known: {known})", "subsystem")

    def receive(self, subsystem: str, body: bytes, headers: Mapping[str, str]) -> PushReport:
        """Store one pushed file as one snapshot; PushRefused (and nothing stored) when it cannot be."""
        self.check_subsystem(subsystem)
        # Read and decode before taking the status lock: a big file must not hold up other pushes.
        try:
            parsed = parse_push_headers(headers)
            reply, th1_version = reply_from_root_file(body, parsed.run)
        except PushRefused as refused:
            with self._status(subsystem) as status:
                status.requests += 1
                status.record_error(f"push refused: {refused.message}")
            log.warning("%s: push refused: %s", subsystem, refused.message)
            raise
        with self._status(subsystem) as status:
            status.requests += 1
            status.replies += 1
            status.last_reply_utc = status.heartbeat_utc
            result = store_reply(self.store, status, reply, parsed.snapshot_time_utc, th1_version=th1_version)
        log.info(
            "%s: push from %s, run %d: %s (%d stored, %d rejected)",
            subsystem,
            parsed.agent,
            parsed.run,
            result.outcome.value,
            len(result.stored_names),
            len(result.rejected),
        )
        if result.outcome is Outcome.SKIPPED:
            detail = f"; rejected: {'; '.join(result.rejected)}" if result.rejected else ""
            raise PushRefused(400, f"nothing stored: {result.reason}{detail}")
        if result.outcome is Outcome.FAILED:
            raise PushRefused(500, f"nothing stored: {result.reason}")
        return PushReport(subsystem, parsed, result)

    @contextmanager
    def _status(self, subsystem: str) -> Iterator[ReceiverStatus]:
        """The subsystem's push status, read, changed and written back under an exclusive file lock."""
        directory = status_dir(self.data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        fresh = ReceiverStatus(subsystem, endpoint=PUSH_ENDPOINT, kind=PUSH)
        with open(directory / f".{fresh.key}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            status = read_status(self.data_dir, fresh.key) or fresh
            status.heartbeat_utc = time.time()
            try:
                yield status
            finally:
                try:
                    write_status(self.data_dir, status)
                except OSError as error:  # a full disk must not turn a stored push into an error
                    log.warning("%s: cannot write the push status: %s", subsystem, error)


def _whole_number(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise PushRefused(400, f"{name}: must be a whole number, got {text!r}", name) from None


def _seconds(name: str, text: str) -> float:
    try:
        seconds = float(text.strip())
    except ValueError:
        raise PushRefused(400, f"{name}: must be unix seconds, got {text!r}", name) from None
    if not math.isfinite(seconds):
        raise PushRefused(400, f"{name}: must be unix seconds, got {text!r}", name)
    return seconds
