"""A reply's numbers decoded into one arena and stored from it without a copy, and every way a reply can
leave that path (refused object, other order, generic path, full arena) storing exactly the same numbers."""

import gc
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from pipeline import bin_arena
from pipeline.bin_arena import BinArena, numbers_of
from pipeline.histogram import Histogram
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.store_schema import histograms_to_table
from pipeline.wire.messages import build_reply, decode_reply
from pipeline.wire.tmessage import StreamerContext
from tests.pipeline.test_wire_fast_decode import encode

META = SnapshotMeta(run=300000, subsystem="EMC", snapshot_time_utc=datetime(2026, 1, 1, tzinfo=UTC))


def maps(n: int, weighted: bool, seed: int = 3) -> list[Histogram]:
    """TH2F maps and TH1D spectra of counts, named in the order a merger sends them (sorted)."""
    rng = np.random.default_rng(seed)
    weight = 1.5 if weighted else 1.0
    histograms = []
    for index in range(n):
        two_d = index % 2 == 0
        shape = (8, 12) if two_d else (22,)
        edges = (np.arange(7.0), np.arange(11.0)) if two_d else (np.linspace(0.0, 5.0, 21),)
        counts = rng.poisson(20.0, size=shape).astype(float)
        histograms.append(
            Histogram(
                f"h{index:03d}",
                "TH2F" if two_d else "TH1D",
                "counts",
                edges,
                counts * weight,
                counts * weight**2,
                float(counts.sum()),
            )
        )
    return histograms


def reply_frames(histograms: list[Histogram], weighted: bool) -> list[bytes]:
    return build_reply("run=300000;HLT_MODE=B", [(h.name, encode(h, sumw2=weighted)) for h in histograms])


def decoded(histograms: list[Histogram], weighted: bool, reverse: bool = False) -> list[Histogram]:
    context = StreamerContext()
    frames = reply_frames(histograms, weighted)
    if reverse:  # mergers send objects sorted by name (as `build_reply` does); this one does not
        pairs = [frames[index : index + 2] for index in range(2, len(frames), 2)]
        frames = frames[:2] + [frame for pair in pairs[::-1] for frame in pair]
    decode_reply(frames, context)  # the first reply of a layout learns its plan on the generic walk
    reply = decode_reply(frames, context)
    assert not reply.rejected
    return reply.histograms


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def assert_stored_exactly(tmp_path, stored: list[Histogram], sent: list[Histogram], weighted: bool) -> None:
    store = SnapshotStore(tmp_path)
    snapshot_id = store.write_snapshot(META, stored)
    _, read = store.read_snapshot(snapshot_id)
    assert sorted(read) == sorted(h.name for h in sent)
    for histogram in sent:
        np.testing.assert_array_equal(read[histogram.name].values_flow, histogram.values_flow)
        expected = histogram.variances_flow if weighted else histogram.values_flow
        np.testing.assert_array_equal(read[histogram.name].variances_flow, expected)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_a_reply_is_stored_from_its_arena_without_a_copy(tmp_path, weighted):
    sent = maps(40, weighted)
    histograms = decoded(sent, weighted)
    table = histograms_to_table("EMC_1", META, histograms)
    values = table["values"].chunk(0).values
    # The column's numbers are the arena's memory itself, where the first histogram was decoded.
    assert values.buffers()[1].address == address(histograms[0].values_flow)
    assert len(values) == sum(h.values_flow.size for h in sent)
    if weighted:
        variances = table["variances"].chunk(0).values
        assert variances.buffers()[1].address == address(histograms[0].variances_flow)
    else:
        assert table["variances"].null_count == len(sent)
    assert_stored_exactly(tmp_path, histograms, sent, weighted)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_a_reply_in_another_order_is_copied_and_stored_exactly(tmp_path, weighted):
    sent = maps(30, weighted)
    histograms = decoded(sent, weighted, reverse=True)  # last name first: the store sorts by name
    assert histograms[0].name == sent[-1].name
    table = histograms_to_table("EMC_1", META, histograms)
    arena_start = min(address(h.values_flow) for h in histograms)
    assert table["values"].chunk(0).values.buffers()[1].address != arena_start
    assert_stored_exactly(tmp_path, histograms, sent, weighted)


def test_a_refused_object_leaves_a_gap_the_store_does_not_take(tmp_path):
    sent = maps(30, weighted=False)
    frames = reply_frames(sent, weighted=False)
    nan_map = sent[10].values_flow.copy()
    nan_map[3, 4] = np.nan
    bad = Histogram("h010", "TH2F", "counts", sent[10].edges, nan_map, nan_map, 1.0)
    frames[2 * 11 + 1] = encode(bad, sumw2=False)  # block 0 is INFO: object 10 is block 11
    context = StreamerContext()
    decode_reply(frames, context)
    reply = decode_reply(frames, context)
    assert len(reply.invalid) == 1 and "'h010'" in reply.invalid[0]
    kept = [h for h in sent if h.name != "h010"]
    assert numbers_of([h.values_flow for h in reply.histograms]) is None  # its numbers sit in between
    assert_stored_exactly(tmp_path, reply.histograms, kept, weighted=False)


def test_numbers_that_do_not_fit_get_arrays_of_their_own(tmp_path):
    # TH1C bins take 1 byte on the wire: the arena, sized for 4-byte numbers, is too small for them all.
    rng = np.random.default_rng(5)
    sent = [
        Histogram(
            f"c{index}", "TH1C", "bytes", (np.linspace(0.0, 1.0, 401),), counts, counts, float(counts.sum())
        )
        for index, counts in enumerate(rng.integers(0, 100, size=(12, 402)).astype(float))
    ]
    histograms = decoded(sent, weighted=False)
    in_arena = [h for h in histograms if h.values_flow.base is histograms[0].values_flow.base]
    assert 0 < len(in_arena) < len(sent)
    assert numbers_of([h.values_flow for h in histograms]) is None
    assert_stored_exactly(tmp_path, histograms, sent, weighted=False)


def test_an_arena_is_forgotten_with_its_last_array():
    gc.collect()  # arenas of earlier tests' histograms still held by a cycle (a traceback, say)
    before = len(bin_arena._HANDED)
    histograms = decoded(maps(6, weighted=True), weighted=True)
    assert len(bin_arena._HANDED) == before + 2  # contents and sums of squared weights
    kept = histograms[3].values_flow
    del histograms
    gc.collect()
    assert len(bin_arena._HANDED) == before + 1  # the contents' arena lives on with `kept`
    assert numbers_of([kept]) is None  # and is no longer the whole of anything to store
    del kept
    assert len(bin_arena._HANDED) == before


def test_arrays_taken_from_an_arena_do_not_overlap():
    arena = BinArena(10)
    first, second = arena.take((2, 3)), arena.take((4,))
    assert arena.take((1,)) is None  # 10 numbers: 6 + 4 taken
    first[...] = 1.0
    second[...] = 2.0
    assert numbers_of([first, second]).to_pylist() == [1.0] * 6 + [2.0] * 4
    assert numbers_of([second, first]) is None
    assert isinstance(numbers_of([first, second]), pa.DoubleArray)
