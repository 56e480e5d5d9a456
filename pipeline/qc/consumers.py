"""The hook where per-snapshot work beyond the checks plugs into the QC service (trends, alarms...).

After the checks of a snapshot are evaluated, the service calls every registered `SnapshotConsumer`
with a `SnapshotContext`, in registration order. A consumer returns the rows of its own table for that
snapshot (a list of dicts in its `schema`, or an Arrow table), or None to write nothing; the service
writes them atomically to `DIR/qc/<consumer.table>/subsystem=<SYS>/run=<N>/<snapshot_id>.parquet`,
replacing any earlier file of that snapshot, *before* the snapshot's `checks` file, which is written
last and marks the snapshot done. So after a crash a snapshot is either done with every table, or
done again from scratch (consumer files overwritten, no duplicate rows). A consumer that keeps state
outside its per-snapshot files (e.g. alarm states) must therefore accept seeing the same snapshot
twice (key its state by `snapshot_id`).

A consumer that raises is logged and counted (`consumer_errors` in the status file); it does not stop
the service, and the snapshot is still marked done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from pipeline.detectors.base import DetectorPlugin
from pipeline.histogram import Histogram
from pipeline.qc.evaluate import Evaluation, SnapshotInput


@dataclass(frozen=True)
class SnapshotContext:
    """Everything known about one snapshot when its checks are done.

    `histograms` holds the stored and derived histograms (read lazily); `previous` the snapshot just
    before it in the same run and subsystem (None for the first), with `previous_time_utc`, for values
    "since the previous snapshot"; `evaluation` the check results and rows (`evaluation.checked`,
    `evaluation.check_rows` or `evaluation.checks_table()`, `evaluation.quality_rows`,
    `evaluation.n_events`).
    """

    snapshot: SnapshotInput
    plugin: DetectorPlugin
    histograms: Mapping[str, Histogram]
    evaluation: Evaluation
    previous_snapshot_id: str | None
    previous: Mapping[str, Histogram] | None
    previous_time_utc: datetime | None = None


class SnapshotConsumer(Protocol):
    """Per-snapshot work plugged into the QC service (see the module docstring)."""

    table: str
    schema: pa.Schema

    def consume(self, context: SnapshotContext) -> list[dict[str, Any]] | pa.Table | None: ...
