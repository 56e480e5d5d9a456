"""Reads of the QC verdicts for pages: the aggregated quality and the check rows of a run's newest
checked snapshot (what the shift crew should see now), straight from the `quality` and `checks`
tables (`pipeline.qc.paths`).

Files of one run and subsystem are named by their snapshot ids, which sort by time, so the newest
verdict is the last file: nothing else is read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.qc.paths import CHECKS_TABLE, QUALITY_TABLE
from pipeline.qc.results import result_files
from pipeline.qc.schema import CHECKS_SCHEMA, QUALITY_SCHEMA

SUBSYSTEM_LEVEL, GROUP_LEVEL = "subsystem", "group"
# Worst first: the order a page sorts verdicts in, and how "worst wins" reads.
QUALITY_ORDER = ("Bad", "Medium", "Null", "Good")


def _newest(data_dir: Path, table: str, schema: pa.Schema, subsystem: str, run: int) -> pd.DataFrame:
    files = result_files(data_dir, table, subsystem, run)
    if not files:
        return schema.empty_table().to_pandas()
    return pq.read_table(files[-1], schema=schema).to_pandas()


def latest_quality(data_dir: Path, subsystem: str, run: int) -> pd.DataFrame:
    """The `quality` rows (level, name, quality, n_*, message...) of the newest checked snapshot of a
    run; empty when QC has not checked it."""
    return _newest(data_dir, QUALITY_TABLE, QUALITY_SCHEMA, subsystem, run)


def latest_checks(data_dir: Path, subsystem: str, run: int) -> pd.DataFrame:
    """The `checks` rows of the newest checked snapshot of a run, worst quality first."""
    frame = _newest(data_dir, CHECKS_TABLE, CHECKS_SCHEMA, subsystem, run)
    rank = frame["quality"].map({q: i for i, q in enumerate(QUALITY_ORDER)})
    return frame.assign(_rank=rank).sort_values(["_rank", "histogram", "check"]).drop(columns="_rank")


def subsystem_quality(data_dir: Path, subsystem: str, run: int) -> str | None:
    """The aggregated quality of a subsystem in a run now (Good/Medium/Bad/Null), None if unchecked."""
    frame = latest_quality(data_dir, subsystem, run)
    rows = frame[frame["level"] == SUBSYSTEM_LEVEL]
    return None if rows.empty else str(rows["quality"].iloc[0])
