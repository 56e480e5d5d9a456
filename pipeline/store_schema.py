"""What one snapshot file holds: the Parquet schema, snapshot ids, Histogram <-> Arrow conversion.

`pipeline.store` decides where files live and how they are written; this module only knows the shape
of the data, so the schema documented in the README (`schema_markdown()`) is the one in the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter

import numpy as np
import pyarrow as pa

from pipeline.bin_arena import numbers_of
from pipeline.histogram import Histogram

# 2: `variances` is null when the variances are the values, bit for bit (unweighted fills).
# 3: the numbers inside `nbins`, `edges_*`, `values` and `variances` are declared non-null (they never
#    were null): pyarrow then writes those lists without checking every number for null, which halved
#    the time a snapshot takes to write. Same columns, same values; files of versions 1 and 2 read alike.
SCHEMA_VERSION = 3
# Footer key/value entry repeating the snapshot metadata, so listings never read data pages.
FOOTER_KEY = b"overwatch_ng.snapshot"
MAX_DIMENSION = 3
# The `run` column is int64: a larger run number (a corrupt INFO block) cannot be stored.
MAX_RUN = 2**63 - 1
AXIS_COLUMNS = ("edges_x", "edges_y", "edges_z")


def _numbers(arrow_type: pa.DataType) -> pa.ListType:
    """A list whose numbers are never null (the list itself may be, see `variances`)."""
    return pa.list_(pa.field("item", arrow_type, nullable=False))


DOUBLES = _numbers(pa.float64())
NBINS = _numbers(pa.int32())


def described_field(name: str, arrow_type: pa.DataType, description: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, arrow_type, nullable=nullable, metadata={"description": description})


SNAPSHOT_SCHEMA = pa.schema(
    [
        described_field("snapshot_id", pa.string(), "`<SYS>_<run>_<UTC YYYYmmddTHHMMSS.ffffff>[_<n>]`"),
        described_field("run", pa.int64(), "run number (also the `run=` partition)"),
        described_field("subsystem", pa.string(), "EMC, TPC, HLT, ... (also the `subsystem=` partition)"),
        described_field(
            "snapshot_time_utc",
            pa.timestamp("us", tz="UTC"),
            "when the reply was received (imported files: the time in their name)",
        ),
        described_field("hlt_mode", pa.string(), "HLT mode: A, B, C, E (replay), U (unknown)"),
        described_field("beam_type", pa.string(), "beam type reported by the merger, may be empty"),
        described_field("name", pa.string(), "histogram name as the merger sent it (may contain `/`)"),
        described_field("class_name", pa.string(), "ROOT class: TH1F, TH2D, TH3F, ..."),
        described_field("dimension", pa.int8(), "1, 2 or 3"),
        described_field("title", pa.string(), "histogram title"),
        described_field("axis_titles", pa.list_(pa.string()), "x, y, z axis titles as sent"),
        described_field("nbins", NBINS, "regular bins per axis (no flow bins)"),
        described_field("edges_x", DOUBLES, "x bin edges, nbins[0]+1 values"),
        described_field("edges_y", DOUBLES, "y bin edges, empty for 1D"),
        described_field("edges_z", DOUBLES, "z bin edges, empty for 1D and 2D"),
        described_field(
            "values",
            DOUBLES,
            "contents with under/overflow, C order over shape `nbins+2` per axis (x slowest)",
        ),
        described_field(
            "variances",
            DOUBLES,
            "sum of squared weights, layout of values; null when equal to values "
            "(unweighted fills: read `coalesce(variances, values)`)",
            nullable=True,
        ),
        described_field("entries", pa.float64(), "ROOT fEntries"),
    ],
    metadata={b"overwatch_ng.schema_version": str(SCHEMA_VERSION).encode()},
)

_TIME_FORMAT = "%Y%m%dT%H%M%S.%f"
_SNAPSHOT_ID = re.compile(
    r"^(?P<subsystem>[A-Za-z0-9][A-Za-z0-9_-]*)_(?P<run>[0-9]+)"
    r"_(?P<Y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})T(?P<H>[0-9]{2})(?P<M>[0-9]{2})(?P<S>[0-9]{2})"
    r"\.(?P<f>[0-9]{6})(?:_(?P<suffix>[0-9]+))?$"
)
SUBSYSTEM_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Beam types as mergers report them ("pp", "PbPb", "p-Pb"...); empty means "not reported" / "every beam".
BEAM_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_-]*$")
HLT_MODE_PATTERN = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class SnapshotMeta:
    """Who and when: one receiver reply for one run and subsystem."""

    run: int
    subsystem: str
    snapshot_time_utc: datetime
    hlt_mode: str = "U"
    beam_type: str = ""
    # The merger was asked to reset after each reply (`-ResetOnRequest`): each snapshot holds only what
    # was filled since the previous request, so a run's content is the sum of its snapshots.
    merger_reset: bool = False
    # TH1 class version of the objects as the merger sent them (7: Run 2, ROOT < 6.14), where known (the
    # archive import records it from each file's streamers); None: not recorded. Replay uses it.
    th1_version: int | None = None


@dataclass(frozen=True)
class SnapshotKey:
    """What a snapshot id (and so a file name) says on its own, without opening the file."""

    snapshot_id: str
    subsystem: str
    run: int
    snapshot_time_utc: datetime
    suffix: int = 0

    @property
    def order(self) -> tuple[datetime, int]:
        """Chronological order; the collision suffix breaks ties numerically (`_2` before `_10`)."""
        return self.snapshot_time_utc, self.suffix


def format_snapshot_id(meta: SnapshotMeta, suffix: int = 0) -> str:
    """`<SYS>_<run>_<UTC time>`; suffix > 0 appends `_<suffix>` (still sorts after the plain id)."""
    stamp = meta.snapshot_time_utc.astimezone(UTC).strftime(_TIME_FORMAT)
    base = f"{meta.subsystem}_{meta.run}_{stamp}"
    return f"{base}_{suffix}" if suffix else base


def parse_snapshot_id(snapshot_id: str) -> SnapshotKey | None:
    """The parts of a well-formed id, or None for anything else (stray files, typos)."""
    match = _SNAPSHOT_ID.match(snapshot_id)
    if match is None:
        return None
    # Built from the regex groups: listings parse thousands of names and strptime is 5x slower.
    parts = (int(match[group]) for group in "YmdHMSf")
    try:
        time_utc = datetime(*parts, tzinfo=UTC)
    except ValueError:  # e.g. month 13
        return None
    suffix = int(match["suffix"] or 0)
    return SnapshotKey(snapshot_id, match["subsystem"], int(match["run"]), time_utc, suffix)


def footer_metadata(snapshot_id: str, meta: SnapshotMeta, n_histograms: int) -> dict[bytes, bytes]:
    """Schema-level key/value metadata written into the Parquet footer of every snapshot file."""
    record = {
        "schema_version": SCHEMA_VERSION,
        "snapshot_id": snapshot_id,
        "run": meta.run,
        "subsystem": meta.subsystem,
        "snapshot_time_utc": meta.snapshot_time_utc.astimezone(UTC).isoformat(),
        "hlt_mode": meta.hlt_mode,
        "beam_type": meta.beam_type,
        "merger_reset": meta.merger_reset,
        "n_histograms": n_histograms,
    }
    if meta.th1_version is not None:
        record["th1_version"] = meta.th1_version
    return {**SNAPSHOT_SCHEMA.metadata, FOOTER_KEY: json.dumps(record).encode()}


def meta_from_footer(kv_metadata: dict[bytes, bytes]) -> SnapshotMeta:
    """The SnapshotMeta of a footer written by `footer_metadata`; footers written before
    `merger_reset` existed read as cumulative (False), which is what their receivers asked for."""
    record = json.loads(kv_metadata[FOOTER_KEY])
    return SnapshotMeta(
        run=int(record["run"]),
        subsystem=record["subsystem"],
        snapshot_time_utc=datetime.fromisoformat(record["snapshot_time_utc"]).astimezone(UTC),
        hlt_mode=record["hlt_mode"],
        beam_type=record["beam_type"],
        merger_reset=bool(record.get("merger_reset", False)),
        th1_version=record.get("th1_version"),
    )


def histograms_to_table(
    snapshot_id: str,
    meta: SnapshotMeta,
    histograms: Sequence[Histogram],
) -> pa.Table:
    """One row per histogram, sorted by name so that row-group statistics on `name` prune reads.

    Variances that equal the values bit for bit (unweighted fills: ROOT sent no fSumw2) are stored
    as null, so the numbers are stored once; `table_to_histograms` restores them exactly.
    """
    ordered = sorted(histograms, key=attrgetter("name"))
    n_rows = len(ordered)
    no_edges = np.empty(0)
    dimensions = [len(h.edges) for h in ordered]
    # Column by column, each from one list built in one pass: per-row Python work is most of the
    # time this takes besides copying the bin contents.
    edges = [[h.edges[axis] if axis < len(h.edges) else no_edges for h in ordered] for axis in range(3)]
    variances = [
        None if _same_numbers(h.values_flow, h.variances_flow) else h.variances_flow for h in ordered
    ]
    nbins = [len(axis_edges) - 1 for h in ordered for axis_edges in h.edges]
    axis_titles = [title for h in ordered for title in h.axis_titles]  # always x, y, z (Histogram)

    def repeated(value: object, arrow_type: pa.DataType) -> pa.Array:
        return pa.repeat(pa.scalar(value, arrow_type), n_rows)

    columns = {
        "snapshot_id": repeated(snapshot_id, pa.string()),
        "run": repeated(meta.run, pa.int64()),
        "subsystem": repeated(meta.subsystem, pa.string()),
        "snapshot_time_utc": repeated(meta.snapshot_time_utc, pa.timestamp("us", tz="UTC")),
        "hlt_mode": repeated(meta.hlt_mode, pa.string()),
        "beam_type": repeated(meta.beam_type, pa.string()),
        "name": pa.array([h.name for h in ordered], pa.string()),
        "class_name": pa.array([h.class_name for h in ordered], pa.string()),
        "dimension": pa.array(dimensions, pa.int8()),
        "title": pa.array([h.title for h in ordered], pa.string()),
        "axis_titles": pa.ListArray.from_arrays(
            pa.array(np.arange(0, len(axis_titles) + 1, MAX_DIMENSION, dtype=np.int32)),
            pa.array(axis_titles, pa.string()),
        ),
        "nbins": pa.ListArray.from_arrays(
            pa.array(_offsets(dimensions)), pa.array(nbins, pa.int32()), type=NBINS
        ),
        **{column: _list_column(arrays) for column, arrays in zip(AXIS_COLUMNS, edges, strict=True)},
        "values": _list_column([h.values_flow for h in ordered]),
        "variances": _list_column(variances),
        "entries": pa.array([float(h.entries) for h in ordered], pa.float64()),
    }
    schema = SNAPSHOT_SCHEMA.with_metadata(footer_metadata(snapshot_id, meta, n_rows))
    return pa.Table.from_pydict(columns, schema=schema)


def table_to_histograms(table: pa.Table) -> dict[str, Histogram]:
    """Histograms of a (possibly filtered) snapshot table, keyed by name, in row order.

    Contents, variances and edges are read-only numpy views of the Arrow buffers (no copy: copying
    would double the read time of a snapshot). Each view keeps only its own record batch (one
    Parquet row group) alive. Copy an array before changing it in place.
    """
    histograms: dict[str, Histogram] = {}
    for batch in table.to_batches():
        histograms.update(_batch_histograms(batch))
    return histograms


def _batch_histograms(batch: pa.RecordBatch) -> dict[str, Histogram]:
    edges_per_axis = [_ListColumn(batch.column(column)) for column in AXIS_COLUMNS]
    values = _ListColumn(batch.column("values"))
    variances = _ListColumn(batch.column("variances"))
    names = batch.column("name").to_pylist()
    class_names = batch.column("class_name").to_pylist()
    titles = batch.column("title").to_pylist()
    axis_titles = batch.column("axis_titles").to_pylist()
    dimensions = batch.column("dimension").to_pylist()
    entries = batch.column("entries").to_pylist()

    histograms = {}
    for row, name in enumerate(names):
        edges = tuple(edges_per_axis[axis].row(row) for axis in range(dimensions[row]))
        shape = tuple(len(axis_edges) + 1 for axis_edges in edges)
        row_values = values.row(row).reshape(shape)
        row_variances = variances.row(row)
        histograms[name] = Histogram(
            name=name,
            class_name=class_names[row],
            title=titles[row],
            edges=edges,
            values_flow=row_values,
            # null: the variances are the values (both are read-only views, so sharing is safe)
            variances_flow=row_values if row_variances is None else row_variances.reshape(shape),
            entries=entries[row],
            axis_titles=tuple(axis_titles[row]),
        )
    return histograms


def schema_markdown(schema: pa.Schema = SNAPSHOT_SCHEMA) -> str:
    """The README table of a stored table's columns (default: the snapshots'), generated from the
    schema's field descriptions."""
    lines = ["| column | Arrow type | meaning |", "| --- | --- | --- |"]
    for field in schema:
        description = field.metadata[b"description"].decode()
        lines.append(f"| `{field.name}` | `{field.type}` | {description} |")
    return "\n".join(lines)


