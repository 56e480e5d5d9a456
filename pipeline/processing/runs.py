"""Runs as people see them: start, end, length, HLT mode, beam type, merger mode, ongoing or not, and
data source.

A run starts at its earliest snapshot of any subsystem and ends at its latest; every subsystem counts its
minutes from that start, so "minute 3" is the same moment on every page. Everything here is derived
from the stored snapshots (and the receivers' status files), so deleting derived data and asking again
gives the same answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from pipeline.processing.timeslice import MergerMode
from pipeline.status import read_all_status
from pipeline.store import SNAPSHOTS_AREA, SnapshotStore
from pipeline.store_schema import SnapshotMeta

log = logging.getLogger(__name__)

ONGOING_WITHIN_S = 300.0  # a snapshot in the last 5 minutes means the run is still going
HLT = "HLT"
# A folder listing taken less than this after the folder last changed is not reused: directory mtimes
# come from a coarse clock, so a snapshot published in the same tick would go unnoticed (as in the store).
RACY_NS = 1_000_000_000
# Receivers' status files are read at most this often for the "ongoing" flag.
STATUS_TTL_S = 2.0
TIMELINES_KEPT = 64  # runs whose timeline is kept (least recently asked for dropped)


@dataclass(frozen=True)
class RunInfo:
    run: int
    subsystem: str
    source_subsystem: str  # whose snapshots are shown: its own, or the HLT's (scenarios 1/1a/2/3)
    hlt_mode: str
    beam_type: str
    start_utc: datetime  # start of run: its earliest snapshot of any subsystem
    end_utc: datetime  # end of run: its latest snapshot of any subsystem
    n_snapshots: int  # of the source subsystem
    ongoing: bool
    # The source subsystem's own first snapshot (None when not known).
    source_start_utc: datetime | None = None
    # How the source's receiver took the data, from its newest snapshot: the mode a view uses unless
    # asked for another one.
    merger_mode: MergerMode = MergerMode.CUMULATIVE
    # Said on every view of the run, e.g. that its snapshots mix merger modes. Only the timeline
    # (`find_run`, `RunTimelines.find`) looks for them, so they take no part in comparisons.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def length_minutes(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds() / 60.0

    @property
    def uses_hlt_files(self) -> bool:
        return self.source_subsystem != self.subsystem

    def minute_of(self, moment: datetime) -> float:
        """Minutes since the start of run."""
        return (moment - self.start_utc).total_seconds() / 60.0


@dataclass(frozen=True)
class SubsystemTimeline:
    """One subsystem's snapshots in one run, oldest first, with what its newest one says."""

    subsystem: str
    snapshot_ids: list[str]
    epochs: np.ndarray  # unix seconds, float64
    first_utc: datetime
    last_utc: datetime
    hlt_mode: str
    beam_type: str
    merger_mode: MergerMode = MergerMode.CUMULATIVE
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunTimeline:
    """Every subsystem's snapshots of one run (replays excluded), from the store's file names."""

    run: int
    subsystems: dict[str, SubsystemTimeline]

    @property
    def start_utc(self) -> datetime:
        return min(timeline.first_utc for timeline in self.subsystems.values())

    @property
    def end_utc(self) -> datetime:
        return max(timeline.last_utc for timeline in self.subsystems.values())

    def source_for(self, subsystem: str) -> str | None:
        """Whose snapshots show `subsystem`: its own, else the HLT's (scenario 1), else None."""
        if subsystem in self.subsystems:
            return subsystem
        return HLT if HLT in self.subsystems else None

    def ongoing(self, now: float, live_runs: set[int]) -> bool:
        """A snapshot in the last ONGOING_WITHIN_S, or a live receiver still reporting the run."""
        return (now - self.end_utc.timestamp() < ONGOING_WITHIN_S) or self.run in live_runs

    def info(self, subsystem: str, source: str, ongoing: bool) -> RunInfo:
        own = self.subsystems[source]
        return RunInfo(
            run=self.run,
            subsystem=subsystem,
            source_subsystem=source,
            hlt_mode=own.hlt_mode or "U",
            beam_type=own.beam_type or "",
            start_utc=self.start_utc,
            end_utc=self.end_utc,
            n_snapshots=len(own.snapshot_ids),
            ongoing=ongoing,
            source_start_utc=own.first_utc,
            merger_mode=own.merger_mode,
            warnings=own.warnings,
        )


