"""Runs as people see them: start, end, length, HLT mode, beam type, merger mode, ongoing or not, and
data source. This module is the one builder of run information (`RunInfo` per run and subsystem,
`RunSummary` per run); pages get both through the processing service.

A run starts at its earliest snapshot of any subsystem and ends at its latest; every subsystem counts its
minutes from that start, so "minute 3" is the same moment on every page. Everything here is derived
from the stored snapshots (and the receivers' status files), so deleting derived data and asking again
gives the same answer.

Ongoing (`is_ongoing`): a run is ongoing while a receiver's merger names it in a recent reply; it has
ended as soon as one of its own receivers (a subsystem with snapshots in it) answers, after the run's
newest snapshot, with another run or run 0. With no such report (receivers stopped, status files
gone) it is ongoing while its newest snapshot is younger than ONGOING_WITHIN_S.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from pipeline.processing.timeslice import MergerMode
from pipeline.status import read_all_status
from pipeline.store import RACY_NS, SNAPSHOTS_AREA, BoundedCache, SnapshotStore
from pipeline.store_schema import SnapshotMeta

log = logging.getLogger(__name__)

ONGOING_WITHIN_S = 300.0  # a snapshot in the last 5 minutes means the run is still going
HLT = "HLT"
# Receivers' status files are read at most this often for the "ongoing" flag.
STATUS_TTL_S = 2.0
TIMELINES_KEPT = 64  # runs whose timeline is kept (least recently asked for dropped)
# ...and the snapshots they list in all (~0.1 KB each): a run of a day holds tens of thousands, so a
# count of runs alone would let a long-running dashboard keep a hundred MB of names.
TIMELINE_SNAPSHOTS_KEPT = 100_000
CERN_TIME_ZONE = ZoneInfo("Europe/Zurich")
# A receiver's report (the run its merger named) older than a snapshot by less than this still counts
# as after it: the status file is written right after the snapshot of the same reply.
REPORT_SLACK_S = 1.0

# subsystem -> (run named by the merger's last reply, 0 between runs; time of that reply, unix s)
Reports = dict[str, tuple[int, float]]


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
    def start_cern(self) -> datetime:
        """The start in CERN local time (Europe/Zurich), as the original showed it."""
        return self.start_utc.astimezone(CERN_TIME_ZONE)

    @property
    def uses_hlt_files(self) -> bool:
        return self.source_subsystem != self.subsystem

    def minute_of(self, moment: datetime) -> float:
        """Minutes since the start of run."""
        return (moment - self.start_utc).total_seconds() / 60.0


@dataclass(frozen=True)
class RunSummary:
    """One run as a run list shows it: when, how long, how, whether it goes on, who has data."""

    run: int
    start_utc: datetime
    end_utc: datetime
    hlt_mode: str
    beam_type: str
    ongoing: bool
    subsystems: tuple[str, ...]  # that can show data (their own snapshots or the HLT's), settings order
    own_subsystems: tuple[str, ...]  # that have snapshots of their own

    @property
    def length_minutes(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds() / 60.0

    @property
    def start_cern(self) -> datetime:
        return self.start_utc.astimezone(CERN_TIME_ZONE)


def summarize_runs(infos: Iterable[RunInfo]) -> list[RunSummary]:
    """`list_runs` per run (its order kept): HLT mode and beam type from the first subsystem with its
    own snapshots (they name the same run, so they agree unless a receiver did not know)."""
    by_run: dict[int, list[RunInfo]] = {}
    for info in infos:
        by_run.setdefault(info.run, []).append(info)
    summaries = []
    for run, run_infos in by_run.items():
        own = [info for info in run_infos if not info.uses_hlt_files]
        described = (own or run_infos)[0]
        summaries.append(
            RunSummary(
                run=run,
                start_utc=described.start_utc,
                end_utc=described.end_utc,
                hlt_mode=described.hlt_mode,
                beam_type=described.beam_type,
                ongoing=described.ongoing,
                subsystems=tuple(info.subsystem for info in run_infos),
                own_subsystems=tuple(info.subsystem for info in own),
            )
        )
    return summaries


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
    def snapshot_count(self) -> int:
        return sum(len(timeline.snapshot_ids) for timeline in self.subsystems.values())

    @property
    def end_utc(self) -> datetime:
        return max(timeline.last_utc for timeline in self.subsystems.values())

    def source_for(self, subsystem: str) -> str | None:
        """Whose snapshots show `subsystem`: its own, else the HLT's (scenario 1), else None."""
        if subsystem in self.subsystems:
            return subsystem
        return HLT if HLT in self.subsystems else None

    def ongoing(self, now: float, reports: Reports) -> bool:
        return is_ongoing(self.run, self.subsystems, self.end_utc.timestamp(), now, reports)

    def info(self, subsystem: str, source: str, ongoing: bool) -> RunInfo:
        own = self.subsystems[source]
        return run_info(
            self.run,
            subsystem,
            source,
            (self.start_utc, self.end_utc),
            ongoing,
            hlt_mode=own.hlt_mode,
            beam_type=own.beam_type,
            n_snapshots=len(own.snapshot_ids),
            source_start_utc=own.first_utc,
            merger_mode=own.merger_mode,
            warnings=own.warnings,
        )