def _same_numbers(values: np.ndarray, variances: np.ndarray) -> bool:
    """True if `variances` holds exactly the numbers of `values` as float64, bit for bit."""
    if variances is values:
        return True  # the fast decoder shares one array when ROOT sent no fSumw2
    if variances.shape != values.shape:
        return False
    as_bits = [np.ascontiguousarray(array, dtype=np.float64).view(np.uint64) for array in (values, variances)]
    # Weighted fills differ almost everywhere: a few sampled bins usually tell without a full pass.
    step = max(1, as_bits[0].size // _SAMPLED_BINS)
    if as_bits[0].ravel()[::step].tolist() != as_bits[1].ravel()[::step].tolist():
        return False
    return bool(np.array_equal(*as_bits))


_SAMPLED_BINS = 16


def _list_column(arrays: list[np.ndarray | None]) -> pa.ListArray:
    """list<double> from numpy arrays (None: a null row) with one concatenation, not one Arrow object
    per row; none at all when the arrays are a reply's arena (`pipeline.bin_arena`), as decoded."""
    offsets = _offsets([0 if array is None else array.size for array in arrays])
    numbers = numbers_of(arrays)
    if numbers is not None:
        return pa.ListArray.from_arrays(pa.array(offsets), numbers, type=DOUBLES)
    present = [array.ravel() for array in arrays if array is not None and array.size]
    # The numbers go straight into a buffer of Arrow's memory pool, which keeps freed memory for the
    # next snapshot: a fresh numpy array of that size (MBs) is new pages from the kernel every time,
    # and their page faults cost more than the copy.
    buffer = pa.allocate_buffer(int(offsets[-1]) * 8)
    flat = np.frombuffer(buffer, np.float64)
    if present:
        np.concatenate(present, out=flat, casting="same_kind")
    numbers = pa.Array.from_buffers(pa.float64(), len(flat), [None, buffer])
    mask = None
    if any(array is None for array in arrays):
        mask = pa.array([array is None for array in arrays], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), numbers, type=DOUBLES, mask=mask)


def _offsets(lengths: Sequence[int]) -> np.ndarray:
    """Arrow list offsets (int32) of rows with these lengths."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


class _ListColumn:
    """Row access to a list<double> array as numpy views of its one flat buffer."""

    def __init__(self, array: pa.ListArray) -> None:
        # Offsets already account for slicing; they index into the unsliced child `values`.
        self._offsets = array.offsets.to_numpy()
        self._flat = array.values.to_numpy(zero_copy_only=True)
        self._null = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None

    def row(self, row: int) -> np.ndarray | None:
        """The numbers of one row, or None for a null row."""
        if self._null is not None and self._null[row]:
            return None
        return self._flat[self._offsets[row] : self._offsets[row + 1]]