def receivers_on_run(
    data_dir: Path, now: float | None = None, dead_after_s: float = ONGOING_WITHIN_S
) -> set[int]:
    """Runs that a live receiver still reports (its last reply is recent and named that run)."""
    now = time.time() if now is None else now
    return {
        status.last_run
        for status in read_all_status(data_dir)
        # A run number > 0: run 0 is "between runs", and a negative one never names a run.
        if (status.last_run or 0) > 0 and status.last_reply_utc and now - status.last_reply_utc < dead_after_s
    }


def list_runs(
    store: SnapshotStore,
    subsystems: tuple[str, ...],
    now: float | None = None,
    run: int | None = None,
) -> list[RunInfo]:
    """One RunInfo per (run, subsystem) that can show data, newest run first (`run`: only that run).

    A subsystem without snapshots of its own in a run is shown from the HLT's snapshots (the original's
    scenario 1); as soon as its own snapshots exist it uses them (scenario 1a). HLT mode E (replay) is
    stored apart by the store and never listed here.
    """
    now = time.time() if now is None else now
    table = store.runs(run=run)
    if table.empty:
        return []
    live_runs = receivers_on_run(store.data_dir, now)
    by_key = {(int(row.run), row.subsystem): row for row in table.itertuples(index=False)}
    rows_of_run: dict[int, list] = {}
    for (run_number, _), row in by_key.items():
        rows_of_run.setdefault(run_number, []).append(row)
    infos = []
    for run_number in sorted(rows_of_run, reverse=True):
        rows = rows_of_run[run_number]
        start = min(row.first_snapshot_utc for row in rows).to_pydatetime()
        end = max(row.last_snapshot_utc for row in rows).to_pydatetime()
        for subsystem in subsystems:
            row = by_key.get((run_number, subsystem))
            source = subsystem
            if row is None and subsystem != HLT:
                row, source = by_key.get((run_number, HLT)), HLT
            if row is None:
                continue
            infos.append(
                RunInfo(
                    run=run_number,
                    subsystem=subsystem,
                    source_subsystem=source,
                    hlt_mode=row.hlt_mode or "U",
                    beam_type=row.beam_type or "",
                    start_utc=start,
                    end_utc=end,
                    n_snapshots=int(row.n_snapshots),
                    ongoing=(now - end.timestamp() < ONGOING_WITHIN_S) or run_number in live_runs,
                    source_start_utc=row.first_snapshot_utc.to_pydatetime(),
                    merger_mode=merger_mode_of(bool(row.merger_reset)),
                )
            )
    return infos


def merger_mode_of(merger_reset: bool) -> MergerMode:
    """The mode a view uses for snapshots stored with this `SnapshotMeta.merger_reset`."""
    return MergerMode.RESET if merger_reset else MergerMode.CUMULATIVE


def load_run_timeline(store: SnapshotStore, run: int, subsystems: list[str] | None = None) -> RunTimeline:
    """The run's timeline from the store's file listings (no snapshot is opened but the first and the
    newest of each subsystem: the newest's footer gives the HLT mode, beam type and merger mode, and
    the first says whether a receiver restarted with the other mode during the run)."""
    if subsystems is None:
        subsystems = [subsystem for subsystem, _ in _run_folders(store, run)]
    timelines = {}
    for subsystem in subsystems:
        keys = store.snapshot_keys(run, subsystem)
        if not keys:
            continue
        newest = store.snapshot_meta(keys[-1].snapshot_id)
        first = store.snapshot_meta(keys[0].snapshot_id)
        warnings = _mixed_modes_warning(run, subsystem, first, newest)
        if warnings and (store.data_dir, run, subsystem) not in _MIXED_LOGGED:
            _MIXED_LOGGED.add((store.data_dir, run, subsystem))
            log.warning("%s", warnings[0])
        timelines[subsystem] = SubsystemTimeline(
            subsystem=subsystem,
            snapshot_ids=[key.snapshot_id for key in keys],
            epochs=np.fromiter((key.snapshot_time_utc.timestamp() for key in keys), np.float64, len(keys)),
            first_utc=keys[0].snapshot_time_utc,
            last_utc=keys[-1].snapshot_time_utc,
            hlt_mode=newest.hlt_mode,
            beam_type=newest.beam_type,
            merger_mode=merger_mode_of(newest.merger_reset),
            warnings=warnings,
        )
    return RunTimeline(run=run, subsystems=timelines)