def run_info(
    run: int,
    subsystem: str,
    source: str,
    span_utc: tuple[datetime, datetime],
    ongoing: bool,
    hlt_mode: str | None,
    beam_type: str | None,
    n_snapshots: int,
    source_start_utc: datetime | None,
    merger_mode: MergerMode,
    warnings: tuple[str, ...] = (),
) -> RunInfo:
    """The one place a RunInfo is made (defaults for what a receiver did not know included)."""
    return RunInfo(
        run=run,
        subsystem=subsystem,
        source_subsystem=source,
        hlt_mode=hlt_mode or "U",
        beam_type=beam_type or "",
        start_utc=span_utc[0],
        end_utc=span_utc[1],
        n_snapshots=n_snapshots,
        ongoing=ongoing,
        source_start_utc=source_start_utc,
        merger_mode=merger_mode,
        warnings=warnings,
    )


def is_ongoing(
    run: int, run_subsystems: Iterable[str], end_epoch: float, now: float, reports: Reports
) -> bool:
    """The rule of the module docstring: reported -> ongoing; its own receivers moved on -> ended;
    no word from them -> by the age of its newest snapshot."""
    if any(reported == run for reported, _ in reports.values()):
        return True
    if any(
        reports[subsystem][1] >= end_epoch - REPORT_SLACK_S
        for subsystem in run_subsystems
        if subsystem in reports
    ):
        return False
    return now - end_epoch < ONGOING_WITHIN_S


def merger_reports(data_dir: Path, now: float | None = None, within_s: float = ONGOING_WITHIN_S) -> Reports:
    """What each receiver's merger said in its last reply, if that reply is younger than `within_s`:
    the run it named (a negative number counts as 0: it never names a run) and when."""
    now = time.time() if now is None else now
    return {
        status.subsystem: (max(status.last_run or 0, 0), status.last_reply_utc)
        for status in read_all_status(data_dir)
        if status.last_run is not None and status.last_reply_utc and now - status.last_reply_utc < within_s
    }


