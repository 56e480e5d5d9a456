"""Writing and reading the per-snapshot QC files: atomic replace on write, plain Parquet on read.

Files are replaced with `atomic_files.write_file`, so a reader (or a restarted QC service) sees either
the old complete file or the new one, never half of one, and processing a snapshot again replaces its
rows instead of adding to them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import atomic_files
from pipeline.qc.paths import QUALITY_TABLE, SUFFIX, qc_dir, run_dir, snapshot_result_path, table_dir
from pipeline.qc.schema import QUALITY_SCHEMA


def write_snapshot_rows(
    data_dir: Path, table_name: str, subsystem: str, run: int, snapshot_id: str, table: pa.Table
) -> Path:
    """Publish the rows of one snapshot for one table, replacing any earlier file for it."""
    path = snapshot_result_path(data_dir, table_name, subsystem, run, snapshot_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not durable: atomic against a killed writer, which is what restarts need; after a power cut a
    # file lost can be recomputed (`rebuild`), and two fsyncs would double the cost.
    atomic_files.write_file(
        path, lambda target: pq.write_table(table, target, compression="zstd"), durable=False
    )
    return path


def remove_stale_temp_files(data_dir: Path, max_age_s: float = 3600.0) -> int:
    """Delete the temp files killed writers left in `DIR/qc/` (its state files and every table's run
    folders); how many. See `atomic_files.remove_stale_temp_files`."""
    base = qc_dir(data_dir)
    folders = [base, *base.glob("*/"), *base.glob("*/subsystem=*/run=*")]
    return atomic_files.remove_stale_temp_files(folders, max_age_s)


def done_snapshot_ids(data_dir: Path, table_name: str, subsystem: str, run: int) -> set[str]:
    """Ids of the snapshots of one run that have a file in `table_name` (names only, nothing read)."""
    try:
        entries = os.scandir(run_dir(data_dir, table_name, subsystem, run))
    except FileNotFoundError:
        return set()
    with entries:
        return {
            entry.name[: -len(SUFFIX)]
            for entry in entries
            if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")
        }


def result_files(
    data_dir: Path, table_name: str, subsystem: str | None = None, run: int | None = None
) -> list[Path]:
    """Every published file of a table, optionally of one subsystem and/or run, in a stable order."""
    base = table_dir(data_dir, table_name)
    subsystem_glob = f"subsystem={subsystem}" if subsystem else "subsystem=*"
    run_glob = f"run={run}" if run is not None else "run=*"
    return sorted(path for path in base.glob(f"{subsystem_glob}/{run_glob}/*{SUFFIX}") if path.name[0] != ".")


def read_results(
    data_dir: Path,
    table_name: str,
    schema: pa.Schema,
    subsystem: str | None = None,
    run: int | None = None,
) -> pd.DataFrame:
    """One QC table (or its rows of one subsystem/run) as a DataFrame, in file then row order."""
    tables = [
        pq.read_table(path, schema=schema) for path in result_files(data_dir, table_name, subsystem, run)
    ]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return table.to_pandas()


def write_json_atomically(path: Path, value: object) -> None:
    """Replace a small JSON state file (alarm mutes, thresholds...) so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not fsynced, as before: these files change often (alarm progress) and a power cut is rare.
    atomic_files.write_file(path, json.dumps(value, indent=1, sort_keys=True), durable=False)


def latest_quality(data_dir: Path, run: int) -> pd.DataFrame:
    """The newest `quality` row of each group and subsystem in one run (what a control-room tile
    shows): the columns of `QUALITY_SCHEMA`, one row per (subsystem, level, name)."""
    rows = read_results(data_dir, QUALITY_TABLE, QUALITY_SCHEMA, run=run)
    if rows.empty:
        return rows
    newest = rows.groupby(["subsystem", "level", "name"], sort=True)["snapshot_time_utc"].idxmax()
    return rows.loc[newest.to_numpy()].reset_index(drop=True)
