"""Emulated runs recorded into a store as the receivers would (one snapshot per subsystem and time),
shared by the QC tests. Times are minutes since the start of the first run."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.settings import DEFAULT_SELECTIONS
from pipeline.store import SnapshotStore
from pipeline.store_schema import SnapshotMeta
from tests.clocks import ManualClock

T0 = 1_767_000_000.0  # start of the first run (POSIX seconds)


def record_runs(
    store: SnapshotStore,
    minutes_per_run: dict[int, Iterable[float]],
    faults: str = "none",
    run_length_s: float = 300.0,
    run_gap_s: float = 10.0,
    step_s: float = 6.0,
    subsystems: tuple[str, ...] = ("EMC", "TPC", "HLT"),
) -> SyntheticRuns:
    """Record snapshots of run index i at its `minutes_per_run[i]`; returns the emulator (its truth)."""
    clock = ManualClock(T0)
    config = EmulatorConfig(
        start_time_utc=T0, run_length_s=run_length_s, run_gap_s=run_gap_s, step_s=step_s, faults=faults
    )
    runs = SyntheticRuns(subsystems, config, now=clock)
    for run_index, minutes in sorted(minutes_per_run.items()):
        for minute in minutes:
            clock.time_utc = runs.schedule.run_start_utc(run_index) + 60.0 * minute
            runs.advance()
            held = runs.snapshot()
            time_utc = datetime.fromtimestamp(clock.time_utc, UTC)
            for subsystem in subsystems:
                names = [name for name in held if re.search(DEFAULT_SELECTIONS[subsystem], name)]
                meta = SnapshotMeta(runs.run_number, subsystem, time_utc, "B", "pp")
                store.write_snapshot(meta, [held[name] for name in names])
    return runs


def minute_of(runs: SyntheticRuns, run_number: int, time_utc: datetime) -> float:
    start = runs.schedule.run_start_utc(runs.schedule.run_index(run_number))
    return (time_utc.timestamp() - start) / 60.0
