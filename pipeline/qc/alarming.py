"""The QC service's alarm step: evaluates the alarms on each snapshot's trends and updates their states.

It runs after the trending step (`trender.TrendConsumer`) and reads the rows that step just made. The
newest values of each series are kept in memory (`alarms.SeriesHistory`), and read back from the
trends table when the service starts, or skips back, so `mean of last N` rules see the same values
after a restart. Alarm parameters come from the alarm file for the run's beam type, with the experts'
changes, reloaded when those change. New and cleared alarms are logged, and handed to delivery
(`delivery.Deliverer.wake`), which sends from its own thread: nothing here waits on a mail server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from pipeline.detectors import plugin_for
from pipeline.detectors.names import stored_titles
from pipeline.qc.alarm_book import ALARMS_SCHEMA, AlarmBook, AlarmEvent
from pipeline.qc.alarm_config import AlarmConfig, changes_mtime, load_changes
from pipeline.qc.alarms import AlarmDefinition, SeriesHistory, evaluate
from pipeline.qc.consumers import SnapshotContext
from pipeline.qc.evaluate import SnapshotInput
from pipeline.qc.paths import ALARMS_TABLE
from pipeline.qc.trend_store import TrendStore
from pipeline.qc.trender import TrendConsumer
from pipeline.store import SnapshotStore

log = logging.getLogger(__name__)


class AlarmConsumer:
    """Alarm evaluation as a QC consumer; it keeps its own files (`AlarmBook`), so `consume` returns
    None (the service writes no per-snapshot table for it)."""

    table = ALARMS_TABLE
    schema = ALARMS_SCHEMA

    def __init__(
        self,
        data_dir: Path,
        trends: TrendConsumer,
        config: AlarmConfig,
        on_events: Callable[[Sequence[AlarmEvent]], None] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.trends = trends
        self.trend_store = TrendStore(self.data_dir)
        self.config = config
        self.book = AlarmBook(self.data_dir)
        self.store = SnapshotStore(self.data_dir)  # the titles that display names are made from
        self.on_events = on_events
        self._histories: dict[tuple[int, str], SeriesHistory] = {}
        self._definitions: dict[tuple[str, str], tuple[float, list[AlarmDefinition]]] = {}

    def consume(self, context: SnapshotContext) -> None:
        self.evaluate_snapshot(context.snapshot, context.previous_snapshot_id)
        return None

    def evaluate_snapshot(self, snapshot: SnapshotInput, previous_snapshot_id: str | None) -> None:
        """Evaluate the alarms on one snapshot's trend rows (the trending step's, else the stored
        ones: a rebuild on Dask runs this pass after the trends of every run are written)."""
        rows = self.trends.last_rows
        if rows is None or (len(rows) and rows["snapshot_id"].iloc[0] != snapshot.snapshot_id):
            rows = self.trend_store.rows(snapshot.run, snapshot.subsystem, [snapshot.snapshot_id])
        definitions = self.definitions(snapshot.subsystem, snapshot.beam_type)
        if not definitions:
            return None
        history = self._history(snapshot.run, snapshot.subsystem, previous_snapshot_id, definitions)
        history.append(snapshot.snapshot_id, _values(rows))
        trended = set(rows["histogram"])
        results = evaluate(definitions, history, trended, self._namer(snapshot, trended))
        events = self.book.update(
            snapshot.subsystem, snapshot.run, snapshot.snapshot_id, snapshot.snapshot_time_utc, results
        )
        for event in events:
            alarm = event.alarm
            level = logging.WARNING if event.kind == "fired" else logging.INFO
            log.log(
                level,
                "alarm %s: %s %s %s run %d: %s",
                event.kind,
                alarm["subsystem"],
                alarm["alarm"],
                alarm["histogram"],
                alarm["run"],
                alarm.get("why") or alarm["message"],
            )
        if events and self.on_events is not None:
            self.on_events(events)

    def _namer(self, snapshot: SnapshotInput, names: set[str]) -> Callable[[str], str]:
        """Display names of the snapshot's trended histograms (the plug-in's labels: explicit name,
        else ROOT title, else cleaned name, unique among them), worked out when a message first asks:
        most snapshots fire nothing."""
        labels: dict[str, str] = {}

        def name(histogram: str) -> str:
            if not labels:
                titles = stored_titles(self.store, [snapshot.snapshot_id])
                labels.update(plugin_for(snapshot.subsystem).labels(sorted(names | {histogram}), titles))
            return labels.get(histogram, histogram)

        return name

    def definitions(self, subsystem: str, beam_type: str) -> list[AlarmDefinition]:
        """The subsystem's alarms for the beam type, with the experts' changes (reloaded when they change)."""
        stamp = changes_mtime(self.data_dir)
        cached = self._definitions.get((subsystem, beam_type))
        if cached is None or cached[0] != stamp:
            definitions = self.config.definitions(subsystem, beam_type, load_changes(self.data_dir))
            cached = self._definitions[(subsystem, beam_type)] = (stamp, definitions)
        return cached[1]

    def _history(
        self, run: int, subsystem: str, previous_id: str | None, definitions: list[AlarmDefinition]
    ) -> SeriesHistory:
        keep = max(definition.condition.needed for definition in definitions)
        history = self._histories.get((run, subsystem))
        if history is not None and history.last_snapshot_id == previous_id and history.keep >= keep:
            return history
        # Started (or restarted) mid-run: the values the rules look back at are in the trends table.
        history = SeriesHistory(keep)
        if previous_id is not None:
            ids = self.trend_store.snapshot_ids(run, subsystem)
            earlier = [i for i in ids if i <= previous_id][-history.keep :]
            frame = self.trend_store.rows(run, subsystem, earlier)
            for snapshot_id, part in frame.groupby("snapshot_id", sort=True):
                history.append(str(snapshot_id), _values(part))
        # Only one run per subsystem is live; forget the others.
        self._histories = {k: v for k, v in self._histories.items() if k[1] != subsystem}
        self._histories[(run, subsystem)] = history
        return history


def _values(rows: pd.DataFrame) -> list[tuple[str, str, str, float]]:
    return list(
        zip(rows["histogram"], rows["quantity"], rows["content"], rows["value"].astype(float), strict=True)
    )
