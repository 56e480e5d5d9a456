"""Receiver: asks one HLT merger for its objects on a period and stores every good reply as a snapshot.

A ZMQ REQ socket in the "lazy pirate" pattern, like the original zmqReceive: a request that gets no answer
within the timeout closes and re-creates the socket (a REQ socket is stuck after a lost reply), with a
growing back-off so a dead merger is not hammered. The schema (ROOTSTRI) is asked for on the first
request and again after any decode failure (not after unsupported classes, which a schema cannot cure);
the streamers it brings are kept on disk. Nothing a merger sends can stop the loop: bad blocks and
objects are counted and logged, and every reply, stored or not, updates `last_run`.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import zmq

from pipeline.histogram import Histogram
from pipeline.status import ReceiverStatus, read_all_status, write_status
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.store_schema import HLT_MODE_PATTERN, MAX_RUN, histograms_to_table
from pipeline.wire.compression import MAX_UNCOMPRESSED_BYTES
from pipeline.wire.messages import Reply, build_request, decode_reply
from pipeline.wire.tmessage import StreamerContext

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
_NOT_CONTINUED = ("pid",)
# Largest frame accepted from a merger: ZMQ drops the connection of a peer that sends more, before
# the frame is held in memory. Real replies are a few MB per object; this matches the decompressed cap.
MAX_FRAME_BYTES = MAX_UNCOMPRESSED_BYTES


class Outcome(enum.Enum):
    STORED = "stored"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"  # run <= 0 or no objects: nothing to store, as in the original
    FAILED = "failed"  # the store refused the snapshot


def _continued_status(data_dir: Path, subsystem: str, endpoint: str) -> ReceiverStatus:
    """A new status whose counters continue those of the subsystem's previous receiver process.

    A receiver restarted after a crash (or by the supervisor) would otherwise start its counters from
    zero, and the status panel would show the requests, rejections and snapshots of the last process
    only. Liveness fields (pid, start, heartbeat, last error) are this process's own.
    """
    status = ReceiverStatus(subsystem=subsystem, endpoint=endpoint)
    previous = next((s for s in read_all_status(data_dir) if s.subsystem == subsystem), None)
    if previous is None:
        return status
    for spec in fields(ReceiverStatus):
        value = getattr(previous, spec.name)
        if spec.default == 0 and spec.name not in _NOT_CONTINUED and type(value) is int and value >= 0:
            setattr(status, spec.name, value)
    status.last_snapshot_utc = previous.last_snapshot_utc
    return status


class Receiver:
    """One subsystem's receiver. `request_once` is one request/reply cycle; `run` loops until stopped."""

    def __init__(
        self,
        endpoint: str,
        subsystem: str,
        data_dir: Path,
        select: str | None = None,
        period_s: float = 60.0,
        timeout_s: float = 10.0,
        reset: bool = False,
        zmq_context: zmq.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.subsystem = subsystem
        self.data_dir = Path(data_dir)
        self.select = select
        self.period_s = period_s
        self.timeout_s = timeout_s
        self.reset = reset
        self.store = SnapshotStore(self.data_dir)
        self._remove_stale_temp_files()
        self.streamer_dir = self.data_dir / "streamers"
        self.streamers = StreamerContext.load(self.streamer_dir)
        self.status = _continued_status(self.data_dir, subsystem, endpoint)
        self._need_schema = True
        self._consecutive_timeouts = 0
        self._zmq = zmq_context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        build_request(select)  # refuse a bad selection at start-up, not at the first request

    def _remove_stale_temp_files(self) -> None:
        """Temp files of writers that were killed mid-write: invisible to readers, but they take space."""
        try:
            removed = self.store.remove_stale_temp_files()
        except OSError as error:  # an unreadable folder must not stop the receiver from starting
            log.warning("%s: cannot clean temp files: %s", self.subsystem, error)
            return
        if removed:
            log.info("%s: removed %d temp files of killed writers", self.subsystem, removed)

    def _connect(self) -> zmq.Socket:
        if self._socket is None:
            socket = self._zmq.socket(zmq.REQ)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.RCVHWM, 10)
            socket.setsockopt(zmq.SNDHWM, 10)
            socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
            socket.connect(self.endpoint)
            self._socket = socket
        return self._socket

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _save_status(self) -> None:
        try:
            write_status(self.data_dir, self.status)
        except OSError as error:  # a full disk must not kill the receive loop
            log.warning("%s: cannot write status: %s", self.subsystem, error)

    @property
    def backoff_s(self) -> float:
        """Pause after consecutive timeouts: 0 after the first, then doubling up to a minute."""
        if self._consecutive_timeouts <= 1:
            return 0.0
        return min(MAX_BACKOFF_S, self.timeout_s * 2 ** (self._consecutive_timeouts - 2))

    def request_once(self) -> Outcome:
        self.status.heartbeat_utc = time.time()
        self._save_status()
        socket = self._connect()
        schema = self._need_schema
        socket.send_multipart(build_request(self.select, self.reset, schema))
        self.status.requests += 1
        if not socket.poll(int(self.timeout_s * 1000), zmq.POLLIN):
            return self._on_timeout()
        frames = socket.recv_multipart()
        self._consecutive_timeouts = 0
        self.status.replies += 1
        self.status.last_reply_utc = time.time()
        reply = decode_reply(frames, self.streamers)
        outcome = self._handle_reply(reply, schema_requested=schema)
        self._save_status()
        return outcome

    def _on_timeout(self) -> Outcome:
        self.status.timeouts += 1
        self.status.socket_recreations += 1
        self._consecutive_timeouts += 1
        self.status.last_error = f"no reply within {self.timeout_s:g} s from {self.endpoint}"
        log.warning("%s: %s; re-creating the socket", self.subsystem, self.status.last_error)
        self.close()  # a REQ socket that lost its reply can never send again
        self._save_status()
        return Outcome.TIMEOUT

    def _handle_reply(self, reply: Reply, schema_requested: bool) -> Outcome:
        if reply.streamer_blocks:
            self._save_streamers()
        self._count_rejected(reply)
        # Ask for the schema again after any decode failure; a schema reply that decoded cleanly ends it.
        self._need_schema = reply.needs_schema or (schema_requested and not reply.has_info)
        # Every reply says which run the merger is on, run 0 included: the processing takes "a live
        # receiver still reports this run" as "the run is ongoing", so a stale value would keep a
        # finished run ongoing for as long as its receiver lives.
        self.status.last_run = reply.run
        histograms = self._first_of_each_name(reply)
        if reply.run <= 0 or reply.run > MAX_RUN or not histograms:
            if reply.run < 0:
                log.warning("%s: negative run number %d in INFO, reply skipped", self.subsystem, reply.run)
            elif reply.run > MAX_RUN:  # a corrupt INFO: the store's int64 column cannot hold it
                self.status.last_error = f"run number {reply.run} in INFO is beyond {MAX_RUN}, reply skipped"
                log.warning("%s: %s", self.subsystem, self.status.last_error)
            self.status.skipped_replies += 1
            log.info("%s: nothing to store (run %d, %d objects)", self.subsystem, reply.run, len(histograms))
            return Outcome.SKIPPED
        meta = SnapshotMeta(
            run=reply.run,
            subsystem=self.subsystem,
            snapshot_time_utc=datetime.now(UTC),
            hlt_mode=self._hlt_mode(reply),
            beam_type=reply.beam_type,
            merger_reset=self.reset,
        )
        try:
            self.store.write_snapshot(meta, histograms)
        except OSError as error:  # disk full, folder unwritable: nothing of the reply can be stored
            self.status.last_error = f"store failed: {error}"
            log.error("%s: %s", self.subsystem, self.status.last_error)
            return Outcome.FAILED
        except Exception as error:  # the data: find the objects the store refuses and store the rest
            log.warning(
                "%s: store refused the reply (%s); checking its objects one by one", self.subsystem, error
            )
            histograms = self._storable(meta, histograms)
            if not histograms:
                return Outcome.FAILED
            try:
                self.store.write_snapshot(meta, histograms)
            except Exception as second_error:
                self.status.last_error = f"store failed: {type(second_error).__name__}: {second_error}"
                log.error("%s: %s", self.subsystem, self.status.last_error)
                return Outcome.FAILED
        self.status.snapshots_stored += 1
        self.status.histograms_stored += len(histograms)
        self.status.last_snapshot_utc = meta.snapshot_time_utc.timestamp()
        return Outcome.STORED

    def _storable(self, meta: SnapshotMeta, histograms: list[Histogram]) -> list[Histogram]:
        """The histograms the store can convert, each tried alone; the others rejected and counted.

        Only runs after the store refused a whole reply: one object it cannot hold must not cost the
        others (as a title that was not UTF-8 once did, on every request).
        """
        kept = []
        for histogram in histograms:
            try:
                histograms_to_table("check", meta, [histogram])
            except Exception as error:
                self.status.rejected_objects += 1
                self.status.last_error = (
                    f"store cannot hold {histogram.name!r}: {type(error).__name__}: {error}"
                )
                log.warning("%s: rejected: %s", self.subsystem, self.status.last_error)
            else:
                kept.append(histogram)
        return kept

    def _save_streamers(self) -> None:
        try:
            self.streamers.save(self.streamer_dir)
        except OSError as error:  # the streamers stay in memory; the next schema reply tries again
            self.status.last_error = f"cannot save streamers in {self.streamer_dir}: {error}"
            log.error("%s: %s", self.subsystem, self.status.last_error)

    def _count_rejected(self, reply: Reply) -> None:
        rejected = reply.rejected
        for reason in rejected:
            log.warning("%s: rejected: %s", self.subsystem, reason)
        self.status.rejected_objects += len(rejected)
        self.status.unsupported_objects += len(reply.unsupported)
        if rejected:
            self.status.last_error = rejected[-1]

    def _first_of_each_name(self, reply: Reply) -> list[Histogram]:
        """The reply's histograms without repeated names (the first is kept, the others rejected).

        One snapshot holds one histogram per name; storing none because of one repeat would lose
        the whole reply.
        """
        kept: dict[str, Histogram] = {}
        for histogram in reply.histograms:
            if histogram.name not in kept:
                kept[histogram.name] = histogram
                continue
            self.status.rejected_objects += 1
            self.status.last_error = f"duplicate object name {histogram.name!r} in one reply, kept the first"
            log.warning("%s: rejected: %s", self.subsystem, self.status.last_error)
        return list(kept.values())

    def _hlt_mode(self, reply: Reply) -> str:
        """The reply's HLT mode, or "U" (unknown) for one the store cannot name a file after."""
        mode = reply.hlt_mode
        if HLT_MODE_PATTERN.fullmatch(mode):  # fullmatch: "$" alone would let "B\n" through
            return mode
        log.warning("%s: HLT_MODE %r in INFO is not alphanumeric, storing as U", self.subsystem, mode)
        return "U"

    def _request_guarded(self) -> Outcome:
        """`request_once`, where a bug met on the way costs that request, never the receive loop."""
        try:
            return self.request_once()
        except Exception as error:
            log.exception("%s: unexpected failure; the socket is re-created", self.subsystem)
            self.status.last_error = f"unexpected failure: {type(error).__name__}: {error}"
            self.close()  # the REQ socket may be waiting for a reply that will never be read
            self._save_status()
            return Outcome.FAILED

    def run(self, stop: threading.Event, max_requests: int | None = None) -> None:
        """Request every `period_s` (or after the back-off) until `stop` is set."""
        count = 0
        try:
            while not stop.is_set() and (max_requests is None or count < max_requests):
                started = time.monotonic()
                outcome = self._request_guarded()
                count += 1
                if outcome is Outcome.TIMEOUT:
                    stop.wait(self.backoff_s)  # the poll itself already waited timeout_s
                else:
                    stop.wait(max(0.0, self.period_s - (time.monotonic() - started)))
        finally:
            self.close()
