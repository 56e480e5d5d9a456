"""What fuzzing the wire and fault-testing the receiver found, one test per finding (issue 12).

Each test feeds the receiver (or the decoder) the input that broke it, and checks that the bad object
is one counted rejection, that the good objects of the same reply are stored, and that nothing bad is.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.histogram import Histogram
from pipeline.receiver import Outcome, Receiver
from pipeline.status import read_all_status
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.wire.fast_decode import decode_histogram
from pipeline.wire.messages import Reply, build_reply, decode_reply
from pipeline.wire.tmessage import StreamerContext, decode_tmessage, encode_tmessage, histograms_from_model
from tests.pipeline.test_receiver_bad_input import INFO, ScriptedMerger, histogram, objects, stored


def reply_of(*payloads: tuple[str, bytes], info: str = INFO, streamer_block: bytes | None = None) -> Reply:
    return decode_reply(build_reply(info, list(payloads), streamer_block), StreamerContext())


# ---- a histogram in a ROOTSTRI block ------------------------------------------------------------


def test_a_histogram_sent_as_rootstri_block_is_one_counted_error():
    reply = reply_of(*objects("a_good"), streamer_block=encode_tmessage(histogram("not_a_schema")))
    assert [h.name for h in reply.histograms] == ["a_good"]
    assert len(reply.errors) == 1 and "ROOTSTRI" in reply.errors[0] and "TH1D" in reply.errors[0]
    assert reply.streamer_blocks == 0


@pytest.mark.network
def test_the_receiver_survives_a_histogram_in_a_rootstri_block(tmp_path):
    bad = build_reply(INFO, objects("a_good"), streamer_block=encode_tmessage(histogram("x")))
    with ScriptedMerger([bad, build_reply(INFO, objects("a_good"))]) as merger:
        receiver = Receiver(merger.endpoint, "EMC", tmp_path, timeout_s=5.0)
        try:
            assert [receiver.request_once() for _ in range(2)] == [Outcome.STORED, Outcome.STORED]
        finally:
            receiver.close()
        # the failed schema block makes it ask again, once
        assert merger.schema_requests == 2
    [status] = read_all_status(tmp_path)
    assert (status.rejected_objects, status.snapshots_stored) == (1, 2)
    assert not list((tmp_path / "streamers").glob("*.bin"))  # nothing of the bad block kept


# ---- a run number beyond int64 ------------------------------------------------------------------


@pytest.mark.network
def test_a_run_beyond_int64_is_skipped_and_the_next_reply_stored(tmp_path):
    huge = build_reply(f"run={2**63};HLT_MODE=B", objects("a"))
    with ScriptedMerger([huge, build_reply(INFO, objects("a"))]) as merger:
        receiver = Receiver(merger.endpoint, "EMC", tmp_path, timeout_s=5.0)
        try:
            assert [receiver.request_once() for _ in range(2)] == [Outcome.SKIPPED, Outcome.STORED]
        finally:
            receiver.close()
    store = SnapshotStore(tmp_path)
    assert store.runs()["run"].tolist() == [500]
    [status] = read_all_status(tmp_path)
    assert (status.skipped_replies, status.snapshots_stored) == (1, 1)


def test_a_run_of_thousands_of_digits_is_out_of_range_not_an_exception():
    reply = reply_of(*objects("a"), info="run=" + "9" * 5000 + ";HLT_MODE=B")
    assert reply.run == 10**30 and [h.name for h in reply.histograms] == ["a"]
    assert reply_of(info="run=-" + "0" * 4990 + "42").run == -42
    assert reply_of(info="run= +17abc").run == 17


@pytest.mark.parametrize("run", [2**63, 2**64 + 5])
def test_the_store_refuses_runs_its_int64_column_cannot_hold(tmp_path, run):
    with pytest.raises(ValueError, match="positive integer up to 9223372036854775807"):
        SnapshotStore(tmp_path).write_snapshot(
            SnapshotMeta(run, "EMC", datetime(2025, 1, 1, tzinfo=UTC)), [histogram("a")]
        )
    assert not (tmp_path / "snapshots").exists()


def test_the_largest_int64_run_is_stored(tmp_path):
    store = SnapshotStore(tmp_path)
    store.write_snapshot(SnapshotMeta(2**63 - 1, "EMC", datetime(2025, 1, 1, tzinfo=UTC)), [histogram("a")])
    assert store.runs()["run"].tolist() == [2**63 - 1]


# ---- non-finite or non-increasing edges, non-finite entries -------------------------------------


def with_edges(name: str, edges: list[float], entries: float = 3.0) -> tuple[str, bytes]:
    values = np.arange(len(edges) + 1, dtype=float)
    edges_array = np.array(edges)
    return name, encode_tmessage(Histogram(name, "TH1D", "", (edges_array,), values, values, entries))


def test_bad_edges_and_entries_are_rejected_and_the_good_object_kept():
    reply = reply_of(
        with_edges("nan_edges", [math.nan, 0.5, 1.0]),
        with_edges("swapped_range", [1.0, 0.5, 0.0]),  # fXmin > fXmax, uniform: decoded by linspace
        with_edges("repeated_edge", [0.0, 0.5, 0.5, 1.0]),
        with_edges("infinite_edge", [0.0, 0.5, math.inf]),
        with_edges("nan_entries", [0.0, 0.5, 1.0], entries=math.nan),
        with_edges("good", [0.0, 0.5, 1.0]),
    )
    assert [h.name for h in reply.histograms] == ["good"]
    reasons = sorted(reply.invalid)
    assert len(reasons) == 5
    assert sum("non-finite x bin edges" in r for r in reasons) == 2
    assert sum("x bin edges do not increase" in r for r in reasons) == 2
    assert sum("non-finite entries" in r for r in reasons) == 1


def test_a_bad_binning_shared_by_many_objects_is_refused_for_each():
    # The fast decoder shares one edges array per binning and the check's verdict on it is kept: a
    # binning refused once must be refused for every object that has it, in this reply and the next.
    # (Block 1 is the INFO block.)
    for _ in range(2):
        reply = reply_of(
            *[with_edges(f"swapped_{index}", [1.0, 0.5, 0.0]) for index in range(3)],
            with_edges("good", [0.0, 0.5, 1.0]),
        )
        assert [h.name for h in reply.histograms] == ["good"]
        assert sorted(reply.invalid) == [
            f"block {index + 2} 'swapped_{index}': x bin edges do not increase" for index in range(3)
        ]


def test_edges_that_can_change_are_checked_every_time():
    from pipeline.wire.messages import _unusable_numbers

    edges = np.array([0.0, 0.5, 1.0])  # writeable: its verdict is never kept
    values = np.ones(4)
    good = Histogram("h", "TH1D", "", (edges,), values, values, 4.0)
    assert _unusable_numbers(good) is None
    edges[1] = 2.0
    assert _unusable_numbers(good) == "x bin edges do not increase"


def test_verdicts_kept_per_tuple_of_edges_name_that_tuple_s_axis_and_skip_changeable_arrays():
    from pipeline.wire.messages import _unusable_numbers

    increasing, decreasing = np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.0])
    for edges in (increasing, decreasing):
        edges.setflags(write=False)  # shared, as the fast decoder's: verdicts are kept
    values = np.ones((4, 4))

    def th2(edges: tuple[np.ndarray, np.ndarray]) -> Histogram:
        return Histogram("h", "TH2D", "", edges, values, values, 16.0)

    for _ in range(2):  # the second time from the kept verdicts
        assert _unusable_numbers(th2((increasing, decreasing))) == "y bin edges do not increase"
        assert _unusable_numbers(th2((decreasing, increasing))) == "x bin edges do not increase"
        assert _unusable_numbers(th2((increasing, increasing))) is None
    changeable = increasing.copy()  # writeable: a tuple holding it is checked every time
    histogram = th2((increasing, changeable))
    assert _unusable_numbers(histogram) is None
    changeable[0] = np.nan
    assert _unusable_numbers(histogram) == "non-finite y bin edges"


# ---- names and titles that are not UTF-8 --------------------------------------------------------


def latin1_payload(name: str = "hLatin") -> bytes:
    """A TH1D titled "Energy (µs)" with the "µ" as the single Latin-1 byte 0xB5, as old ROOT wrote it."""
    payload = encode_tmessage(
        Histogram(name, "TH1D", "Energy (Xs)", (np.linspace(0, 1, 3),), np.ones(4), np.ones(4))
    )
    assert payload.count(b"(Xs)") == 1
    return payload.replace(b"(Xs)", b"(\xb5s)")


def test_a_latin1_title_decodes_the_same_on_both_paths():
    payload = latin1_payload()
    fast = decode_histogram(payload)
    [generic] = histograms_from_model(decode_tmessage(payload))
    assert fast.title == generic.title == "Energy (µs)"


@pytest.mark.network
def test_a_latin1_title_costs_nothing_and_is_stored_readably(tmp_path):
    frames = build_reply(INFO, [("hLatin", latin1_payload()), *objects("z_good")])
    with ScriptedMerger([frames]) as merger:
        receiver = Receiver(merger.endpoint, "EMC", tmp_path, timeout_s=5.0)
        try:
            assert receiver.request_once() is Outcome.STORED
        finally:
            receiver.close()
    kept = stored(tmp_path)
    assert sorted(kept) == ["hLatin", "z_good"]
    assert kept["hLatin"].title == "Energy (µs)"


def test_an_object_the_store_cannot_hold_is_rejected_alone(tmp_path):
    """Defence in depth: whatever makes the store refuse one object (here a lone surrogate, which no
    UTF-8 writer takes) costs that object only; before, the whole reply was lost on every request."""
    bad = Histogram("bad\udcb5", "TH1D", "", (np.linspace(0, 1, 3),), np.ones(4), np.ones(4))
    receiver = Receiver("tcp://127.0.0.1:9", "EMC", tmp_path)
    reply = Reply(info={"run": "500", "HLT_MODE": "B"}, histograms=[bad, histogram("good")], has_info=True)
    assert receiver._handle_reply(reply, schema_requested=False) is Outcome.STORED
    assert sorted(stored(tmp_path)) == ["good"]
    assert receiver.status.rejected_objects == 1 and "'bad\\udcb5'" in receiver.status.last_error


# ---- temp files of killed writers ---------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    return int(child.stdout)


def test_receiver_start_removes_temp_files_of_dead_writers_only(tmp_path):
    store = SnapshotStore(tmp_path)
    store.write_snapshot(SnapshotMeta(500, "EMC", datetime(2025, 1, 1, tzinfo=UTC)), [histogram("a")])
    run_dir = tmp_path / "snapshots/subsystem=EMC/run=500"
    dead = run_dir / f".EMC_500_x.parquet.{dead_pid()}.123.tmp"
    live = run_dir / f".EMC_500_y.parquet.{os.getppid()}.456.tmp"  # pytest's parent: alive
    for path in (dead, live):
        path.write_bytes(b"PAR1 half a file")
    Receiver("tcp://127.0.0.1:9", "EMC", tmp_path)
    assert (dead.exists(), live.exists()) == (False, True)
    assert SnapshotStore(tmp_path).count_snapshots() == 1