# (data dir, run, subsystem) already warned about in the log: a live run's timeline is rebuilt at
# every new snapshot, and one log line says it.
_MIXED_LOGGED: set[tuple[Path, int, str]] = set()


def _mixed_modes_warning(
    run: int, subsystem: str, first: SnapshotMeta, newest: SnapshotMeta
) -> tuple[str, ...]:
    """A warning when the first and the newest snapshot were taken in different merger modes (the
    receiver restarted with or without --reset mid-run): the newest one's mode is used."""
    if first.merger_reset == newest.merger_reset:
        return ()
    used = merger_mode_of(newest.merger_reset).value
    warning = (
        f"run {run} {subsystem} mixes merger modes (first snapshot "
        f"{merger_mode_of(first.merger_reset).value}, newest {used}): shown in {used} mode"
    )
    return (warning,)


def find_run(store: SnapshotStore, run: int, subsystem: str) -> RunInfo:
    """The RunInfo of one run and subsystem, read afresh from that run's folders and the receivers'
    status (`RunTimelines.find` is the cached way); LookupError if there is no data."""
    timeline = load_run_timeline(store, run)
    source = timeline.source_for(subsystem)
    if source is None:
        raise LookupError(f"no data for run {run}, subsystem {subsystem}")
    now = time.time()
    return timeline.info(subsystem, source, timeline.ongoing(now, receivers_on_run(store.data_dir, now)))


class RunTimelines:
    """Run timelines and receivers' status, reused while nothing changed: a dashboard asks for the same
    run every few seconds, and listing, sorting and parsing hundreds of snapshot names each time would
    be most of the cost of a cached view.

    A run's timeline is reused while none of its folders changed (by mtime, one stat per subsystem);
    the status files are read at most every STATUS_TTL_S.
    """

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self._timelines: OrderedDict[int, tuple[tuple, RunTimeline]] = OrderedDict()
        self._live: tuple[float, set[int]] = (-float("inf"), set())
        self._lock = threading.Lock()

    def timeline(self, run: int) -> RunTimeline:
        listed_at_ns = time.time_ns()
        folders = tuple(_run_folders(self.store, run))
        with self._lock:
            cached = self._timelines.get(run)
            if cached is not None and cached[0] == folders:
                self._timelines.move_to_end(run)
                return cached[1]
        timeline = load_run_timeline(self.store, run, [subsystem for subsystem, _ in folders])
        newest_change = max((mtime for _, mtime in folders), default=0)
        with self._lock:
            if listed_at_ns - newest_change > RACY_NS:
                self._timelines[run] = (folders, timeline)
                self._timelines.move_to_end(run)
                while len(self._timelines) > TIMELINES_KEPT:
                    self._timelines.popitem(last=False)
            else:
                self._timelines.pop(run, None)
        return timeline

    def live_runs(self, now: float) -> set[int]:
        read_at, runs = self._live
        if not 0 <= now - read_at < STATUS_TTL_S:
            runs = receivers_on_run(self.store.data_dir, now)
            self._live = (now, runs)
        return runs

    def find(self, run: int, subsystem: str) -> tuple[RunInfo, RunTimeline]:
        """The RunInfo of one run and subsystem and the run's timeline; LookupError if no data."""
        timeline = self.timeline(run)
        source = timeline.source_for(subsystem)
        if source is None:
            raise LookupError(f"no data for run {run}, subsystem {subsystem}")
        now = time.time()
        return timeline.info(subsystem, source, timeline.ongoing(now, self.live_runs(now))), timeline


def _run_folders(store: SnapshotStore, run: int) -> list[tuple[str, int]]:
    """(subsystem, folder mtime in ns) of every subsystem with a folder for `run`, in the store's
    documented layout `snapshots/subsystem=<SYS>/run=<N>/` (replays live elsewhere and are skipped)."""
    area = store.data_dir / SNAPSHOTS_AREA
    folders = []
    try:
        entries = sorted(os.scandir(area), key=lambda entry: entry.name)
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.name.startswith("subsystem="):
            continue
        try:
            mtime_ns = os.stat(os.path.join(entry.path, f"run={run}")).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            continue
        folders.append((entry.name.removeprefix("subsystem="), mtime_ns))
    return folders
