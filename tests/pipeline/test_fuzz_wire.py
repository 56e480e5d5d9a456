"""Short fuzz of the wire decoding and the receiver's reply handling (the long run: benchmarks/fuzz_wire).

Hypothesis draws the random choices of `benchmarks.fuzz_wire.make_case` (so a failure shrinks to a
small reply and replays from its database), plus raw frames of arbitrary bytes. Every case must decode
without an exception, accept only storable histograms, and (through a receiver) count every refused
block and store nothing else.
"""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz_wire import check_case, make_case, nested_collection, seed_payloads
from pipeline.receiver import Outcome, Receiver
from pipeline.store import SnapshotStore
from pipeline.wire import header
from pipeline.wire.messages import build_reply, decode_reply
from pipeline.wire.tmessage import StreamerContext

# A few thousand cases in CI, a few seconds each group; no deadline: a loaded machine is not a hang.
FUZZ = settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # CI runs the same cases each time; the long run explores
)


@pytest.fixture(autouse=True)
def quiet_rejections():
    """Each rejection logs a line (unexpected ones a traceback): thousands would flood the report."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_mutated_replies_decode_without_crash_and_accept_only_storable_objects(rng: random.Random):
    check_case(make_case(rng))


@FUZZ
@given(frames=st.lists(st.binary(max_size=300), max_size=9))
def test_arbitrary_frames_decode_without_crash(frames: list[bytes]):
    reply = check_case(frames)
    assert reply.histograms == []  # random bytes never make a histogram


@settings(FUZZ, max_examples=300)
@given(
    frames=st.lists(
        st.tuples(st.sampled_from([header.ROOTTOBJ, header.ROOTSTRI, header.INFO]), st.binary(max_size=200)),
        max_size=6,
    )
)
def test_well_framed_garbage_is_rejected_block_by_block(frames):
    """Valid headers over random payloads: every ROOT block becomes exactly one counted rejection."""
    flat = [part for data_type, payload in frames for part in (header.pack_topic(data_type), payload)]
    reply = decode_reply(flat, StreamerContext())
    root_blocks = sum(data_type != header.INFO for data_type, _ in frames)
    assert reply.histograms == [] and len(reply.rejected) == root_blocks


def test_deep_nesting_is_one_rejection_not_a_recursion_crash():
    inner = seed_payloads()[5][1][8:]  # one of our own TH1 encodings, framed
    for depth in (1, 50, 3000):
        reply = decode_reply(
            build_reply("run=5", [("deep", nested_collection(depth, inner))]), StreamerContext()
        )
        if depth == 1:
            assert len(reply.histograms) == 1 and not reply.rejected
        elif depth == 3000:
            assert reply.histograms == [] and len(reply.errors) == 1


@pytest.mark.network
@settings(FUZZ, max_examples=120)
@given(rng=st.randoms(use_true_random=False))
def test_the_receiver_counts_every_refusal_and_stores_only_what_decoded(rng, tmp_path_factory):
    """Through the receiver's reply handling and the store: what it stored is what decoded (first of
    each name), and its counters add up."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    frames = make_case(rng)
    expected = decode_reply(frames, StreamerContext())
    receiver = Receiver("tcp://127.0.0.1:9", "EMC", data_dir)
    outcome = receiver._handle_reply(decode_reply(frames, receiver.streamers), schema_requested=True)
    store = SnapshotStore(data_dir)
    names = list(dict.fromkeys(h.name for h in expected.histograms))
    duplicates = len(expected.histograms) - len(names)
    assert receiver.status.rejected_objects == len(expected.rejected) + duplicates
    if outcome is Outcome.STORED:
        snapshot_id = store.latest_snapshot_id(expected.run, "EMC", include_replay=True)
        assert sorted(store.read_snapshot(snapshot_id)[1]) == sorted(names)
    else:
        assert outcome is Outcome.SKIPPED and store.count_snapshots(include_replay=True) == 0
