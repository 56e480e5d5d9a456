"""Runs as people see them: start, end, length, HLT mode, beam type, ongoing or not, and data source.

Everything here is derived from the stored snapshots (and the receivers' status files), so deleting
derived data and asking again gives the same answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.status import read_all_status
from pipeline.store import SnapshotStore

ONGOING_WITHIN_S = 300.0  # a snapshot in the last 5 minutes means the run is still going
HLT = "HLT"


@dataclass(frozen=True)
class RunInfo:
    run: int
    subsystem: str
    source_subsystem: str  # whose snapshots are shown: its own, or the HLT's (scenarios 1/1a/2/3)
    hlt_mode: str
    beam_type: str
    start_utc: datetime
    end_utc: datetime
    n_snapshots: int
    ongoing: bool

    @property
    def length_minutes(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds() / 60.0

    @property
    def uses_hlt_files(self) -> bool:
        return self.source_subsystem != self.subsystem


def receivers_on_run(
    data_dir: Path, now: float | None = None, dead_after_s: float = ONGOING_WITHIN_S
) -> set[int]:
    """Runs that a live receiver still reports (its last reply is recent and named that run)."""
    now = time.time() if now is None else now
    return {
        status.last_run
        for status in read_all_status(data_dir)
        if status.last_run and status.last_reply_utc and now - status.last_reply_utc < dead_after_s
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
    infos = []
    for run_number in sorted({key[0] for key in by_key}, reverse=True):
        for subsystem in subsystems:
            row = by_key.get((run_number, subsystem))
            source = subsystem
            if row is None and subsystem != HLT:
                row, source = by_key.get((run_number, HLT)), HLT
            if row is None:
                continue
            last = row.last_snapshot_utc.to_pydatetime()
            infos.append(
                RunInfo(
                    run=run_number,
                    subsystem=subsystem,
                    source_subsystem=source,
                    hlt_mode=row.hlt_mode or "U",
                    beam_type=row.beam_type or "",
                    start_utc=row.first_snapshot_utc.to_pydatetime(),
                    end_utc=last,
                    n_snapshots=int(row.n_snapshots),
                    ongoing=(now - last.timestamp() < ONGOING_WITHIN_S) or run_number in live_runs,
                )
            )
    return infos


def find_run(store: SnapshotStore, run: int, subsystem: str, subsystems: tuple[str, ...] = ()) -> RunInfo:
    """The RunInfo of one run and subsystem from that run's folder alone; LookupError if no data.

    The dashboard asks this on every refresh, so it avoids the pandas listings `list_runs` uses.
    """
    source = subsystem
    keys = store.snapshot_keys(run, subsystem)
    if not keys and subsystem != HLT:
        source, keys = HLT, store.snapshot_keys(run, HLT)
    if not keys:
        raise LookupError(f"no data for run {run}, subsystem {subsystem}")
    newest = store.snapshot_meta(keys[-1].snapshot_id)
    now = time.time()
    last = keys[-1].snapshot_time_utc
    return RunInfo(
        run=run,
        subsystem=subsystem,
        source_subsystem=source,
        hlt_mode=newest.hlt_mode or "U",
        beam_type=newest.beam_type or "",
        start_utc=keys[0].snapshot_time_utc,
        end_utc=last,
        n_snapshots=len(keys),
        ongoing=(now - last.timestamp() < ONGOING_WITHIN_S) or run in receivers_on_run(store.data_dir, now),
    )
