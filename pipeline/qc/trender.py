"""Trends of stored snapshots: finds each snapshot's predecessor and merger mode, reads only what
trending needs, and computes the rows (`trending.trend_rows`).

`TrendConsumer` plugs this into the QC service (`consumers.SnapshotConsumer`), which writes the rows
to `DIR/qc/trends` one file per snapshot; `Trender` does the same on its own (tests, benchmarks).
Processing a snapshot twice gives the same rows in the same file, so a QC service that restarts and
processes its last snapshot again leaves no duplicate; the trends depend only on the stored snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pyarrow as pa

from pipeline.detectors import plugin_for
from pipeline.histogram import Histogram
from pipeline.processing.runs import merger_mode_of
from pipeline.processing.timeslice import MergerMode, SliceHistograms, SnapshotPart
from pipeline.qc.consumers import SnapshotContext
from pipeline.qc.paths import TRENDS_TABLE
from pipeline.qc.results import write_snapshot_rows
from pipeline.qc.trend_store import TRENDS_SCHEMA
from pipeline.qc.trending import SnapshotTrendInput, snapshot_contents, trend_names, trend_rows
from pipeline.store import SnapshotStore
from pipeline.store_schema import SnapshotKey, parse_snapshot_id


class Trender:
    """Computes trends of the snapshots of one store, in any order (a restart may begin anywhere).
    Keeps, per run and subsystem of a reset-mode merger, the running sum of the trended histograms, so
    the cumulative content costs one addition per snapshot."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        # (run, subsystem) -> (id of the last snapshot summed, running total through it)
        self._running: dict[tuple[int, str], tuple[str, dict[str, Histogram]]] = {}
        # (run, subsystem) -> (id, trended histograms as stored) of the last snapshot trended: the
        # next one's predecessor, so following a live run reads no snapshot twice.
        self._last_read: dict[tuple[int, str], tuple[str, dict[str, Histogram]]] = {}

    def process(self, snapshot_id: str) -> pd.DataFrame:
        """Trend one stored snapshot, store its rows in `DIR/qc/trends` (replacing any earlier ones)
        and return them."""
        key = _key(snapshot_id)
        rows = self.compute(snapshot_id)
        table = pa.Table.from_pandas(rows, schema=TRENDS_SCHEMA, preserve_index=False)
        write_snapshot_rows(self.store.data_dir, TRENDS_TABLE, key.subsystem, key.run, snapshot_id, table)
        return rows

    def compute(self, snapshot_id: str, current: SnapshotPart | None = None) -> pd.DataFrame:
        """The trend rows of one stored snapshot (read from the store unless `current` holds it)."""
        key = _key(snapshot_id)
        plugin = plugin_for(key.subsystem)
        keys = self.store.snapshot_keys(key.run, key.subsystem)
        ids = [k.snapshot_id for k in keys]
        index = ids.index(snapshot_id)
        previous_id = ids[index - 1] if index > 0 else None
        mode = merger_mode_of(self.store.snapshot_meta(snapshot_id).merger_reset)
        current = current or SnapshotPart.stored(self.store, snapshot_id)
        previous = None
        if previous_id is not None:
            kept = self._last_read.get((key.run, key.subsystem))
            if kept is not None and kept[0] == previous_id:
                previous = SnapshotPart.in_memory(kept[1])
            else:
                previous = SnapshotPart.stored(self.store, previous_id)
        running = None
        if mode is MergerMode.RESET:
            running = self._running_total(key.run, key.subsystem, ids[:index])
        cumulative, interval = snapshot_contents(plugin, mode, current, previous, running)
        stored = interval if mode is MergerMode.RESET else cumulative
        self._last_read = {(key.run, key.subsystem): (snapshot_id, dict(stored))} | {
            k: v for k, v in self._last_read.items() if k[1] != key.subsystem
        }
        if mode is MergerMode.RESET:
            self._running[(key.run, key.subsystem)] = (snapshot_id, dict(cumulative))
        snapshot = SnapshotTrendInput(
            run=key.run,
            subsystem=key.subsystem,
            snapshot_id=snapshot_id,
            snapshot_time_utc=key.snapshot_time_utc,
            run_start_utc=keys[0].snapshot_time_utc,
            previous_time_utc=keys[index - 1].snapshot_time_utc if index > 0 else None,
        )
        return trend_rows(plugin, snapshot, cumulative, interval)

    def _running_total(self, run: int, subsystem: str, earlier_ids: list[str]) -> Mapping[str, Histogram]:
        """The sum of `earlier_ids` (trended names only): kept from the previous call when it ended at
        the last of them, else summed from the store (the first call after a restart)."""
        if not earlier_ids:
            return {}
        kept = self._running.get((run, subsystem))
        if kept is not None and kept[0] == earlier_ids[-1]:
            return kept[1]
        plugin = plugin_for(subsystem)
        parts = []
        for snapshot_id in earlier_ids:
            part = SnapshotPart.stored(self.store, snapshot_id)
            parts.append(part.only(trend_names(plugin, part.names)))
        return SliceHistograms(MergerMode.RESET, parts).materialized()


class TrendConsumer:
    """The QC service's trending step: the trend rows of each checked snapshot, from the histograms
    the service already holds (derived ones included, so a plug-in may trend a projection)."""

    table = TRENDS_TABLE
    schema = TRENDS_SCHEMA

    def __init__(self, store: SnapshotStore) -> None:
        self.trender = Trender(store)
        self.last_rows: pd.DataFrame | None = None  # for the alarms step of the same snapshot

    def consume(self, context: SnapshotContext) -> pa.Table:
        histograms = context.histograms
        current = SnapshotPart(
            histograms.keys(),
            lambda names: {name: histograms[name] for name in (histograms if names is None else names)},
        )
        rows = self.trender.compute(context.snapshot.snapshot_id, current)
        self.last_rows = rows
        return pa.Table.from_pandas(rows, schema=TRENDS_SCHEMA, preserve_index=False)


def _key(snapshot_id: str) -> SnapshotKey:
    key = parse_snapshot_id(snapshot_id)
    if key is None:
        raise KeyError(f"not a snapshot id: {snapshot_id!r}")
    return key
