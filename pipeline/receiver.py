"""Receiver: asks one HLT merger for its objects on a period and stores every good reply as a snapshot.

A ZMQ REQ socket in the "lazy pirate" pattern, like the original zmqReceive: a request that gets no answer
within the timeout closes and re-creates the socket (a REQ socket is stuck after a lost reply), with a
growing back-off so a dead merger is not hammered. The schema (ROOTSTRI) is asked for on the first
request and again after any decode failure (not after unsupported classes, which a schema cannot cure);
the streamers it brings are kept on disk. Nothing a merger sends can stop the loop: bad blocks and
objects are counted and logged, and every reply, stored or not, updates `last_run`.

The status file is rewritten at least every HEARTBEAT_EVERY_S while the process lives (waits for a
reply and pauses between requests are cut into slices), so its heartbeat means "process alive" and
nothing more; `pipeline.liveness` reads the merger's and the data's state from the other fields.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import zmq

from pipeline.ingest import Outcome, store_reply
from pipeline.status import HEARTBEAT_EVERY_S, ReceiverStatus, read_status, write_status
from pipeline.store import SnapshotStore
from pipeline.temp_cleanup import remove_stale_temp_files
from pipeline.wire.class_version import reply_th1_version
from pipeline.wire.compression import MAX_UNCOMPRESSED_BYTES
from pipeline.wire.messages import Reply, build_request, decode_reply
from pipeline.wire.tmessage import StreamerContext

__all__ = ["Outcome", "Receiver"]

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
_NOT_CONTINUED = ("pid",)
# Largest frame accepted from a merger: ZMQ drops the connection of a peer that sends more, before
# the frame is held in memory. Real replies are a few MB per object; this matches the decompressed cap.
MAX_FRAME_BYTES = MAX_UNCOMPRESSED_BYTES


def _continued_status(
    data_dir: Path, subsystem: str, endpoint: str, period_s: float, timeout_s: float
) -> ReceiverStatus:
    """A new status whose counters continue those of the subsystem's previous receiver process.

    A receiver restarted after a crash (or by the supervisor) would otherwise start its counters from
    zero, and the status panel would show the requests, rejections and snapshots of the last process
    only. Liveness fields (pid, start, heartbeat, last error) are this process's own. What describes the
    subsystem's data rather than the process continues too: the last snapshot, the recent snapshot times
    (and since when they are complete), and the last run with when it was first heard, so a receiver that
    restarts in a loop neither resets the 5-minute rate nor gets a fresh "new run" grace each time.
    """
    status = ReceiverStatus(subsystem=subsystem, endpoint=endpoint, period_s=period_s, timeout_s=timeout_s)
    previous = read_status(data_dir, subsystem)  # by key: never the push receiver of the same subsystem
    if previous is None:
        return status
    for spec in fields(ReceiverStatus):
        value = getattr(previous, spec.name)
        if spec.default == 0 and spec.name not in _NOT_CONTINUED and type(value) is int and value >= 0:
            setattr(status, spec.name, value)
    status.last_snapshot_utc = previous.last_snapshot_utc
    status.recent_snapshots_utc = list(previous.recent_snapshots_utc)
    status.recent_since_utc = previous.rate_since_utc
    status.last_run, status.run_since_utc = previous.last_run, previous.run_since_utc
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
        self.status = _continued_status(self.data_dir, subsystem, endpoint, period_s, timeout_s)
        self._need_schema = True
        self._zmq = zmq_context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        build_request(select)  # refuse a bad selection at start-up, not at the first request

    def _remove_stale_temp_files(self) -> None:
        """Temp files of writers that were killed mid-write: invisible to readers, but they take space."""
        remove_stale_temp_files(self.data_dir)

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
        if self.status.consecutive_timeouts <= 1:
            return 0.0
        return min(MAX_BACKOFF_S, self.timeout_s * 2 ** (self.status.consecutive_timeouts - 2))

    def beat(self) -> None:
        """Write the heartbeat (and the counters with it): the process is alive."""
        self.status.heartbeat_utc = time.time()
        self.status.period_s, self.status.timeout_s = self.period_s, self.timeout_s
        self._save_status()

    def request_once(self) -> Outcome:
        self.beat()
        socket = self._connect()
        schema = self._need_schema
        socket.send_multipart(build_request(self.select, self.reset, schema))
        self.status.requests += 1
        if not self._wait_for_reply(socket):
            return self._on_timeout()
        frames = socket.recv_multipart()
        self.status.consecutive_timeouts = 0
        self.status.replies += 1
        self.status.last_reply_utc = self.status.heartbeat_utc = time.time()
        error_before = self.status.last_error_utc
        reply = decode_reply(frames, self.streamers)
        outcome = self._handle_reply(reply, schema_requested=schema, th1_version=reply_th1_version(frames))
        if self.status.last_error and self.status.last_error_utc == error_before:
            # A whole cycle without a new error: the last one is history (shown as such), not news.
            self.status.last_error_cleared_utc = self.status.last_error_cleared_utc or time.time()
        self.beat()  # after the store, which may take a while: the file's heartbeat is its write time
        return outcome

    def _wait_for_reply(self, socket: zmq.Socket) -> bool:
        """Poll up to the timeout, beating the heart between slices: waiting is being alive."""
        deadline = time.monotonic() + self.timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            if socket.poll(max(1, int(min(remaining, HEARTBEAT_EVERY_S) * 1000)), zmq.POLLIN):
                return True
            self.beat()
        return bool(socket.poll(0, zmq.POLLIN))

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Pause between requests (until `stop`), beating the heart between slices."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            if stop.wait(min(remaining, HEARTBEAT_EVERY_S)):
                return
            self.beat()

    def _on_timeout(self) -> Outcome:
        self.status.timeouts += 1
        self.status.socket_recreations += 1
        self.status.consecutive_timeouts += 1
        self.status.heartbeat_utc = time.time()
        self.status.record_error(f"no reply within {self.timeout_s:g} s from {self.endpoint}")
        log.warning("%s: %s; re-creating the socket", self.subsystem, self.status.last_error)
        self.close()  # a REQ socket that lost its reply can never send again
        self._save_status()
        return Outcome.TIMEOUT

    def _handle_reply(self, reply: Reply, schema_requested: bool, th1_version: int | None = None) -> Outcome:
        if reply.streamer_blocks:
            self._save_streamers()
        # Ask for the schema again after any decode failure; a schema reply that decoded cleanly ends it.
        self._need_schema = reply.needs_schema or (schema_requested and not reply.has_info)
        # What is stored and what is counted is decided where every source decides it.
        stored = store_reply(self.store, self.status, reply, datetime.now(UTC), self.reset, th1_version)
        return stored.outcome

    def _save_streamers(self) -> None:
        try:
            self.streamers.save(self.streamer_dir)
        except OSError as error:  # the streamers stay in memory; the next schema reply tries again
            self.status.record_error(f"cannot save streamers in {self.streamer_dir}: {error}")
            log.error("%s: %s", self.subsystem, self.status.last_error)

    def _request_guarded(self) -> Outcome:
        """`request_once`, where a bug met on the way costs that request, never the receive loop."""
        try:
            return self.request_once()
        except Exception as error:
            log.exception("%s: unexpected failure; the socket is re-created", self.subsystem)
            self.status.record_error(f"unexpected failure: {type(error).__name__}: {error}")
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
                    self.wait(stop, self.backoff_s)  # the poll itself already waited timeout_s
                else:
                    self.wait(stop, max(0.0, self.period_s - (time.monotonic() - started)))
        finally:
            self.close()
