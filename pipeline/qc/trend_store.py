"""The trends table: its schema, and the reads of `DIR/qc/trends` (one Parquet file per processed
snapshot, written by the QC service: `pipeline.qc.results`).

    <data_dir>/qc/trends/subsystem=<SYS>/run=<N>/<snapshot_id>.parquet

The read side answers what a trending page needs: one quantity against time within a
run, and one value per run (the run's last cumulative value) across runs.
"""

from __future__ import annotations

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
            "start of what the value covers: the start of run (`cumulative`) or the previous "
            "snapshot's time (`interval`; the start of run for the run's first snapshot)",
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


class TrendStore:
    """Writes and reads the trends table of one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = table_dir(data_dir, TRENDS_TABLE)

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
        files = [directory / f"{i}{SUFFIX}" for i in snapshot_ids]
        return self._query([str(path) for path in files if path.exists()], "true", [])

    def table(self, run: int, subsystem: str) -> pd.DataFrame:
        """Every row of one run and subsystem."""
        return self._query(self._files(run, subsystem), "true", [])

    def series(
        self, run: int, subsystem: str, histogram: str, quantity: str, content: str = CUMULATIVE
    ) -> pd.DataFrame:
        """One quantity against time within a run: columns snapshot_time_utc, interval_start_utc,
        value, error, oldest first. ValueError naming `content` if it is not a known one."""
        _check_content(content)
        frame = self._query(
            self._files(run, subsystem),
            "histogram = ? and quantity = ? and content = ?",
            [histogram, quantity, content],
        )
        return frame[["snapshot_time_utc", "interval_start_utc", "value", "error"]].reset_index(drop=True)

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
                frame = self._query(
                    [path],
                    "histogram = ? and quantity = ? and content = ?",
                    [histogram, quantity, CUMULATIVE],
                )
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
