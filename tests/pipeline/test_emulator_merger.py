"""The merger emulator over tcp://127.0.0.1, spoken to by a plain pyzmq REQ socket as zmqReceive does."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uproot
import zmq

from pipeline.emulator import EmulatorConfig, MergerEmulator
from pipeline.emulator.merger import run_emulator_cli, select_names
from pipeline.settings import Settings
from pipeline.wire import header
from pipeline.wire.header import parse_topic
from pipeline.wire.messages import Reply, RequestOptions, build_request, decode_reply
from pipeline.wire.tmessage import StreamerContext
from tests.clocks import ManualClock
from tests.ports import free_tcp_port

pytestmark = pytest.mark.network

ORIGIN = 1_700_000_000.0
TIMEOUT_MS = 5000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(ORIGIN)


@pytest.fixture
def emulator(clock):
    config = EmulatorConfig(start_time_utc=ORIGIN, step_s=1.0, run_length_s=10.0, run_gap_s=5.0, seed=3)
    with MergerEmulator("tcp://127.0.0.1:*", ("EMC", "TPC", "HLT"), config, now=clock) as running:
        yield running


def exchange(endpoint: str, frames: list[bytes]) -> list[bytes]:
    """One REQ/REP round trip with a bounded wait."""
    context = zmq.Context.instance()
    requester = context.socket(zmq.REQ)
    requester.setsockopt(zmq.LINGER, 0)
    try:
        requester.connect(endpoint)
        requester.send_multipart(frames)
        assert requester.poll(TIMEOUT_MS), "no reply within the timeout"
        return requester.recv_multipart()
    finally:
        requester.close(linger=0)


def request(emulator: MergerEmulator, context: StreamerContext | None = None, **options) -> Reply:
    frames = exchange(emulator.endpoint, build_request(**options))
    reply = decode_reply(frames, context or StreamerContext())
    assert reply.has_info, "the INFO block is always present"
    assert reply.errors == []
    return reply


def config_frames(options: bytes) -> list[bytes]:
    template = build_request()
    return [template[0], options, template[2], b""]


def names_of(reply: Reply) -> list[str]:
    return [h.name for h in reply.histograms]


def block_ids(frames: list[bytes]) -> list[bytes]:
    return [parse_topic(frames[i]).data_type for i in range(0, len(frames), 2)]


def test_reply_layout_info_and_sorted_objects(emulator, clock):
    clock.time_utc = ORIGIN + 3.5
    frames = exchange(emulator.endpoint, build_request(select="FastORL0"))
    ids = block_ids(frames)
    assert ids[0] == header.INFO and set(ids[1:]) == {header.ROOTTOBJ}
    assert frames[1] == b"run=300000;HLT_MODE=B;BEAM_TYPE=pp"
    reply = decode_reply(frames, StreamerContext())
    names = names_of(reply)
    assert names == sorted(names, key=str.encode) and len(names) == len(ids) - 1
    assert (reply.run, reply.hlt_mode, reply.beam_type) == (300000, "B", "pp")


def test_select_is_an_unanchored_regex(emulator, clock):
    clock.time_utc = ORIGIN + 2.5
    names = names_of(request(emulator, select="FastORL0"))
    assert "EMCTRQA_histFastORL0" in names and "EMCTRQA_histFastORL0_SM7" in names
    assert all("FastORL0" in name for name in names)
    assert names_of(request(emulator, select="^FastORL0")) == []
    assert names_of(request(emulator, select="^TPCQA/h_tpc_event_recvertex_[0-2]$")) == [
        f"TPCQA/h_tpc_event_recvertex_{v}" for v in (0, 1, 2)
    ]


def test_unselect_and_list(emulator, clock):
    clock.time_utc = ORIGIN + 2.5
    frames = exchange(emulator.endpoint, config_frames(b" -select=^EMCTRQA_histFastOR -unselect=_SM"))
    names = names_of(decode_reply(frames, StreamerContext()))
    assert names and not any("_SM" in name for name in names)
    wanted = b" -list=EMCTRQA_histEvents,fHistTPCTrackPt"
    frames = exchange(emulator.endpoint, config_frames(wanted))
    assert names_of(decode_reply(frames, StreamerContext())) == ["EMCTRQA_histEvents", "fHistTPCTrackPt"]


def test_select_names_semantics():
    names = ["b", "a/x", "abc", "ab"]
    assert select_names(names, RequestOptions()) == ["a/x", "ab", "abc", "b"]
    assert select_names(names, RequestOptions(select="b", unselect="c")) == ["ab", "b"]
    assert select_names(names, RequestOptions(list="xxabcxx")) == ["ab", "abc", "b"]  # substrings


def test_only_the_first_blocks_config_counts(emulator, clock):
    clock.time_utc = ORIGIN + 1.5
    frames = build_request(select="^fHistTPCTrackPt$") + build_request(select="^EMC")
    assert names_of(decode_reply(exchange(emulator.endpoint, frames), StreamerContext())) == [
        "fHistTPCTrackPt"
    ]


def test_served_contents_equal_the_truth(emulator, clock):
    clock.time_utc = ORIGIN + 4.2
    reply = request(emulator, select="^(EMCTRQA_histFastORL0Amp|TPCQA/h_tpc_track_neg_recvertex_0_5_7)$")
    assert len(reply.histograms) == 2
    for received in reply.histograms:
        truth = emulator.runs.filled_between(received.name, ORIGIN, clock.time_utc)
        assert received.class_name == truth.class_name
        assert np.array_equal(received.values_flow, truth.values_flow)
        assert np.array_equal(received.variances_flow, truth.variances_flow)
        assert received.entries == truth.entries
        assert all(np.allclose(a, b) for a, b in zip(received.edges, truth.edges, strict=True))


def test_reset_on_request_erases_what_was_sent(emulator, clock):
    clock.time_utc = ORIGIN + 3.5
    selection = "^fHistTPCTrackPt$"
    first = request(emulator, select=selection, reset=True)
    assert (
        first.histograms[0].entries
        == emulator.runs.filled_between("fHistTPCTrackPt", ORIGIN, ORIGIN + 3.5).entries
    )
    assert names_of(request(emulator, select=selection)) == []  # erased, and nothing new filled yet
    clock.time_utc = ORIGIN + 5.5
    second = request(emulator, select=selection).histograms[0]
    newer = emulator.runs.filled_between("fHistTPCTrackPt", ORIGIN + 3.5, ORIGIN + 5.5)
    assert np.array_equal(second.values_flow, newer.values_flow)
    # Objects not sent were not reset: they still hold the whole run.
    untouched = request(emulator, select="^fHistTPCClusterFlags$").histograms[0]
    assert (
        untouched.entries
        == emulator.runs.filled_between("fHistTPCClusterFlags", ORIGIN, ORIGIN + 5.5).entries
    )
    assert emulator.counters.resets == 1


def test_schema_block_first_and_only_when_asked(emulator, clock):
    clock.time_utc = ORIGIN + 1.5
    with_schema = exchange(emulator.endpoint, build_request(select="^fHistTPCdEdxMaxIROC$", schema=True))
    assert block_ids(with_schema) == [header.ROOTSTRI, header.INFO, header.ROOTTOBJ]
    context = StreamerContext()
    reply = decode_reply(with_schema, context)
    assert reply.streamer_blocks == 1 and reply.errors == [] and context.streamers
    without = exchange(emulator.endpoint, build_request(select="^fHistTPCdEdxMaxIROC$"))
    assert block_ids(without) == [header.INFO, header.ROOTTOBJ]  # options are one-shot
    assert emulator.counters.schema_replies == 1


def test_run_zero_between_runs_then_a_fresh_run(emulator, clock):
    clock.time_utc = ORIGIN + 9.5
    assert request(emulator, select="^EMCTRQA_histEvents$").run == 300000
    clock.time_utc = ORIGIN + 12.0
    frames = exchange(emulator.endpoint, build_request())
    assert frames[1] == b"run=0" and len(frames) == 2  # after the end-of-run reset: no objects
    clock.time_utc = ORIGIN + 16.5
    reply = request(emulator, select="^EMCTRQA_histEvents$")
    assert reply.run == 300001
    events = reply.histograms[0]
    assert (
        events.values()[0]
        == emulator.runs.filled_between("EMCTRQA_histEvents", ORIGIN + 15, ORIGIN + 16.5).values()[0]
    )


@pytest.mark.parametrize(
    "frames",
    [
        [b"hello"],
        [b"junk", b"x"],
        [header.pack_topic(header.INFO), b"not a config"],
        config_frames(b" -select=(unclosed"),
    ],
)
def test_malformed_requests_are_answered_and_counted(emulator, clock, frames):
    clock.time_utc = ORIGIN + 1.5
    reply = exchange(emulator.endpoint, frames)
    assert block_ids(reply) == [header.INFO] and reply[1].startswith(b"run=300000")
    assert emulator.counters.malformed_requests == 1
    assert names_of(request(emulator, select="^fHistTPCTrackPt$")) == ["fHistTPCTrackPt"]  # still serving
    assert emulator.counters.requests == 2


def test_bound_endpoint_is_readable_and_stop_is_prompt(clock):
    emulator = MergerEmulator("tcp://127.0.0.1:0", ("HLT",), EmulatorConfig(start_time_utc=ORIGIN), now=clock)
    emulator.start()
    try:
        assert emulator.running and not emulator.endpoint.endswith(("*", ":0"))
        with pytest.raises(OSError, match="cannot bind"):
            MergerEmulator(emulator.endpoint, ("HLT",), now=clock).start()
    finally:
        started = time.monotonic()
        emulator.stop()
    assert time.monotonic() - started < 1.0 and not emulator.running
    emulator.stop()  # idempotent


def test_replay_keeps_run2_class_versions_and_needs_the_schema(fixtures_dir: Path):
    path = fixtures_dir / "run2_root608_th1f.root"
    with MergerEmulator.from_root_file(path, run_number=123456, hlt_mode="C") as replay:
        without_schema = decode_reply(exchange(replay.endpoint, build_request()), StreamerContext())
        assert without_schema.run == 123456 and without_schema.hlt_mode == "C"
        assert without_schema.histograms == [] and without_schema.needs_schema  # TH1F v2 / TH1 v7
        reply = request(replay, schema=True, reset=True)
        (histogram,) = reply.histograms
        assert (histogram.name, histogram.title) == ("test", "testHist")
        assert histogram.values().tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0] and histogram.entries == 1
        assert names_of(request(replay)) == []  # reset erased the replayed object


def test_cli_serves_until_sigint_and_exits_zero():
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    settings = Settings(emulator_step_s=0.2, emulator_run_length_s=60.0, emulator_first_run=424242)
    seen: dict[str, bytes] = {}

    def probe_then_interrupt() -> None:
        try:
            frames = exchange(endpoint, build_request(select="^fHistTPCTrackPt$"))
            seen["info"] = frames[1]
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    prober = threading.Timer(0.3, probe_then_interrupt)
    prober.start()
    try:
        assert run_emulator_cli(endpoint, ["HLT"], None, settings) == 0
    finally:
        prober.join(TIMEOUT_MS / 1000)
    assert seen["info"] == b"run=424242;HLT_MODE=B;BEAM_TYPE=pp"


def test_cli_rejects_unknown_subsystems():
    assert run_emulator_cli("tcp://127.0.0.1:*", ["PHOS"], None, Settings()) == 2


def test_select_regex_with_backslash_and_quote_reaches_the_merger_unchanged(emulator, clock):
    # shlex turned ^EMC\d into ^EMCd (and refused an unbalanced quote): the merger splits on spaces only.
    clock.time_utc = ORIGIN + 2.5
    prefix = "TPCQA/h_tpc_event_recvertex_"
    selected = names_of(request(emulator, select=rf"^{prefix}\d$"))
    expected = [name for name in emulator.runs.names() if name.startswith(prefix) and name[-1].isdigit()]
    assert len(expected) >= 3 and selected == sorted(expected, key=str.encode)
    assert names_of(request(emulator, select='^fHist"?TPCTrackPt$')) == ["fHistTPCTrackPt"]
    assert emulator.counters.malformed_requests == 0


def test_replay_serves_objects_in_folders_under_their_full_path(tmp_path: Path):
    path = tmp_path / "folders.root"
    with uproot.recreate(path) as root_file:
        root_file["top"] = (np.array([1.0, 2.0]), np.array([0.0, 1.0, 2.0]))
        root_file["TPCQA/h_tpc"] = (np.array([4.0, 5.0, 6.0]), np.array([0.0, 1.0, 2.0, 3.0]))
        root_file["TPCQA/deeper/h_2d"] = np.histogram2d(
            [0.5, 1.5, 1.5], [0.5, 0.5, 1.5], bins=(2, 2), range=((0, 2), (0, 2))
        )
    with MergerEmulator.from_root_file(path, run_number=77) as replay:
        everything = request(replay, schema=True)
        assert names_of(everything) == ["TPCQA/deeper/h_2d", "TPCQA/h_tpc", "top"]
        in_folder = request(replay, select="^TPCQA/")
    assert names_of(in_folder) == ["TPCQA/deeper/h_2d", "TPCQA/h_tpc"]
    h_tpc, h_2d = in_folder.histograms[1], in_folder.histograms[0]
    assert h_tpc.values().tolist() == [4.0, 5.0, 6.0]
    assert h_2d.values().tolist() == [[1.0, 0.0], [1.0, 1.0]]
