"""The QC service: follows the snapshot store and checks every snapshot as it lands (`python -m pipeline qc`).

Progress is what is stored: a snapshot is done when its `checks` file exists (written last, atomically,
after its `quality` file and every consumer's file). So after a restart, even a SIGKILL, the service
carries on with the oldest snapshot that has no `checks` file (never skipping one), and a snapshot
processed twice replaces its files (never duplicating rows). `rebuild` recomputes snapshots that are
done, e.g. after a plug-in changed, and gives the same rows as the live service did.

Per snapshot: read it (all histograms), evaluate the plug-in's checks (`evaluate.evaluate_snapshot`),
call the consumers (`consumers.SnapshotConsumer`: trends, alarms...), write the results. Snapshots
are taken oldest first across subsystems, so all keep up together. Counters go to `DIR/qc/status.json`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from pipeline import atomic_files
from pipeline.detectors import plugin_for
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions
from pipeline.progress import ProgressBar
from pipeline.qc.consumers import SnapshotConsumer, SnapshotContext
from pipeline.qc.evaluate import Evaluation, SnapshotInput, WithDerived, evaluate_snapshot
from pipeline.qc.paths import CHECKS_TABLE, QUALITY_TABLE, status_path
from pipeline.qc.references import get_reference
from pipeline.qc.results import done_snapshot_ids, write_snapshot_rows
from pipeline.qc.schema import CHECKS_SCHEMA, QUALITY_SCHEMA, rows_to_table
from pipeline.store import SnapshotStore
from pipeline.store_schema import SnapshotKey
from pipeline.temp_cleanup import remove_stale_temp_files

log = logging.getLogger(__name__)

MIN_STATUS_EVERY_S = 1.0  # the status file is rewritten at most this often (unless forced)


@dataclass
class QCCounters:
    """What the service did since it started; written to the status file."""

    snapshots_checked: int = 0
    check_rows: int = 0
    # Snapshots stored but not yet checked at the last look, and how old the oldest of them is.
    pending: int = 0
    lag_s: float = 0.0
    failed_snapshots: int = 0
    consumer_errors: int = 0
    last_snapshot_id: str = ""
    last_error: str = ""


class LazySnapshot(Mapping[str, Histogram]):
    """One stored snapshot's histograms, each read (its row group only) when first asked for."""

    def __init__(self, store: SnapshotStore, snapshot_id: str) -> None:
        self.store = store
        self.snapshot_id = snapshot_id
        self._names = store.histogram_names(snapshot_id)
        self._known = frozenset(self._names)
        self._read: dict[str, Histogram] = {}

    def __getitem__(self, name: str) -> Histogram:
        if name not in self._known:
            raise KeyError(name)
        if name not in self._read:
            self._read[name] = self.store.read_histogram(self.snapshot_id, name)
        return self._read[name]

    @property
    def read_names(self) -> list[str]:
        """The names read so far (what a check asked for)."""
        return list(self._read)

    def seed(self, histograms: Mapping[str, Histogram]) -> None:
        """Histograms of this snapshot already in memory: never read again."""
        self._read.update((name, h) for name, h in histograms.items() if name in self._known)

    def prefetch(self, names: Iterable[str]) -> None:
        """Read these histograms in one pass over the file (one read per name would decode a row
        group each time)."""
        wanted = [name for name in names if name in self._known and name not in self._read]
        if wanted:
            self._read.update(self.store.read_snapshot(self.snapshot_id, wanted)[1])

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class RecentContent:
    """What interval checks of later snapshots will subtract, kept from the snapshots just checked.

    The baseline of an interval check is a snapshot checked a minute earlier, so its histograms were
    in memory then. Which ones an interval check reads is learnt per subsystem from the last
    evaluation (the baseline's `read_names`: the per-supermodule maps of EMC, the TPC η-φ TH3s...);
    copies of just those are kept for the newest `max_snapshots` snapshots, so a baseline is seldom
    read from disk again. A miss only costs a read.
    """

    def __init__(self, max_snapshots: int = 64) -> None:
        self.max_snapshots = max_snapshots
        self._needed: dict[str, frozenset[str]] = {}
        self._kept: OrderedDict[str, dict[str, Histogram]] = OrderedDict()

    def learn(self, subsystem: str, baseline: LazySnapshot | None) -> None:
        if baseline is not None and baseline.read_names:
            self._needed[subsystem] = frozenset(baseline.read_names)

    def remember(self, subsystem: str, snapshot_id: str, stored: Mapping[str, Histogram]) -> None:
        needed = self._needed.get(subsystem)
        if not needed:
            return
        # Copies: a view would keep its whole Parquet row group (MBs) alive.
        self._kept[snapshot_id] = {name: stored[name].scaled(1.0) for name in needed if name in stored}
        self._kept.move_to_end(snapshot_id)
        while len(self._kept) > self.max_snapshots:
            self._kept.popitem(last=False)

    def baseline(self, store: SnapshotStore, snapshot_id: str) -> LazySnapshot:
        lazy = LazySnapshot(store, snapshot_id)
        kept = self._kept.get(snapshot_id)
        if kept:
            lazy.seed(kept)
        return lazy


