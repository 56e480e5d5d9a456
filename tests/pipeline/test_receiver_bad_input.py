"""The receiver against a hand-made merger (a REP socket on tcp://127.0.0.1) that sends bad replies.

Whatever a merger sends, the receiver stores the good objects, counts and names what it refused,
asks for the schema again only when a schema could help, and keeps running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import zmq
from uproot.writing.identify import to_TObjString

from pipeline.histogram import Histogram
from pipeline.receiver import Outcome, Receiver
from pipeline.status import read_all_status
from pipeline.store import SnapshotStore
from pipeline.wire import header
from pipeline.wire.messages import build_reply, parse_request
from pipeline.wire.tmessage import encode_model, encode_tmessage, wrap_object_bytes
from tests.pipeline.test_wire_tmessage import profile_payload

pytestmark = pytest.mark.network

Reply = list[bytes] | Callable[[list[bytes]], list[bytes]]


class ScriptedMerger:
    """A REP socket that answers request i with replies[i] (the last one again once they run out)."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.requests: list[list[bytes]] = []
        self._stop = threading.Event()
        self._bound = threading.Event()
        self.endpoint = ""
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedMerger:
        self._thread.start()
        assert self._bound.wait(5), "scripted merger did not bind"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def schema_requests(self) -> int:
        return sum(parse_request(frames).schema for frames in self.requests)

    def _serve(self) -> None:
        context = zmq.Context()
        socket = context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind("tcp://127.0.0.1:*")
        self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._bound.set()
        try:
            while not self._stop.is_set():
                if not socket.poll(50):
                    continue
                frames = socket.recv_multipart()
                self.requests.append(frames)
                reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
                socket.send_multipart(reply(frames) if callable(reply) else reply)
        finally:
            socket.close(linger=0)
            context.term()


def histogram(name: str, scale: float = 1.0) -> Histogram:
    values = np.arange(12, dtype=float) * scale
    return Histogram(name, "TH1D", name, (np.linspace(0, 10, 11),), values, values)


def objects(*names: str) -> list[tuple[str, bytes]]:
    return [(name, encode_tmessage(histogram(name))) for name in names]


INFO = "run=500;HLT_MODE=B;BEAM_TYPE=pp"


@pytest.fixture
def receiver_factory(tmp_path) -> Iterator[Callable[[str], Receiver]]:
    made: list[Receiver] = []

    def make(endpoint: str) -> Receiver:
        receiver = Receiver(endpoint, "EMC", tmp_path, timeout_s=5.0, period_s=0.01)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


def stored(tmp_path, run: int = 500) -> dict[str, Histogram]:
    store = SnapshotStore(tmp_path)
    return store.read_snapshot(store.latest_snapshot_id(run, "EMC"))[1]


def test_a_garbage_payload_costs_one_object_not_the_reply(receiver_factory, tmp_path):
    frames = build_reply(INFO, [*objects("a_good", "c_good"), ("b_garbage", b"\x07" * 200)])
    with ScriptedMerger([frames]) as merger:
        receiver = receiver_factory(merger.endpoint)
        assert receiver.request_once() is Outcome.STORED
    assert sorted(stored(tmp_path)) == ["a_good", "c_good"]
    np.testing.assert_array_equal(stored(tmp_path)["c_good"].values_flow, np.arange(12.0))
    [status] = read_all_status(tmp_path)
    assert (status.rejected_objects, status.unsupported_objects, status.histograms_stored) == (1, 0, 2)
    assert "block 2 (ROOTTOBJ)" in status.last_error  # INFO is block 0, then a_good, then the garbage


def test_bad_framing_is_counted_and_the_receiver_keeps_going(receiver_factory, tmp_path):
    odd = [*build_reply(INFO, objects("a_good")), header.pack_topic(header.ROOTTOBJ)]  # no payload
    not_a_topic = [*build_reply(INFO, objects("a_good")), b"\x00" * 80, encode_tmessage(histogram("x"))]
    only_garbage = [b"garbage"]
    with ScriptedMerger([odd, not_a_topic, only_garbage, build_reply(INFO, objects("a_good"))]) as merger:
        receiver = receiver_factory(merger.endpoint)
        outcomes = [receiver.request_once() for _ in range(4)]
        assert merger.schema_requests == 1  # framing problems are not cured by a schema
    assert outcomes == [Outcome.STORED, Outcome.STORED, Outcome.SKIPPED, Outcome.STORED]
    [status] = read_all_status(tmp_path)
    # odd: 1 trailing header; not_a_topic: 1 block; only_garbage: its lone frame has no payload
    assert (status.replies, status.rejected_objects, status.snapshots_stored) == (4, 3, 3)
    assert SnapshotStore(tmp_path).count_snapshots() == 3
    assert sorted(stored(tmp_path)) == ["a_good"]


def test_duplicate_names_keep_the_first_and_store_the_rest(receiver_factory, tmp_path):
    payloads = [
        ("dup", encode_tmessage(histogram("dup", scale=1.0))),
        ("dup", encode_tmessage(histogram("dup", scale=2.0))),
        *objects("other"),
    ]
    with ScriptedMerger([build_reply(INFO, payloads)]) as merger:
        receiver = receiver_factory(merger.endpoint)
        assert receiver.request_once() is Outcome.STORED
    kept = stored(tmp_path)
    assert sorted(kept) == ["dup", "other"]
    np.testing.assert_array_equal(kept["dup"].values_flow, np.arange(12.0))  # the first one
    [status] = read_all_status(tmp_path)
    assert status.rejected_objects == 1 and "'dup'" in status.last_error


def test_unsupported_classes_are_counted_without_asking_for_the_schema_again(receiver_factory, tmp_path):
    payloads = [
        ("a_profile", profile_payload(name="a_profile")),
        ("b_string", encode_model(to_TObjString("a note"))),
        ("c_canvas", wrap_object_bytes("TCanvas", b"\xff" * 64)),
        ("d_graph", wrap_object_bytes("TGraph", b"\xff" * 64)),
        *objects("e_good"),
    ]
    with ScriptedMerger([build_reply(INFO, payloads)]) as merger:
        receiver = receiver_factory(merger.endpoint)
        assert [receiver.request_once() for _ in range(3)] == [Outcome.STORED] * 3
        assert merger.schema_requests == 1  # only the first request, as for a clean reply
    assert sorted(stored(tmp_path)) == ["e_good"]
    [status] = read_all_status(tmp_path)
    assert (status.rejected_objects, status.unsupported_objects) == (12, 12)


@pytest.mark.parametrize("mode", ["B/../x", "B\n", "Ä"])
def test_a_bad_hlt_mode_is_stored_as_unknown(receiver_factory, tmp_path, mode):
    with ScriptedMerger([build_reply(f"run=501;HLT_MODE={mode};BEAM_TYPE=pp", objects("a"))]) as merger:
        receiver = receiver_factory(merger.endpoint)
        assert receiver.request_once() is Outcome.STORED
    store = SnapshotStore(tmp_path)
    assert store.snapshot_meta(store.latest_snapshot_id(501, "EMC")).hlt_mode == "U"


def test_a_negative_run_is_skipped_like_run_zero(receiver_factory, tmp_path):
    with ScriptedMerger([build_reply("run=-5;HLT_MODE=B", objects("a"))]) as merger:
        receiver = receiver_factory(merger.endpoint)
        assert receiver.request_once() is Outcome.SKIPPED
    assert SnapshotStore(tmp_path).count_snapshots() == 0
    [status] = read_all_status(tmp_path)
    assert (status.skipped_replies, status.last_run, status.last_error) == (1, -5, None)
