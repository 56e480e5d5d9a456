"""The trends table: its schema, and the reads of `DIR/qc/trends` (one Parquet file per processed
snapshot, written by the QC service: `pipeline.qc.results`).

    <data_dir>/qc/trends/subsystem=<SYS>/run=<N>/<snapshot_id>.parquet

The read side answers what a trending page needs: one quantity against time within a
run, and one value per run (the run's last cumulative value) across runs.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.qc.paths import SUFFIX, TRENDS_TABLE, run_dir, table_dir
from pipeline.qc.trending import CONTENTS, CUMULATIVE, TREND_COLUMNS
from pipeline.store_schema import described_field, schema_markdown

TRENDS_SCHEMA = pa.schema(
    [
        described_field("run", pa.int64(), "run number (also the `run=` folder)"),
        described_field("subsystem", pa.string(), "EMC, TPC, HLT, ... (also the `subsystem=` folder)"),
        described_field("snapshot_id", pa.string(), "the snapshot the value comes from"),
        described_field(
            "snapshot_time_utc", pa.timestamp("us", tz="UTC"), "when that snapshot was received: the x axis"
        ),
        described_field(
            "interval_start_utc",
            pa.timestamp("us", tz="UTC"),
            "start of what the value covers: the subsystem's first snapshot of the run (`cumulative`) "
            "or the previous snapshot's time (`interval`; for the first snapshot, its own time)",
        ),
        described_field(
            "content",
            pa.string(),
            "`cumulative` (everything since the start of run) or `interval` (since the previous snapshot)",
        ),
        described_field("histogram", pa.string(), "histogram name as stored"),
        described_field(
            "quantity", pa.string(), "mean, std_dev, maximum, entries, hot_channels, events_per_minute"
        ),
        described_field("value", pa.float64(), "the trended value"),
        described_field("error", pa.float64(), "its statistical error (0 for counts)"),
    ]
)
assert tuple(TRENDS_SCHEMA.names) == TREND_COLUMNS


def trends_schema_markdown() -> str:
    """The README table of the trends columns."""
    return schema_markdown(TRENDS_SCHEMA)


# Runs whose rows a TrendStore keeps in memory (least recently used dropped): a trending page looks
# at a few runs, each read once and then only its new or replaced files.
CACHED_RUNS = 8
FileStamp = tuple[int, int]  # (inode, mtime_ns)


class TrendStore:
    """Reads the trends table of one data folder; safe to share between threads."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = table_dir(data_dir, TRENDS_TABLE)
        # (run, subsystem) -> ({file name: (inode, mtime_ns)} read, their rows)
        self._cache: OrderedDict[tuple[int, str], tuple[dict[str, tuple[int, int]], pd.DataFrame]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def run_dir(self, run: int, subsystem: str) -> Path:
        return run_dir(self.data_dir, TRENDS_TABLE, subsystem, int(run))

    def snapshot_ids(self, run: int, subsystem: str) -> list[str]:
        """Ids of the snapshots of one run with stored trends, oldest first (ids sort by time)."""
        directory = self.run_dir(run, subsystem)
        if not directory.is_dir():
            return []
        return sorted(p.name.removesuffix(SUFFIX) for p in directory.glob(f"*{SUFFIX}"))

    def runs(self, subsystem: str) -> list[int]:
        directory = self.root / f"subsystem={subsystem}"
        if not directory.is_dir():
            return []
        return sorted(int(p.name.removeprefix("run=")) for p in directory.glob("run=*") if p.is_dir())

    def _files(self, run: int, subsystem: str) -> list[str]:
        directory = self.run_dir(run, subsystem)
        return [
            str(directory / f"{snapshot_id}{SUFFIX}") for snapshot_id in self.snapshot_ids(run, subsystem)
        ]

    def _query(self, files: list[str], where: str, parameters: list) -> pd.DataFrame:
        if not files:
            return _empty()
        with duckdb.connect() as connection:
            return connection.execute(
                f"select * from read_parquet(?) where {where} "
                "order by snapshot_time_utc, histogram, quantity",
                [files, *parameters],
            ).df()

    def rows(self, run: int, subsystem: str, snapshot_ids: list[str]) -> pd.DataFrame:
        """The rows of some snapshots of one run (those with a trends file)."""
        directory = self.run_dir(run, subsystem)
        # A few files (what alarms look back at): pyarrow alone, without a DuckDB connection to set up.
        tables = []
        for snapshot_id in snapshot_ids:
            try:
                tables.append(pq.read_table(directory / f"{snapshot_id}{SUFFIX}", schema=TRENDS_SCHEMA))
            except FileNotFoundError:
                continue
        return pa.concat_tables(tables).to_pandas() if tables else _empty()

    def table(self, run: int, subsystem: str) -> pd.DataFrame:
        """Every row of one run and subsystem, by time, histogram and quantity (a copy)."""
        return self._run_rows(run, subsystem).copy()

    def _run_rows(self, run: int, subsystem: str) -> pd.DataFrame:
        """The run's rows, from memory plus the files that are new or replaced since the last call."""
        key = (int(run), subsystem)
        directory = self.run_dir(run, subsystem)
        try:
            with os.scandir(directory) as entries:
                current = {
                    # A replaced file is a new inode (written aside, then renamed over): mtimes alone
                    # can tie within the file system's clock tick.
                    entry.name: (entry.inode(), entry.stat().st_mtime_ns)
                    for entry in entries
                    if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")
                }
        except FileNotFoundError:
            current = {}
        with self._lock:
            read, frame = self._cache.get(key, ({}, _empty()))
            changed = sorted(name for name, mtime in current.items() if read.get(name) != mtime)
            stale = {n.removesuffix(SUFFIX) for n in changed} | {
                n.removesuffix(SUFFIX) for n in read if n not in current
            }
            if stale:
                kept = frame[~frame["snapshot_id"].isin(stale)]
                new = self._query([str(directory / name) for name in changed], "true", [])
                frame = pd.concat([kept, new], ignore_index=True) if len(kept) else new
                frame = frame.sort_values(["snapshot_time_utc", "histogram", "quantity"], kind="stable")
                frame = frame.reset_index(drop=True)
            self._cache[key] = (current, frame)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHED_RUNS:
                self._cache.popitem(last=False)
            return frame

    def series(
        self, run: int, subsystem: str, histogram: str, quantity: str, content: str = CUMULATIVE
    ) -> pd.DataFrame:
        """One quantity against time within a run: columns snapshot_time_utc, interval_start_utc,
        value, error, oldest first. ValueError naming `content` if it is not a known one."""
        _check_content(content)
        frame = self._run_rows(run, subsystem)
        selected = (
            (frame["histogram"] == histogram)
            & (frame["quantity"] == quantity)
            & (frame["content"] == content)
        )
        return frame.loc[selected, ["snapshot_time_utc", "interval_start_utc", "value", "error"]].reset_index(
            drop=True
        )

    def per_run(
        self, subsystem: str, histogram: str, quantity: str, runs: list[int] | None = None
    ) -> pd.DataFrame:
        """One value per run: the cumulative value of each run's newest snapshot that has it.
        Columns run, snapshot_time_utc, value, error, by run. Reads only the newest files of each run."""
        rows = []
        for run in runs if runs is not None else self.runs(subsystem):
            # Newest first: the run's last snapshot normally has every quantity; look back a little
            # for one that lacked it (e.g. a mean of an empty histogram).
            for path in reversed(self._files(run, subsystem)[-5:]):
                wanted = [
                    ("histogram", "=", histogram),
                    ("quantity", "=", quantity),
                    ("content", "=", CUMULATIVE),
                ]
                frame = pq.read_table(path, schema=TRENDS_SCHEMA, filters=wanted).to_pandas()
                if len(frame):
                    rows.append(frame.iloc[-1][["run", "snapshot_time_utc", "value", "error"]])
                    break
        if not rows:
            return pd.DataFrame(
                {
                    "run": pd.Series(dtype="int64"),
                    "snapshot_time_utc": pd.Series(dtype="datetime64[us, UTC]"),
                    "value": pd.Series(dtype="float64"),
                    "error": pd.Series(dtype="float64"),
                }
            )
        return pd.DataFrame(rows).reset_index(drop=True)

    def quantities(self, run: int, subsystem: str) -> pd.DataFrame:
        """What is trended in a run (histogram, quantity), from its newest file."""
        files = self._files(run, subsystem)[-1:]
        if not files:
            return pd.DataFrame({"histogram": pd.Series(dtype=str), "quantity": pd.Series(dtype=str)})
        frame = pq.read_table(files[0], columns=["histogram", "quantity"]).to_pandas()
        return frame.drop_duplicates().sort_values(["histogram", "quantity"]).reset_index(drop=True)


def _check_content(content: str) -> None:
    if content not in CONTENTS:
        raise ValueError(f"content: must be one of {CONTENTS}, got {content!r}")


def _empty() -> pd.DataFrame:
    return TRENDS_SCHEMA.empty_table().to_pandas()
