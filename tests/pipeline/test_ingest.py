"""The reply -> snapshot rules every source shares (ZMQ receiver, HTTP push), without any transport."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from pipeline.histogram import Histogram
from pipeline.ingest import Outcome, store_reply
from pipeline.status import ReceiverStatus
from pipeline.store import SnapshotStore
from pipeline.wire.messages import Reply

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def histogram(name: str, scale: float = 1.0) -> Histogram:
    values = np.array([0.0, 1.0, 2.0, 0.0]) * scale
    return Histogram(name, "TH1D", name, (np.array([0.0, 1.0, 2.0]),), values, values)


def test_a_reply_is_stored_with_the_first_of_each_name_and_its_refusals_counted(tmp_path):
    store = SnapshotStore(tmp_path)
    status = ReceiverStatus("EMC")
    reply = Reply(
        info={"run": "42", "HLT_MODE": "B\n", "BEAM_TYPE": "PbPb"},
        histograms=[histogram("a"), histogram("b"), histogram("a", scale=5.0)],
        errors=["block 3: corrupt"],
        unsupported=["block 4: TProfile"],
    )
    result = store_reply(store, status, reply, WHEN, merger_reset=True)
    assert result.outcome is Outcome.STORED and result.stored_names == ["a", "b"]
    assert result.rejected == ["block 3: corrupt", "block 4: TProfile", result.rejected[2]]
    assert "duplicate object name 'a'" in result.rejected[2]
    meta, stored = store.read_snapshot(result.snapshot_id)
    assert (meta.run, meta.hlt_mode, meta.beam_type, meta.merger_reset) == (42, "U", "PbPb", True)
    assert meta.snapshot_time_utc == WHEN
    np.testing.assert_array_equal(stored["a"].values_flow, histogram("a").values_flow)  # the first one
    assert (status.rejected_objects, status.unsupported_objects, status.snapshots_stored) == (3, 1, 1)
    assert (status.histograms_stored, status.last_run) == (2, 42)
    assert status.last_snapshot_utc == WHEN.timestamp()


def test_run_zero_or_nothing_left_is_skipped_with_a_reason_and_nothing_written(tmp_path):
    store = SnapshotStore(tmp_path)
    status = ReceiverStatus("EMC")
    between_runs = store_reply(store, status, Reply(info={"run": "0"}, histograms=[histogram("a")]), WHEN)
    assert between_runs.outcome is Outcome.SKIPPED and "run 0" in between_runs.reason
    empty = store_reply(store, status, Reply(info={"run": "7"}, unsupported=["block 0: TGraph"]), WHEN)
    assert empty.outcome is Outcome.SKIPPED and empty.reason == "no histogram left to store"
    assert (status.skipped_replies, status.last_run, status.unsupported_objects) == (2, 7, 1)
    assert store.count_snapshots() == 0 and not (tmp_path / "snapshots").exists()
