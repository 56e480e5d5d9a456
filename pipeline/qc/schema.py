"""What the QC tables hold: their Arrow schemas (with a description per column) and the README tables.

The README's tables are generated from these schemas (`schema_markdown`) and a test keeps them equal,
as for the snapshot table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

# Bump when a column changes meaning; written into every file's footer.
QC_SCHEMA_VERSION = 1
_VERSION = {b"overwatch_ng.qc_schema_version": str(QC_SCHEMA_VERSION).encode()}


def _field(name: str, arrow_type: pa.DataType, description: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, arrow_type, nullable=nullable, metadata={"description": description})


def _snapshot_fields() -> list[pa.Field]:
    """The columns every per-snapshot QC table starts with: which snapshot the row is about."""
    return [
        _field("run", pa.int64(), "run number (also the `run=` partition)"),
        _field("subsystem", pa.string(), "EMC, TPC, HLT, ... (also the `subsystem=` partition)"),
        _field("snapshot_id", pa.string(), "the snapshot checked (`snapshots` table id)"),
        _field("snapshot_time_utc", pa.timestamp("us", tz="UTC"), "when that snapshot was received"),
    ]


CHECKS_SCHEMA = pa.schema(
    [
        *_snapshot_fields(),
        _field("histogram", pa.string(), "histogram name (a plug-in's derived ones included)"),
        _field("check", pa.string(), "check name as the plug-in declares it, e.g. `hot_fastors`"),
        _field("title", pa.string(), "what a page calls the check, e.g. `Hot FastORs`"),
        _field(
            "content",
            pa.string(),
            "what was checked: `cumulative` (the snapshot), `interval` (the last minute), `reference`",
        ),
        _field("quality", pa.string(), "Good, Medium, Bad or Null (no verdict)"),
        _field("message", pa.string(), "the verdict in words, e.g. `4 hot FastORs above 0.01`"),
        _field("threshold", pa.float64(), "the limit compared with, if the check has one", nullable=True),
        _field("flagged_ids", pa.list_(pa.int64()), "channels flagged (FastOR ids, cell ids, sectors...)"),
    ],
    metadata=_VERSION,
)

QUALITY_SCHEMA = pa.schema(
    [
        *_snapshot_fields(),
        _field("level", pa.string(), "`group` (a plug-in group) or `subsystem` (the whole subsystem)"),
        _field("name", pa.string(), "the group's title, or the subsystem"),
        _field("quality", pa.string(), "the aggregated quality: Good, Medium, Bad or Null"),
        _field("rule", pa.string(), "the plug-in's aggregation rule, e.g. `worst`"),
        _field("n_good", pa.int32(), "checks with quality Good that went in"),
        _field("n_medium", pa.int32(), "checks with quality Medium that went in"),
        _field("n_bad", pa.int32(), "checks with quality Bad that went in"),
        _field("n_null", pa.int32(), "checks with quality Null that went in"),
        _field("message", pa.string(), "the worst checks, e.g. `Bad: EMCTRQA_histFastORL0 hot_fastors`"),
    ],
    metadata=_VERSION,
)


def rows_to_table(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """A table of `schema` from row dicts. ValueError names a missing column or a null where the
    schema allows none (pyarrow would write such a file, and readers would trip over it later)."""
    missing = [field.name for field in schema if any(field.name not in row for row in rows)]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}")
    columns = {field.name: [row[field.name] for row in rows] for field in schema}
    table = pa.Table.from_pydict(columns, schema=schema)
    nulls = [field.name for field in schema if not field.nullable and table[field.name].null_count]
    if nulls:
        raise ValueError(f"null values in non-nullable column(s) {nulls}")
    return table


def schema_markdown(schema: pa.Schema) -> str:
    """The README table of one QC table's columns."""
    lines = ["| column | Arrow type | meaning |", "| --- | --- | --- |"]
    for field in schema:
        lines.append(f"| `{field.name}` | `{field.type}` | {field.metadata[b'description'].decode()} |")
    return "\n".join(lines)
