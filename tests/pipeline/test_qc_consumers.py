"""The consumer hook (where trending and alarms plug in): rows per snapshot in the consumer's own table,
written before the snapshot is marked done; a failing consumer is counted and stops nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from pipeline.histogram import Histogram
from pipeline.qc.consumers import SnapshotContext
from pipeline.qc.paths import CHECKS_TABLE
from pipeline.qc.results import read_results, result_files
from pipeline.qc.schema import CHECKS_SCHEMA
from pipeline.qc.service import QCService
from pipeline.qc.status_file import read_status
from pipeline.store import SnapshotMeta, SnapshotStore

START = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        pa.field("snapshot_id", pa.string(), nullable=False),
        pa.field("previous_snapshot_id", pa.string()),
        pa.field("n_events", pa.float64()),
        pa.field("n_checks", pa.int64(), nullable=False),
        pa.field("checks_file_existed", pa.bool_(), nullable=False),
    ]
)


def events(count: float) -> Histogram:
    values = np.array([0.0, count, 0.0])
    return Histogram("EMCTRQA_histEvents", "TH1D", "events", (np.array([0.0, 1.0]),), values, values, count)


class Recorder:
    table = "recorded"
    schema = SCHEMA

    def __init__(self, data_dir) -> None:
        self.data_dir = data_dir

    def consume(self, context: SnapshotContext) -> list[dict]:
        snapshot = context.snapshot
        return [
            {
                "snapshot_id": snapshot.snapshot_id,
                "previous_snapshot_id": context.previous_snapshot_id,
                "n_events": context.evaluation.n_events,
                "n_checks": context.evaluation.n_checks,
                "checks_file_existed": any(
                    path.stem == snapshot.snapshot_id for path in result_files(self.data_dir, CHECKS_TABLE)
                ),
            }
        ]


class Broken:
    table = "broken"
    schema = SCHEMA

    def consume(self, context: SnapshotContext) -> None:
        raise RuntimeError("cannot reach the alarm server")


def test_consumers_get_every_snapshot_and_a_broken_one_stops_nothing(tmp_path) -> None:
    store = SnapshotStore(tmp_path)
    ids = [
        store.write_snapshot(
            SnapshotMeta(7, "EMC", START + timedelta(minutes=i), "B", "pp"), [events(1e3 * (i + 1))]
        )
        for i in range(3)
    ]
    service = QCService(tmp_path, consumers=[Broken(), Recorder(tmp_path)])
    assert service.check_pending() == 3
    recorded = read_results(tmp_path, "recorded", SCHEMA).sort_values("snapshot_id")
    assert list(recorded["snapshot_id"]) == ids
    previous = recorded["previous_snapshot_id"]
    assert previous.isna().tolist() == [True, False, False] and list(previous[1:]) == ids[:2]
    assert list(recorded["n_events"]) == [1e3, 2e3, 3e3]
    assert not recorded["checks_file_existed"].any()  # consumers' files come before the checks file
    checks = read_results(tmp_path, CHECKS_TABLE, CHECKS_SCHEMA)
    assert list(recorded["n_checks"]) == [int((checks["snapshot_id"] == i).sum()) for i in ids]
    assert (
        service.counters.consumer_errors == 3
        and "cannot reach the alarm server" in service.counters.last_error
    )
    service.write_status(force=True)
    assert read_status(tmp_path)["consumer_errors"] == 3
    assert sorted(checks["snapshot_id"].unique()) == ids  # every snapshot is done all the same