class QCService:
    """Checks snapshots of `subsystems` (None: every subsystem in the store) and stores the results."""

    def __init__(
        self,
        data_dir: Path,
        subsystems: Sequence[str] | None = None,
        consumers: Sequence[SnapshotConsumer] = (),
        options: ProcessingOptions | None = None,
        store: SnapshotStore | None = None,
        keep_status: bool = True,
    ) -> None:
        """`keep_status=False`: no `DIR/qc/status.json` (a rebuild's Dask workers: the client writes it)."""
        self.data_dir = Path(data_dir)
        self.keep_status = keep_status
        self.store = store or SnapshotStore(self.data_dir)
        self.subsystems = tuple(subsystems) if subsystems else None
        self.consumers = list(consumers)
        self.options = options or ProcessingOptions()
        self.counters = QCCounters()
        self._done: dict[tuple[str, int], set[str]] = {}
        self._references: dict[str, LazySnapshot] = {}
        self.recent = RecentContent()
        self._status_written = 0.0
        self.heartbeat_every_s = MIN_STATUS_EVERY_S  # `run_forever` sets it from its poll

    # ---- what to do ------------------------------------------------------------------------------

    def snapshots_to_check(
        self,
        run: int | None = None,
        subsystem: str | None = None,
        include_done: bool = False,
        runs: Iterable[int] | None = None,
    ) -> list[SnapshotKey]:
        """Snapshots without a `checks` file (all of them with `include_done`), oldest first; of one
        `run` or of the `runs` listed (None: every run)."""
        keys: list[SnapshotKey] = []
        wanted = None if runs is None else set(runs)
        stored = self.store.runs(subsystem=subsystem, run=run)
        for run_number, system in zip(stored["run"].tolist(), stored["subsystem"].tolist(), strict=True):
            if wanted is not None and run_number not in wanted:
                continue
            if self.subsystems is not None and system not in self.subsystems:
                continue
            done = set() if include_done else self._done_ids(system, run_number)
            keys += [
                key for key in self.store.snapshot_keys(run_number, system) if key.snapshot_id not in done
            ]
        keys.sort(key=lambda key: (key.order, key.subsystem))
        return keys

    def _done_ids(self, subsystem: str, run: int) -> set[str]:
        done = self._done.get((subsystem, run))
        if done is None:
            # Read from disk once per run: what is stored is the progress, whoever wrote it.
            done = self._done[(subsystem, run)] = done_snapshot_ids(
                self.data_dir, CHECKS_TABLE, subsystem, run
            )
        return done

    # ---- doing it --------------------------------------------------------------------------------

    def check_snapshot(self, key: SnapshotKey) -> Evaluation:
        """Evaluate one snapshot, call the consumers and publish every file (checks last)."""
        plugin = plugin_for(key.subsystem)
        meta, stored = self.store.read_snapshot(key.snapshot_id)
        run_keys = self.store.snapshot_keys(key.run, key.subsystem)
        earlier = [other for other in run_keys if other.order < key.order]
        previous = earlier[-1] if earlier else None
        if meta.merger_reset:
            baseline_key = previous
        else:
            latest_allowed = key.snapshot_time_utc - timedelta(seconds=plugin.interval_s)
            old_enough = [other for other in earlier if other.snapshot_time_utc <= latest_allowed]
            baseline_key = old_enough[-1] if old_enough else None
        baseline = self.recent.baseline(self.store, baseline_key.snapshot_id) if baseline_key else None
        snapshot = SnapshotInput(
            run=key.run,
            subsystem=key.subsystem,
            snapshot_id=key.snapshot_id,
            snapshot_time_utc=key.snapshot_time_utc,
            histograms=stored,
            beam_type=meta.beam_type,
            merger_reset=meta.merger_reset,
            baseline=baseline,
            baseline_time_utc=baseline_key.snapshot_time_utc if baseline_key else None,
            reference=self._reference(key.subsystem, meta.beam_type),
        )
        evaluation = evaluate_snapshot(plugin, snapshot, self.options)
        self.recent.learn(key.subsystem, baseline)
        self.recent.remember(key.subsystem, key.snapshot_id, stored)
        if self.consumers:  # opening the previous snapshot costs a read: only for someone to use it
            context = SnapshotContext(
                snapshot=snapshot,
                plugin=plugin,
                histograms=WithDerived(plugin, stored),
                evaluation=evaluation,
                previous_snapshot_id=previous.snapshot_id if previous else None,
                previous=self._lazy(previous),
                previous_time_utc=previous.snapshot_time_utc if previous else None,
            )
            for consumer in self.consumers:
                self._run_consumer(consumer, context)
        self._publish(key, QUALITY_TABLE, rows_to_table(evaluation.quality_rows, QUALITY_SCHEMA))
        self._publish(key, CHECKS_TABLE, evaluation.checks_table())
        self._done_ids(key.subsystem, key.run).add(key.snapshot_id)
        self.counters.snapshots_checked += 1
        self.counters.check_rows += evaluation.n_checks
        self.counters.last_snapshot_id = key.snapshot_id
        return evaluation

    def _run_consumer(self, consumer: SnapshotConsumer, context: SnapshotContext) -> None:
        key = context.snapshot
        try:
            rows = consumer.consume(context)
            if rows is None:
                return
            table = rows if isinstance(rows, pa.Table) else rows_to_table(rows, consumer.schema)
            write_snapshot_rows(self.data_dir, consumer.table, key.subsystem, key.run, key.snapshot_id, table)
        except Exception as error:
            self.counters.consumer_errors += 1
            self.counters.last_error = f"{consumer.table}: {type(error).__name__}: {error}"
            log.exception("consumer %s failed on %s", consumer.table, key.snapshot_id)

    def _publish(self, key: SnapshotKey, table_name: str, table: pa.Table) -> None:
        write_snapshot_rows(self.data_dir, table_name, key.subsystem, key.run, key.snapshot_id, table)

    def _lazy(self, key: SnapshotKey | None) -> LazySnapshot | None:
        return LazySnapshot(self.store, key.snapshot_id) if key is not None else None

    def _reference(self, subsystem: str, beam_type: str) -> LazySnapshot | None:
        reference = get_reference(self.data_dir, subsystem, beam_type)
        if reference is None:
            return None
        snapshot_id = self.store.latest_snapshot_id(reference.run, subsystem)
        if snapshot_id is None:
            return None
        cached = self._references.get(subsystem)
        if cached is None or cached.snapshot_id != snapshot_id:
            cached = self._references[subsystem] = LazySnapshot(self.store, snapshot_id)
        return cached

    def check_pending(self, stop: threading.Event | None = None, progress: ProgressBar | None = None) -> int:
        """Check every snapshot not yet done, oldest first; returns how many were checked."""
        keys = self.snapshots_to_check()
        self._note_backlog(keys)
        return self._check_all(keys, stop, progress)

    def _note_backlog(self, keys: Sequence[SnapshotKey]) -> None:
        self.counters.pending = len(keys)
        oldest = keys[0].snapshot_time_utc if keys else None
        self.counters.lag_s = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0

    def _check_all(
        self, keys: Sequence[SnapshotKey], stop: threading.Event | None, progress: ProgressBar | None
    ) -> int:
        checked = 0
        for key in keys:
            if stop is not None and stop.is_set():
                break
            try:
                self.check_snapshot(key)
                checked += 1
            except Exception as error:
                # A snapshot that cannot be read or checked is recorded as such, so it is neither
                # retried forever nor silently skipped.
                self.counters.failed_snapshots += 1
                self.counters.last_error = f"{key.snapshot_id}: {type(error).__name__}: {error}"
                log.exception("cannot check %s", key.snapshot_id)
                self._publish_failure(key, error)
            self.counters.pending = max(self.counters.pending - 1, 0)
            if progress is not None:
                progress.advance()
            self.write_status()
        return checked

    def _publish_failure(self, key: SnapshotKey, error: Exception) -> None:
        row = {
            "run": key.run,
            "subsystem": key.subsystem,
            "snapshot_id": key.snapshot_id,
            "snapshot_time_utc": key.snapshot_time_utc,
            "histogram": "",
            "check": "qc",
            "title": "QC service",
            "content": "cumulative",
            "quality": "Null",
            "message": f"could not check this snapshot: {type(error).__name__}: {error}",
            "threshold": None,
            "flagged_ids": [],
        }
        try:
            self._publish(key, CHECKS_TABLE, rows_to_table([row], CHECKS_SCHEMA))
            self._done_ids(key.subsystem, key.run).add(key.snapshot_id)
        except OSError:
            log.exception("cannot record the failure of %s", key.snapshot_id)

    def rebuild(
        self,
        run: int | None = None,
        subsystem: str | None = None,
        show_progress: bool = True,
        runs: Iterable[int] | None = None,
    ) -> int:
        """Recompute every snapshot (of one run, of the `runs` listed and/or of one subsystem), done or
        not, in this process, with a progress bar. Many runs: `pipeline.qc.rebuild` (on Dask)."""
        keys = self.snapshots_to_check(run=run, subsystem=subsystem, include_done=True, runs=runs)
        progress = ProgressBar(len(keys), label="qc rebuild", unit="snapshots") if show_progress else None
        try:
            return self._check_all(keys, None, progress)
        finally:
            if progress is not None:
                progress.close()
            self.write_status(force=True)

    def run_forever(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Follow the store until `stop` is set: check what is new, then wait `poll_s`."""
        remove_stale_temp_files(self.data_dir)
        self.heartbeat_every_s = max(poll_s, MIN_STATUS_EVERY_S)
        while not stop.is_set():
            try:
                self.check_pending(stop)
            except Exception as error:  # e.g. a listing error: log, count, and try again later
                self.counters.last_error = f"{type(error).__name__}: {error}"
                log.exception("QC pass failed")
            self.write_status(force=True)
            stop.wait(poll_s)

    def write_status(self, force: bool = False) -> None:
        """Counters and a heartbeat in `DIR/qc/status.json` (atomic), at most once a second."""
        now = time.monotonic()
        if not self.keep_status or (not force and now - self._status_written < MIN_STATUS_EVERY_S):
            return
        self._status_written = now
        path = status_path(self.data_dir)
        record = {
            **asdict(self.counters),
            "pid": os.getpid(),
            "heartbeat_utc": datetime.now(UTC).isoformat(),
            # How often a running service beats (between passes; within one, after each snapshot):
            # what `pipeline.liveness.qc_liveness` judges its heartbeat by.
            "heartbeat_every_s": self.heartbeat_every_s,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_files.write_file(path, json.dumps(record, indent=1), durable=False)
        except OSError:
            log.warning("cannot write %s", path, exc_info=True)
