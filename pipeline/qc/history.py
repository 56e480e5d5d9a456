"""Hot-channel history: per subsystem and channel id, the runs and minutes in which a check flagged it.

Read from the `checks` table alone (plain DuckDB over its Parquet files), for the checks whose plug-in
spec says `tracks_channels` (hot FastORs, noisy cells...). Minutes count from the start of the run,
i.e. its first checked snapshot of any subsystem. A channel is `new` in a run when no earlier run ever
flagged it (for the same check): the one a shifter should look at first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.detectors import plugin_for
from pipeline.qc.paths import CHECKS_TABLE, table_glob
from pipeline.qc.results import result_files

HISTORY_COLUMNS = {
    "subsystem": "str",
    "check": "str",
    "channel_id": "int64",
    "run": "int64",
    "first_minute": "float64",
    "last_minute": "float64",
    "n_snapshots": "int64",
    "minutes": "object",
    "first_flagged_utc": "datetime64[us, UTC]",
    "last_flagged_utc": "datetime64[us, UTC]",
    "new": "bool",
}


def tracked_checks(subsystem: str) -> list[str]:
    """The checks of a subsystem whose flagged channels have a history (declared by its plug-in)."""
    return [spec.name for spec in plugin_for(subsystem).check_specs if spec.tracks_channels]


def channel_history(
    data_dir: Path,
    subsystem: str,
    run: int | None = None,
    checks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (check, channel, run) in which that check flagged that channel, oldest run first.

    Columns: subsystem, check, channel_id, run, first_minute, last_minute (minutes since the start of
    the run), n_snapshots (snapshots that flagged it), minutes (the minute of each of those snapshots,
    to 0.01), first_flagged_utc, last_flagged_utc, and `new`
    (no earlier run flagged it). `run` keeps only that run's rows (`new` still compares with every
    earlier run); `checks` defaults to `tracked_checks(subsystem)`.
    """
    checks = list(tracked_checks(subsystem) if checks is None else checks)
    if not checks or not result_files(data_dir, CHECKS_TABLE, subsystem):
        return _empty()
    every_subsystem = table_glob(data_dir, CHECKS_TABLE)
    query = """
        with rows as (
            select run, subsystem, snapshot_time_utc, "check", flagged_ids
            from read_parquet($glob, hive_partitioning = false)
        ),
        starts as (select run, min(snapshot_time_utc) as start_utc from rows group by run),
        flags as (
            select distinct subsystem, "check", run, snapshot_time_utc, unnest(flagged_ids) as channel_id
            from rows
            where subsystem = $subsystem and list_contains($checks, "check") and len(flagged_ids) > 0
        ),
        timed as (
            select f.*, (epoch(f.snapshot_time_utc) - epoch(s.start_utc)) / 60.0 as minute
            from flags f join starts s using (run)
        ),
        per_run as (
            select subsystem, "check", channel_id, run,
                   min(minute) as first_minute,
                   max(minute) as last_minute,
                   count(distinct snapshot_time_utc) as n_snapshots,
                   list_sort(list(distinct round(minute, 2))) as minutes,
                   min(snapshot_time_utc) as first_flagged_utc,
                   max(snapshot_time_utc) as last_flagged_utc
            from timed
            group by all
        )
        select *, run = min(run) over (partition by subsystem, "check", channel_id) as new
        from per_run
        order by run, "check", channel_id
    """
    with duckdb.connect() as connection:
        frame = connection.execute(
            query, {"glob": every_subsystem, "subsystem": subsystem, "checks": checks}
        ).df()
    if run is not None:
        frame = frame[frame["run"] == run]
    return frame.reset_index(drop=True).astype(HISTORY_COLUMNS)


def new_channels(data_dir: Path, subsystem: str, run: int) -> pd.DataFrame:
    """The channels flagged in `run` that no earlier run flagged."""
    history = channel_history(data_dir, subsystem, run=run)
    return history[history["new"]].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in HISTORY_COLUMNS.items()})