def reported_runs(reports: Reports) -> set[int]:
    """Runs (> 0) some receiver's merger still names."""
    return {run for run, _ in reports.values() if run > 0}


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
    stored = store.run_rows(run=run)  # plain rows: a DataFrame of every run costs more than the listing
    if not stored:
        return []
    reports = merger_reports(store.data_dir, now)
    by_key = {(row["run"], row["subsystem"]): row for row in stored}
    rows_of_run: dict[int, list] = {}
    for (run_number, _), row in by_key.items():
        rows_of_run.setdefault(run_number, []).append(row)
    infos = []
    for run_number in sorted(rows_of_run, reverse=True):
        rows = rows_of_run[run_number]
        start = min(row["first_snapshot_utc"] for row in rows)
        end = max(row["last_snapshot_utc"] for row in rows)
        ongoing = is_ongoing(run_number, [r["subsystem"] for r in rows], end.timestamp(), now, reports)
        for subsystem in subsystems:
            row = by_key.get((run_number, subsystem))
            source = subsystem
            if row is None and subsystem != HLT:
                row, source = by_key.get((run_number, HLT)), HLT
            if row is None:
                continue
            infos.append(
                run_info(
                    run_number,
                    subsystem,
                    source,
                    (start, end),
                    ongoing,
                    hlt_mode=row["hlt_mode"],
                    beam_type=row["beam_type"],
                    n_snapshots=row["n_snapshots"],
                    source_start_utc=row["first_snapshot_utc"],
                    merger_mode=merger_mode_of(row["merger_reset"]),
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
    return timeline.info(subsystem, source, timeline.ongoing(now, merger_reports(store.data_dir, now)))


class RunTimelines:
    """Run timelines and receivers' status, reused while nothing changed: a dashboard asks for the same
    run every few seconds, and listing, sorting and parsing hundreds of snapshot names each time would
    be most of the cost of a cached view.

    A run's timeline is reused while none of its folders changed (by mtime, one stat per subsystem);
    the status files are read at most every STATUS_TTL_S.
    """

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self._timelines: BoundedCache[int, tuple[tuple, RunTimeline]] = BoundedCache(
            TIMELINES_KEPT, max_weight=TIMELINE_SNAPSHOTS_KEPT, weight=lambda cached: cached[1].snapshot_count
        )
        self._reports: tuple[float, Reports] = (-float("inf"), {})

    def timeline(self, run: int) -> RunTimeline:
        listed_at_ns = time.time_ns()
        folders = tuple(_run_folders(self.store, run))
        cached = self._timelines.get(run)
        if cached is not None and cached[0] == folders:
            return cached[1]
        timeline = load_run_timeline(self.store, run, [subsystem for subsystem, _ in folders])
        newest_change = max((mtime for _, mtime in folders), default=0)
        # The store's rule for its folder listings: a timeline read in the tick of a change is not kept.
        if listed_at_ns - newest_change > RACY_NS:
            self._timelines[run] = (folders, timeline)
        else:
            self._timelines.pop(run, None)
        return timeline

    def reports(self, now: float) -> Reports:
        """`merger_reports`, read at most every STATUS_TTL_S."""
        read_at, reports = self._reports
        if not 0 <= now - read_at < STATUS_TTL_S:
            reports = merger_reports(self.store.data_dir, now)
            self._reports = (now, reports)
        return reports

    def current(self, subsystems: Sequence[str]) -> RunSummary | None:
        """The run a control room shows: the newest run a receiver's merger names, else the newest run
        stored; from cached timelines, so cheap enough for every refresh. None without any run."""
        now = time.time()
        run = max(reported_runs(self.reports(now)), default=None) or newest_run_number(self.store)
        if run is None:
            return None
        timeline = self.timeline(run)
        if not timeline.subsystems:
            return None
        ongoing = timeline.ongoing(now, self.reports(now))
        infos = [
            timeline.info(subsystem, source, ongoing)
            for subsystem in subsystems
            if (source := timeline.source_for(subsystem)) is not None
        ]
        summaries = summarize_runs(infos)
        return summaries[0] if summaries else None

    def find(self, run: int, subsystem: str) -> tuple[RunInfo, RunTimeline]:
        """The RunInfo of one run and subsystem and the run's timeline; LookupError if no data."""
        timeline = self.timeline(run)
        source = timeline.source_for(subsystem)
        if source is None:
            raise LookupError(f"no data for run {run}, subsystem {subsystem}")
        now = time.time()
        return timeline.info(subsystem, source, timeline.ongoing(now, self.reports(now))), timeline


def newest_run_number(store: SnapshotStore) -> int | None:
    """The highest run number with a folder in the store's layout `snapshots/subsystem=<SYS>/run=<N>/`
    (one directory listing per subsystem: no snapshot is opened)."""
    area = store.data_dir / SNAPSHOTS_AREA
    newest = None
    try:
        subsystems = [entry.path for entry in os.scandir(area) if entry.name.startswith("subsystem=")]
    except FileNotFoundError:
        return None
    for folder in subsystems:
        try:
            names = [entry.name for entry in os.scandir(folder) if entry.name.startswith("run=")]
        except OSError:
            continue
        for name in names:
            try:
                number = int(name.removeprefix("run="))
            except ValueError:
                continue
            newest = number if newest is None else max(newest, number)
    return newest


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
