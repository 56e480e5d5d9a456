"""The README documents exactly the QC tables the service writes, as it does the snapshot table."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.qc.paths import ALARMS_TABLE, CHECKS_TABLE, QUALITY_TABLE, TRENDS_TABLE, table_dir
from pipeline.qc.results import remove_stale_temp_files, write_snapshot_rows
from pipeline.qc.schema import CHECKS_SCHEMA, QUALITY_SCHEMA, rows_to_table, schema_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("schema", [CHECKS_SCHEMA, QUALITY_SCHEMA], ids=["checks", "quality"])
def test_readme_tables_equal_the_schemas(schema) -> None:
    table = schema_markdown(schema)
    for name in schema.names:
        assert f"| `{name}` |" in table
    assert table in README.read_text()


def test_every_qc_table_lives_under_qc_and_a_rewrite_replaces_the_file(tmp_path) -> None:
    assert {
        table_dir(tmp_path, t).relative_to(tmp_path).as_posix() for t in (CHECKS_TABLE, QUALITY_TABLE)
    } == {
        "qc/checks",
        "qc/quality",
    }
    assert table_dir(tmp_path, TRENDS_TABLE) == tmp_path / "qc" / "trends"
    assert table_dir(tmp_path, ALARMS_TABLE) == tmp_path / "qc" / "alarms"
    row = {
        "run": 1, "subsystem": "EMC", "snapshot_id": "EMC_1_x", "snapshot_time_utc": None,
        "histogram": "h", "check": "c", "title": "C", "content": "cumulative", "quality": "Good",
        "message": "", "threshold": None, "flagged_ids": [1, 2],
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"non-nullable column\(s\) \['snapshot_time_utc'\]"):
        rows_to_table([row], CHECKS_SCHEMA)  # a row without its snapshot time is refused
    with pytest.raises(ValueError, match="lack column"):
        rows_to_table([{"run": 1}], CHECKS_SCHEMA)
    row["snapshot_time_utc"] = 0
    first = write_snapshot_rows(
        tmp_path, CHECKS_TABLE, "EMC", 1, "EMC_1_x", rows_to_table([row], CHECKS_SCHEMA)
    )
    second = write_snapshot_rows(
        tmp_path, CHECKS_TABLE, "EMC", 1, "EMC_1_x", rows_to_table([row, row], CHECKS_SCHEMA)
    )
    assert first == second and pq.read_table(second).num_rows == 2  # replaced, not added to
    assert [p.name for p in second.parent.iterdir()] == ["EMC_1_x.parquet"]  # no temp file left


def test_temp_files_of_killed_writers_are_removed_once_old(tmp_path) -> None:
    folder = tmp_path / "qc" / CHECKS_TABLE / "subsystem=EMC" / "run=1"
    folder.mkdir(parents=True)
    old, fresh = folder / ".EMC_1_a.parquet.1.2.tmp", folder / ".EMC_1_b.parquet.1.3.tmp"
    for path in (old, fresh):
        path.write_bytes(b"half a file")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_stale_temp_files(tmp_path) == 1
    assert not old.exists() and fresh.exists()  # a writer may still be busy with the fresh one
