"""Where the QC results live under the data directory: the one place that knows these paths.

Each table is a folder of Parquet files, hive-partitioned like the snapshots, one file per snapshot
named by its id, so `read_parquet('DIR/qc/checks/**/*.parquet', hive_partitioning=true)` reads a table
and re-running QC on a snapshot replaces its file instead of adding rows:

    DIR/qc/checks/subsystem=<SYS>/run=<N>/<snapshot_id>.parquet     (this package: check verdicts)
    DIR/qc/quality/subsystem=<SYS>/run=<N>/<snapshot_id>.parquet    (this package: group/subsystem)
    DIR/qc/trends/...                                               (trending: `pipeline.qc.trending`)
    DIR/qc/alarms/...                                               (alarms: `pipeline.qc.alarms`)
    DIR/qc/references.json                                          (reference runs, who set them)
    DIR/qc/status.json                                              (QC service counters)
"""

from __future__ import annotations

from pathlib import Path

QC_AREA = "qc"
CHECKS_TABLE = "checks"
QUALITY_TABLE = "quality"
TRENDS_TABLE = "trends"
ALARMS_TABLE = "alarms"
REFERENCES_FILE = "references.json"
STATUS_FILE = "status.json"
SUFFIX = ".parquet"


def qc_dir(data_dir: Path) -> Path:
    return Path(data_dir) / QC_AREA


def table_dir(data_dir: Path, table: str) -> Path:
    """`DIR/qc/<table>`: the folder of one table (checks, quality, trends, alarms)."""
    return qc_dir(data_dir) / table


def table_glob(data_dir: Path, table: str) -> str:
    """The glob DuckDB's `read_parquet` takes for every file of one table."""
    return str(table_dir(data_dir, table) / "subsystem=*" / "run=*" / f"*{SUFFIX}")


def run_dir(data_dir: Path, table: str, subsystem: str, run: int) -> Path:
    return table_dir(data_dir, table) / f"subsystem={subsystem}" / f"run={run}"


def snapshot_result_path(data_dir: Path, table: str, subsystem: str, run: int, snapshot_id: str) -> Path:
    """The one file of `table` that holds the rows of one snapshot."""
    return run_dir(data_dir, table, subsystem, run) / f"{snapshot_id}{SUFFIX}"


def references_path(data_dir: Path) -> Path:
    return qc_dir(data_dir) / REFERENCES_FILE


def status_path(data_dir: Path) -> Path:
    return qc_dir(data_dir) / STATUS_FILE
