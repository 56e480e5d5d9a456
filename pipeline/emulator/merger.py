"""A ZeroMQ REP server that answers receivers like the HLT's ZMQROOTmerger (PROTOCOL.md 2, 4, 5).

One request in, one reply out, always: the first block's CONFIG options (`-select`, `-unselect`,
`-list`, `-ResetOnRequest`, `-SchemaOnRequest`, all one-shot) choose what is sent; the INFO block is
always there; objects follow sorted byte-wise by name, as uncompressed TMessages. A malformed request
is logged, counted and still answered (INFO only), because a REP socket that does not reply is stuck.

Objects come from an `ObjectSource`: synthetic detectors on a run clock (`SyntheticSource`), or the
objects of a ROOT file replayed byte for byte with their original class versions (`ReplaySource`).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol

import zmq

from pipeline.emulator.runs import Clock, EmulatorConfig, SyntheticRuns
from pipeline.wire.messages import ProtocolError, RequestOptions, build_reply, format_info, parse_request
from pipeline.wire.rootfile import read_file_objects
from pipeline.wire.tmessage import encode_tmessage, streamer_block_for_encoded_histograms

log = logging.getLogger(__name__)

# alizmq_socket_init's high-water marks; linger 0 so stop() never waits on an unsent reply.
_HIGH_WATER_MARK = 10
_START_TIMEOUT_S = 5.0


class ObjectSource(Protocol):
    """What a merger holds: run information and named objects, ready for the wire."""

    lock: AbstractContextManager[Any]

    def refresh(self) -> None:
        """Bring the objects up to date (e.g. advance the run clock)."""

    def info(self) -> str: ...

    def names(self) -> list[str]: ...

    def encoded(self, name: str) -> bytes:
        """The object as an uncompressed TMessage with a little-endian length word."""

    def streamer_block(self, names: Sequence[str]) -> bytes:
        """The ROOTSTRI payload (TObjArray of TStreamerInfo) describing these objects."""

    def erase(self, names: Iterable[str]) -> None: ...


class SyntheticSource:
    """Objects of `SyntheticRuns`, encoded once per change of each object."""

    def __init__(self, runs: SyntheticRuns) -> None:
        self.runs = runs
        self.lock = runs.lock
        self._encoded: dict[str, tuple[int, bytes]] = {}
        self._streamer_block: bytes | None = None

    def refresh(self) -> None:
        self.runs.advance()

    def info(self) -> str:
        return self.runs.info()

    def names(self) -> list[str]:
        return self.runs.names()

    def encoded(self, name: str) -> bytes:
        version = self.runs.object_version(name)
        cached = self._encoded.get(name)
        if cached is not None and cached[0] == version:
            return cached[1]
        payload = encode_tmessage(self.runs.snapshot([name])[name])
        self._encoded[name] = (version, payload)
        return payload

    def streamer_block(self, names: Sequence[str]) -> bytes:
        # One block covers every class the encoder writes (TH1/2/3 D/F/I and their bases).
        if self._streamer_block is None:
            self._streamer_block = streamer_block_for_encoded_histograms()
        return self._streamer_block

    def erase(self, names: Iterable[str]) -> None:
        self.runs.erase(names)


class ReplaySource:
    """The objects of one ROOT file, as their stored bytes wrapped in TMessages (class versions kept).

    Objects in folders are served under their full path ("TPCQA/h"), which also becomes their fName:
    that is the name the merger had before a writer turned the "/" into a folder (as our export does).
    The INFO string is fixed; `-ResetOnRequest` erases replayed objects for good, as a real merger
    would until new data arrived.
    """

    def __init__(
        self,
        path: Path,
        run_number: int,
        hlt_mode: str = "B",
        beam_type: str = "pp",
        schema_from_file: bool = True,
    ) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self._info = format_info(run_number, hlt_mode, beam_type)
        found = read_file_objects(self.path, with_streamers=schema_from_file)
        self._objects: dict[str, bytes] = found.objects
        self.class_names: dict[str, str] = found.class_names
        # The file's own streamers describe the stored class versions (e.g. Run-2 TH1 v7); without
        # them a receiver cannot decode the replayed objects, which is what the schema path tests.
        self._streamer_block = found.streamer_block
        log.info("replaying %d objects from %s", len(self._objects), self.path)

    def refresh(self) -> None:
        pass

    def info(self) -> str:
        return self._info

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self._objects, key=str.encode)

    def encoded(self, name: str) -> bytes:
        return self._objects[name]

    def streamer_block(self, names: Sequence[str]) -> bytes:
        return self._streamer_block

    def erase(self, names: Iterable[str]) -> None:
        with self.lock:
            for name in names:
                self._objects.pop(name, None)


def select_names(names: Iterable[str], options: RequestOptions) -> list[str]:
    """The merger's object filter, sorted byte-wise.

    `-select`/`-unselect` are unanchored regular expressions (TPRegexp::Match == re.search);
    `-list` keeps an object only if its name occurs in the list string (`list.find(name) != npos`).
    """
    select = re.compile(options.select) if options.select else None
    unselect = re.compile(options.unselect) if options.unselect else None
    kept = [
        name
        for name in names
        if (select is None or select.search(name))
        and (unselect is None or not unselect.search(name))
        and (options.list is None or name in options.list)
    ]
    return sorted(kept, key=str.encode)


@dataclass(frozen=True)
class MergerCounters:
    """What the server has done, for the status panel and for tests."""

    requests: int = 0
    malformed_requests: int = 0
    failed_requests: int = 0
    objects_sent: int = 0
    bytes_sent: int = 0
    resets: int = 0
    schema_replies: int = 0
    last_request_utc: float | None = None


class MergerEmulator:
    """ZMQROOTmerger's monitoring (REP) socket, in a background thread or in the foreground.

    `bind` may use port `*` or `0` for an ephemeral port; after `start()` the bound address is in
    `endpoint`. Use as a context manager to start and stop around a block.
    """

    def __init__(
        self,
        bind: str = "tcp://127.0.0.1:*",
        subsystems: Sequence[str] = ("EMC", "TPC", "HLT"),
        config: EmulatorConfig | None = None,
        now: Clock = time.time,
        source: ObjectSource | None = None,
        poll_interval_s: float = 0.05,
    ) -> None:
        self.bind_address = _normalise_bind(bind)
        self.endpoint = self.bind_address
        self.runs: SyntheticRuns | None = None
        if source is None:
            self.runs = SyntheticRuns(subsystems, config or EmulatorConfig(), now=now)
            source = SyntheticSource(self.runs)
        self.source: ObjectSource = source
        self.poll_interval_s = poll_interval_s
        self._now = now
        self._counters = MergerCounters()
        self._counters_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bind_error: BaseException | None = None

    @classmethod
    def from_root_file(
        cls,
        path: Path | str,
        bind: str = "tcp://127.0.0.1:*",
        run_number: int = 123456,
        hlt_mode: str = "B",
        beam_type: str = "pp",
        schema_from_file: bool = True,
        poll_interval_s: float = 0.05,
    ) -> MergerEmulator:
        """Serve the objects of a ROOT file unchanged (e.g. an archived Run-2 receiver file)."""
        source = ReplaySource(Path(path), run_number, hlt_mode, beam_type, schema_from_file)
        return cls(bind=bind, source=source, poll_interval_s=poll_interval_s)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> MergerEmulator:
        """Bind and serve in a daemon thread; returns once bound (raises if binding failed)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("emulator already running")
        self._stop.clear()
        self._bind_error = None
        bound = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(bound,), name=f"merger-emulator {self.bind_address}", daemon=True
        )
        self._thread.start()
        if not bound.wait(_START_TIMEOUT_S):
            self.stop()
            raise TimeoutError(f"emulator did not bind {self.bind_address} within {_START_TIMEOUT_S} s")
        if self._bind_error is not None:
            self._thread.join(_START_TIMEOUT_S)
            raise self._bind_error
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving; prompt (one poll interval), safe to call twice."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("emulator thread did not stop within %g s", timeout_s)
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` (e.g. from a signal handler). Raises on bind errors."""
        self._stop.clear()
        self._bind_error = None
        self._serve(None)
        if self._bind_error is not None:
            raise self._bind_error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> MergerEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def counters(self) -> MergerCounters:
        with self._counters_lock:
            return self._counters

    def _count(self, **increments: Any) -> None:
        with self._counters_lock:
            current = self._counters
            changes = {k: getattr(current, k) + v for k, v in increments.items() if k != "last_request_utc"}
            if "last_request_utc" in increments:
                changes["last_request_utc"] = increments["last_request_utc"]
            self._counters = replace(current, **changes)

    # --- serving -----------------------------------------------------------------------------

    def _serve(self, bound: threading.Event | None) -> None:
        context = zmq.Context()
        socket = context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, _HIGH_WATER_MARK)
        socket.setsockopt(zmq.SNDHWM, _HIGH_WATER_MARK)
        try:
            socket.bind(self.bind_address)
        except zmq.ZMQError as error:
            self._bind_error = OSError(f"cannot bind {self.bind_address}: {error}")
            socket.close(linger=0)
            context.term()
            if bound is not None:
                bound.set()
            return
        self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        log.info("merger emulator serving on %s", self.endpoint)
        if bound is not None:
            bound.set()
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poll_ms = max(int(self.poll_interval_s * 1000), 1)
        try:
            while not self._stop.is_set():
                if not dict(poller.poll(poll_ms)).get(socket):
                    continue
                frames = socket.recv_multipart()
                socket.send_multipart(self.reply_to(frames), copy=False)
        finally:
            socket.close(linger=0)
            context.term()
            log.info("merger emulator on %s stopped", self.endpoint)

    def reply_to(self, frames: list[bytes]) -> list[bytes]:
        """The reply to one request; never raises (a REP socket must always answer)."""
        self._count(requests=1, last_request_utc=self._now())
        try:
            options = parse_request(frames)
        except ProtocolError as error:
            log.warning("malformed request (%d frames): %s", len(frames), error)
            self._count(malformed_requests=1)
            return self._info_only_reply()
        if options.ignored:
            # Control sequences such as -reset are merger reconfiguration; an emulator refuses them.
            log.info("ignoring request options %s", " ".join(options.ignored))
        try:
            with self.source.lock:
                self.source.refresh()
                info = self.source.info()
                names = select_names(self.source.names(), options)
                objects = [(name, self.source.encoded(name)) for name in names]
                streamer_block = self.source.streamer_block(names) if options.schema else None
                if options.reset and names:
                    self.source.erase(names)
        except Exception:
            log.exception("failed to build a reply; answering with INFO only")
            self._count(failed_requests=1)
            return self._info_only_reply()
        reply = build_reply(info, objects, streamer_block)
        self._count(
            objects_sent=len(objects),
            bytes_sent=sum(len(frame) for frame in reply),
            resets=int(options.reset),
            schema_replies=int(options.schema),
        )
        return reply

    def _info_only_reply(self) -> list[bytes]:
        try:
            with self.source.lock:
                self.source.refresh()
                info = self.source.info()
        except Exception:
            log.exception("cannot read the run information; answering run=0")
            info = "run=0"
        return build_reply(info, [], None)


def _normalise_bind(bind: str) -> str:
    # ZeroMQ spells "any free port" as "*"; accept the socket-API spelling ":0" too.
    return re.sub(r":0$", ":*", bind.strip())


def run_emulator_cli(bind: str, subsystems: list[str], replay: Path | None, settings: Any) -> int:
    """`python -m pipeline emulator`: serve until SIGINT/SIGTERM; 0 on a clean stop.

    Synthetic runs follow the settings' `emulator_*` fields; with `replay`, the file's objects are
    served under run `settings.emulator_first_run`.
    """
    try:
        if replay is not None:
            emulator = MergerEmulator.from_root_file(
                replay, bind=bind, run_number=settings.emulator_first_run
            )
        else:
            emulator = MergerEmulator(bind, subsystems, EmulatorConfig.from_settings(settings))
    except (KeyError, ValueError, OSError) as error:
        log.error("cannot start the emulator: %s", error.args[0] if error.args else error)
        return 2
    handled = (signal.SIGINT, signal.SIGTERM)
    previous: dict[int, Callable[..., Any] | int | None] = {}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the emulator", signum)
        emulator.stop()

    if threading.current_thread() is threading.main_thread():
        for signum in handled:
            previous[signum] = signal.signal(signum, request_stop)
    try:
        if emulator.runs is not None:
            config = emulator.runs.config
            log.info(
                "emulating %s: runs of %g s from %d, gap %g s, step %g s",
                ",".join(emulator.runs.detectors),
                config.run_length_s,
                config.first_run,
                config.run_gap_s,
                config.step_s,
            )
            log.info("injected faults: %s", config.faults)
        emulator.serve_forever()
    except OSError as error:
        log.error("%s", error)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
