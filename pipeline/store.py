"""Snapshot store: one immutable Parquet file per receiver reply, laid out so any tool can read it.

Layout (hive partitioned, readable by plain DuckDB/pandas; schema: `store_schema.SNAPSHOT_SCHEMA`):

    <data_dir>/snapshots/subsystem=<SYS>/run=<N>/<snapshot_id>.parquet
    <data_dir>/replay/subsystem=<SYS>/run=<N>/<snapshot_id>.parquet      (HLT mode "E")

A snapshot becomes visible all at once: it is written without a name, fsynced, then linked to its
final name (`pipeline.atomic_files`: atomic, and unlike a rename it never replaces an existing file).
No reader of the data tree, not even a bare `**/*` glob, ever lists a file being written, and a writer
killed mid-way leaves nothing.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from numbers import Integral
from pathlib import Path
from typing import Generic, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import atomic_files
from pipeline.histogram import Histogram
from pipeline.store_schema import (
    HLT_MODE_PATTERN,
    MAX_DIMENSION,
    MAX_RUN,
    SNAPSHOT_SCHEMA,
    SUBSYSTEM_PATTERN,
    SnapshotKey,
    SnapshotMeta,
    format_snapshot_id,
    histograms_to_table,
    meta_from_footer,
    parse_snapshot_id,
    table_to_histograms,
)

__all__ = ["REPLAY_HLT_MODE", "SnapshotMeta", "SnapshotStore"]

log = logging.getLogger(__name__)

REPLAY_HLT_MODE = "E"
SNAPSHOTS_AREA = "snapshots"
REPLAY_AREA = "replay"
SUFFIX = ".parquet"
AREAS = (SNAPSHOTS_AREA, REPLAY_AREA)
# Row groups: 32 rows, more while they hold under 170,000 bins, at most 128. 32 maps of 48x104 are
# 170,000 bins (1.4 MB of float64 per numbers column): reading one histogram decodes ~1.4-2.7 MB instead
# of the whole ~11-21 MB snapshot, and reading everything stays one fast scan. Each row group costs
# ~0.2-0.4 ms to write however little it holds (a chunk per column), so small histograms share larger
# groups: 500 TH1 of 100 bins write 4 groups instead of 16 (3.6 ms less, a 2.5x smaller file). Never
# fewer than 32 rows: fewer rows per group for large histograms (TPC's 140,000-bin maps) would make
# the file larger (one compressed chunk per column and group). A group of more rows than
# `processing.timeslice.READ_CHUNK` is read once per chunk of its names: at most 4 times, each time
# within the 170,000-bin bound.
ROW_GROUP_MIN_ROWS = 32
ROW_GROUP_BINS = 170_000
ROW_GROUP_MAX_ROWS = 128


def _parquet_options() -> dict[str, object]:
    """How each column is encoded and compressed (decides most of the time a snapshot takes to write).

    - Bin contents, variances and edges: BYTE_STREAM_SPLIT, then zstd level 1. Contents are mostly
      whole numbers, so split into byte streams the zero low bytes of their mantissas compress at memory
      speed: faster to write than dictionary encoding (pyarrow's default, which hashes every number),
      and a smaller file.
    - Every other column is a few kB: snappy, since zstd makes a new context for every column chunk,
      which costs more than compressing them saves.
    - No dictionaries: the columns that repeat one value (id, run, time, ...) shrink to a few bytes
      with snappy alone, and a dictionary per column chunk cost more time than it saved bytes.
    - Statistics only for the scalar columns (`name` prunes row groups on read; min/max of bin
      contents would help no reader).
    """
    leaves = {
        field.name: f"{field.name}.list.element" if pa.types.is_list(field.type) else field.name
        for field in SNAPSHOT_SCHEMA
    }
    numbers = [
        leaves[field.name]
        for field in SNAPSHOT_SCHEMA
        if pa.types.is_list(field.type) and pa.types.is_floating(field.type.value_type)
    ]
    scalars = [field.name for field in SNAPSHOT_SCHEMA if not pa.types.is_list(field.type)]
    return {
        "compression": {leaf: "zstd" if leaf in numbers else "snappy" for leaf in leaves.values()},
        "compression_level": {leaf: 1 for leaf in numbers},
        "use_byte_stream_split": numbers,
        "use_dictionary": False,
        "write_statistics": scalars,
    }


PARQUET_OPTIONS = _parquet_options()

RUNS_COLUMNS = {
    "run": "int64",
    "subsystem": "str",
    "hlt_mode": "str",
    "beam_type": "str",
    "first_snapshot_utc": "datetime64[us, UTC]",
    "last_snapshot_utc": "datetime64[us, UTC]",
    "n_snapshots": "int64",
    "merger_reset": "bool",
}
SNAPSHOTS_COLUMNS = {
    "snapshot_id": "str",
    "snapshot_time_utc": "datetime64[us, UTC]",
    "n_histograms": "int64",
}


# Per-file caches of a store: footers (a few hundred bytes each: every run's newest snapshot is asked
# for by a run list) and name lists (a few KB each: the snapshots views were built from).
FOOTERS_KEPT = 8192
NAME_LISTS_KEPT = 512

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A mapping that keeps its `max_entries` most recently used entries and, with `weight` (say, the
    length of a listing, or the bytes of the histograms a value holds), at most `max_weight` in total;
    safe to share between threads (Dash serves callbacks from several). An entry heavier than
    `max_weight` alone is not kept.

    An entry's weight is taken when it is stored, and again by `reweigh(key)`, for values that fill
    up after they were stored (a slice reads its histograms when a page asks for them). `weight` is
    never called under the cache's lock, so it may take a lock of the value's own.
    """

    def __init__(
        self, max_entries: int, max_weight: int | None = None, weight: Callable[[V], int] | None = None
    ) -> None:
        if (max_weight is None) != (weight is None):
            raise ValueError("max_weight and weight go together")
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._weigh = weight
        self.total_weight = 0
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}  # as taken when stored or re-weighed: what dropping it frees
        self._lock = threading.Lock()

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                return default
            self._entries.move_to_end(key)
            return value

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __setitem__(self, key: K, value: V) -> None:
        weight = self._weigh(value) if self._weigh is not None else 0
        with self._lock:
            self._drop(key)
            self._entries[key] = value
            self._weights[key] = weight
            self.total_weight += weight
            self._evict()

    def reweigh(self, key: K) -> None:
        """Take the weight of `key`'s value again (it grew or shrank), dropping the least recently used
        entries (this one too, if alone it is too heavy) until the cache is within its limits."""
        if self._weigh is None:
            return
        with self._lock:
            value = self._entries.get(key)
        if value is None:
            return
        weight = self._weigh(value)
        with self._lock:
            if self._entries.get(key) is not value:
                return  # replaced or dropped meanwhile
            self.total_weight += weight - self._weights[key]
            self._weights[key] = weight
            self._evict()

    def _evict(self) -> None:
        while self._entries and (
            len(self._entries) > self.max_entries
            or (self.max_weight is not None and self.total_weight > self.max_weight)
        ):
            self._drop(next(iter(self._entries)))

    def pop(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            value = self._drop(key)
            return default if value is None else value

    def _drop(self, key: K) -> V | None:
        value = self._entries.pop(key, None)
        self.total_weight -= self._weights.pop(key, 0)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weights.clear()
            self.total_weight = 0

    def values(self) -> list[V]:
        with self._lock:
            return list(self._entries.values())


@dataclass(frozen=True)
class _FileFooter:
    """What the footer of one (immutable) snapshot file says; cached per path."""

    meta: SnapshotMeta
    n_histograms: int


class SnapshotStore:
    """Writes, lists and reads the snapshots under `data_dir`; any number of writers and readers."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        # Files never change once visible, so per-path caches need no invalidation; they are bounded
        # (least recently used dropped), since a dashboard runs for days while snapshots keep arriving.
        self._footers: BoundedCache[Path, _FileFooter] = BoundedCache(FOOTERS_KEPT)
        self._names: BoundedCache[Path, list[str]] = BoundedCache(NAME_LISTS_KEPT)
        self._entries: BoundedCache[Path, dict[str, float]] = BoundedCache(NAME_LISTS_KEPT)
        self._titles: BoundedCache[Path, dict[str, str]] = BoundedCache(NAME_LISTS_KEPT)

    # ---- writing -------------------------------------------------------------------------------

    def write_snapshot(self, meta: SnapshotMeta, histograms: Sequence[Histogram]) -> str:
        """Store one snapshot atomically and return its id; never overwrites an existing snapshot.

        Raises ValueError (and writes nothing) for run <= 0 (the HLT sends run 0 after an
        end-of-run reset) or beyond int64 (MAX_RUN), no histograms, a naive snapshot time, a bad
        subsystem or HLT mode, or duplicate histogram names.
        """
        meta, histograms, directory = self._prepare(meta, histograms)
        suffix = 0
        while True:
            snapshot_id = format_snapshot_id(meta, suffix)
            suffix += 1
            if self._find_path(snapshot_id) is not None:
                continue
            table = histograms_to_table(snapshot_id, meta, histograms)
            if _publish(table, directory / f"{snapshot_id}{SUFFIX}"):
                log.debug("stored %s (%d histograms)", snapshot_id, len(histograms))
                return snapshot_id

    def write_snapshot_once(self, meta: SnapshotMeta, histograms: Sequence[Histogram]) -> str | None:
        """Store one snapshot under its own id (never a `_<n>` suffix); None if that id is taken.

        For data that has an identity of its own (an archive file: subsystem, run and time in its name),
        so storing it again adds nothing. Atomic like `write_snapshot`, also between concurrent writers
        of the same id: exactly one of them stores it. Raises ValueError as `write_snapshot` does.
        """
        meta, histograms, directory = self._prepare(meta, histograms)
        snapshot_id = format_snapshot_id(meta)
        if self.has_snapshot(snapshot_id):
            return None
        table = histograms_to_table(snapshot_id, meta, histograms)
        return snapshot_id if _publish(table, directory / f"{snapshot_id}{SUFFIX}") else None

    def _prepare(
        self, meta: SnapshotMeta, histograms: Sequence[Histogram]
    ) -> tuple[SnapshotMeta, list[Histogram], Path]:
        """Validated metadata (time in UTC), the histograms as a list, and the folder they go to."""
        histograms = list(histograms)
        _validate(meta, histograms)
        time_utc = meta.snapshot_time_utc.astimezone(UTC)
        meta = replace(meta, run=int(meta.run), snapshot_time_utc=time_utc)
        directory = self._run_dir(meta.hlt_mode == REPLAY_HLT_MODE, meta.subsystem, meta.run)
        directory.mkdir(parents=True, exist_ok=True)
        return meta, histograms, directory

    def remove_stale_temp_files(self, max_age_s: float = 3600.0) -> int:
        """Delete the temp files a killed writer left in the run folders (see
        `atomic_files.remove_stale_temp_files`); returns how many.

        A snapshot is written unnamed, so only a writer on a file system without unnamed files
        (`O_TMPFILE`) can leave one. Receivers call it at start.
        """
        folders = [path for area in AREAS for path in (self.data_dir / area).glob("subsystem=*/run=*")]
        return atomic_files.remove_stale_temp_files(folders, max_age_s)

    # ---- listing -------------------------------------------------------------------------------

    def runs(
        self, subsystem: str | None = None, include_replay: bool = False, run: int | None = None
    ) -> pd.DataFrame:
        """One row per (run, subsystem), newest run first; `run` limits the scan to that run.

        Columns: run, subsystem, hlt_mode, beam_type, first_snapshot_utc, last_snapshot_utc,
        n_snapshots, merger_reset. HLT mode, beam type and merger_reset are those of the newest snapshot.
        """
        return _frame(self.run_rows(subsystem, include_replay, run), RUNS_COLUMNS)

    def run_rows(
        self, subsystem: str | None = None, include_replay: bool = False, run: int | None = None
    ) -> list[dict[str, object]]:
        """The rows of `runs()` as plain dicts (times as datetimes): for callers that list every few
        seconds, to whom building a DataFrame of thousands of rows costs more than the listing."""
        # Per folder, not per file: each folder's listing is kept sorted (and reused while the folder is
        # unchanged), so a store of 100,000 files lists in one stat per run folder.
        groups: dict[tuple[int, str], list[list[tuple[SnapshotKey, Path]]]] = {}
        for system, listing in self._folders(subsystem, run, include_replay):
            groups.setdefault((listing[0][0].run, system), []).append(listing)
        rows = []
        for (run, system), listings in groups.items():
            first, newest = listings[0][0], listings[0][-1]
            for listing in listings[1:]:  # a run with replays too: the other area's folder
                first = listing[0] if listing[0][0].order < first[0].order else first
                newest = listing[-1] if listing[-1][0].order >= newest[0].order else newest
            newest_meta = self._footer(newest[1]).meta
            rows.append(
                {
                    "run": run,
                    "subsystem": system,
                    "hlt_mode": newest_meta.hlt_mode,
                    "beam_type": newest_meta.beam_type,
                    "first_snapshot_utc": first[0].snapshot_time_utc,
                    "last_snapshot_utc": newest[0].snapshot_time_utc,
                    "n_snapshots": sum(len(listing) for listing in listings),
                    "merger_reset": newest_meta.merger_reset,
                }
            )
        rows.sort(key=lambda row: (-row["run"], row["subsystem"]))
        return rows

    def snapshots(self, run: int, subsystem: str, include_replay: bool = False) -> pd.DataFrame:
        """snapshot_id, snapshot_time_utc, n_histograms of one run and subsystem, oldest first."""
        keys = sorted(self._scan(subsystem, run, include_replay), key=lambda entry: entry[0].order)
        rows = [
            {
                "snapshot_id": key.snapshot_id,
                "snapshot_time_utc": key.snapshot_time_utc,
                "n_histograms": self._footer(path).n_histograms,
            }
            for key, path in keys
        ]
        return _frame(rows, SNAPSHOTS_COLUMNS)

    def snapshot_keys(self, run: int, subsystem: str, include_replay: bool = False) -> list[SnapshotKey]:
        """The run's snapshots as keys (id, time), oldest first: `snapshots()` without pandas."""
        return sorted(
            (key for key, _ in self._scan(subsystem, run, include_replay)), key=lambda key: key.order
        )

    def has_snapshot(self, snapshot_id: str) -> bool:
        """True if a snapshot with exactly this id is stored (in either area)."""
        return self._find_path(snapshot_id) is not None

    def snapshot_meta(self, snapshot_id: str) -> SnapshotMeta:
        """The stored metadata of one snapshot (from its footer, cached); KeyError if unknown."""
        return self._footer(self._path(snapshot_id)).meta

    def latest_snapshot_id(
        self,
        run: int,
        subsystem: str,
        include_replay: bool = False,
    ) -> str | None:
        """Id of the newest snapshot of that run and subsystem, or None if there is none."""
        keys = [key for key, _ in self._scan(subsystem, run, include_replay)]
        return max(keys, key=lambda key: key.order).snapshot_id if keys else None

    def count_snapshots(self, subsystem: str | None = None, include_replay: bool = False) -> int:
        """How many snapshots are stored (file names only, no file is opened)."""
        return sum(1 for _ in self._scan(subsystem, include_replay=include_replay))

    # ---- reading -------------------------------------------------------------------------------

    def histogram_names(self, snapshot_id: str) -> list[str]:
        """Sorted names of the histograms in one snapshot; KeyError if the snapshot is unknown."""
        path = self._path(snapshot_id)
        names = self._names.get(path)
        if names is None:
            # Rows are written sorted by name, so the column is already in order.
            names = self._names[path] = pq.read_table(path, columns=["name"])["name"].to_pylist()
        return list(names)

    def histogram_classes(self, snapshot_id: str) -> dict[str, str]:
        """ROOT class of each histogram of one snapshot, by name (two small columns read); KeyError if
        the snapshot is unknown."""
        table = pq.read_table(self._path(snapshot_id), columns=["name", "class_name"])
        return dict(zip(table["name"].to_pylist(), table["class_name"].to_pylist(), strict=True))

    def histogram_titles(self, snapshot_id: str) -> dict[str, str]:
        """Each histogram's ROOT title in one snapshot, by name (what labels prefer to a raw name):
        two small columns, cached (files never change). KeyError if the snapshot is unknown."""
        path = self._path(snapshot_id)
        titles = self._titles.get(path)
        if titles is None:
            table = pq.ParquetFile(path).read(columns=["name", "title"])
            titles = dict(zip(table["name"].to_pylist(), table["title"].to_pylist(), strict=True))
            self._titles[path] = titles
        return titles

    def histogram_entries(self, snapshot_id: str) -> dict[str, float]:
        """Each histogram's entries (ROOT fEntries) in one snapshot, by name: two small columns, cached
        (files never change). KeyError if the snapshot is unknown."""
        path = self._path(snapshot_id)
        entries = self._entries.get(path)
        if entries is None:
            table = pq.ParquetFile(path).read(columns=["name", "entries"])  # read_table costs 3x more
            entries = dict(zip(table["name"].to_pylist(), table["entries"].to_pylist(), strict=True))
            self._entries[path] = entries
        return entries

    def read_snapshot(
        self, snapshot_id: str, names: Iterable[str] | None = None
    ) -> tuple[SnapshotMeta, dict[str, Histogram]]:
        """Metadata and histograms (all, or only `names`) of one snapshot.

        Raises KeyError naming what is missing if the snapshot or a requested histogram is unknown.
        """
        path = self._path(snapshot_id)
        wanted = None if names is None else sorted(set(names))
        table = _read_rows(path, wanted)
        histograms = table_to_histograms(table)
        if wanted is not None and len(histograms) != len(wanted):
            missing = [name for name in wanted if name not in histograms]
            raise KeyError(f"snapshot {snapshot_id!r} has no histogram(s) {missing}")
        return self._footer(path).meta, histograms

    def read_histogram(self, snapshot_id: str, name: str) -> Histogram:
        """One histogram of one snapshot; KeyError if either is unknown."""
        return self.read_snapshot(snapshot_id, [name])[1][name]

    def sql(self, query: str, include_replay: bool = False) -> pd.DataFrame:
        """Run DuckDB SQL against a `histograms` view over every stored snapshot file.

        Example: `store.sql("select run, count(*) from histograms group by run")`.
        """
        globs = [
            str(self.data_dir / area / "subsystem=*" / "run=*" / f"*{SUFFIX}")
            for area in self._areas(include_replay)
            if any(self._scan_area(area, None, None))
        ]
        with duckdb.connect() as connection:
            if globs:
                file_list = ", ".join("'" + glob.replace("'", "''") + "'" for glob in globs)
                connection.execute(
                    "create view histograms as select * from read_parquet("
                    f"[{file_list}], hive_partitioning = true, union_by_name = true)"
                )
            else:
                # DuckDB refuses an empty glob; an empty table keeps queries valid on a new store.
                empty = SNAPSHOT_SCHEMA.empty_table()
                connection.register("histograms", empty)
            return connection.sql(query).df()

    # ---- paths, scanning and caches -----------------------------------------------------------

    def _run_dir(self, replay: bool, subsystem: str, run: int) -> Path:
        area = REPLAY_AREA if replay else SNAPSHOTS_AREA
        return self.data_dir / area / f"subsystem={subsystem}" / f"run={run}"

    def _find_path(self, snapshot_id: str) -> Path | None:
        key = parse_snapshot_id(snapshot_id)
        if key is None:
            return None
        for replay in (False, True):
            path = self._run_dir(replay, key.subsystem, key.run) / f"{snapshot_id}{SUFFIX}"
            if path.is_file():
                return path
        return None

    def _path(self, snapshot_id: str) -> Path:
        path = self._find_path(snapshot_id)
        if path is None:
            raise KeyError(f"unknown snapshot {snapshot_id!r} in {self.data_dir}")
        return path

    def _footer(self, path: Path) -> _FileFooter:
        footer = self._footers.get(path)
        if footer is None:
            metadata = pq.read_metadata(path)
            footer = _FileFooter(meta_from_footer(metadata.metadata), metadata.num_rows)
            self._footers[path] = footer
        return footer

    @staticmethod
    def _areas(include_replay: bool) -> tuple[str, ...]:
        return (SNAPSHOTS_AREA, REPLAY_AREA) if include_replay else (SNAPSHOTS_AREA,)

    def _scan(
        self, subsystem: str | None = None, run: int | None = None, include_replay: bool = False
    ) -> Iterator[tuple[SnapshotKey, Path]]:
        for area in self._areas(include_replay):
            yield from self._scan_area(area, subsystem, run)

    def _scan_area(
        self, area: str, subsystem: str | None, run: int | None
    ) -> Iterator[tuple[SnapshotKey, Path]]:
        """Visible snapshot files, described by their names alone (no file is opened), oldest first
        within each run folder."""
        for _, listing in self._folders_of_area(area, subsystem, run):
            yield from listing

    def _folders(
        self, subsystem: str | None, run: int | None, include_replay: bool
    ) -> Iterator[tuple[str, list[tuple[SnapshotKey, Path]]]]:
        for area in self._areas(include_replay):
            yield from self._folders_of_area(area, subsystem, run)

    def _folders_of_area(
        self, area: str, subsystem: str | None, run: int | None
    ) -> Iterator[tuple[str, list[tuple[SnapshotKey, Path]]]]:
        """(subsystem, its snapshots oldest first) of every run folder of an area with snapshots in it."""
        # Plain strings, not Paths: a listing of 1,000 runs walks 3,000 folders every few seconds.
        area_dir = os.path.join(self.data_dir, area)
        systems = [subsystem] if subsystem else _partition_values(area_dir, "subsystem")
        for system in systems:
            system_dir = os.path.join(area_dir, f"subsystem={system}")
            runs = [str(run)] if run is not None else _partition_values(system_dir, "run")
            for run_text in runs:
                listing = _snapshot_files(os.path.join(system_dir, f"run={run_text}"), system, run_text)
                if listing:
                    yield system, listing


def _validate(meta: SnapshotMeta, histograms: list[Histogram]) -> None:
    if isinstance(meta.run, bool) or not isinstance(meta.run, Integral) or not 0 < meta.run <= MAX_RUN:
        raise ValueError(f"run must be a positive integer up to {MAX_RUN}, got {meta.run!r}")
    if not histograms:
        raise ValueError(f"run {meta.run} {meta.subsystem}: needs at least one histogram")
    time_utc = meta.snapshot_time_utc
    if time_utc.tzinfo is None or time_utc.tzinfo.utcoffset(time_utc) is None:
        raise ValueError(f"snapshot_time_utc must be timezone-aware, got naive {time_utc}")
    if not SUBSYSTEM_PATTERN.fullmatch(meta.subsystem):
        raise ValueError(f"subsystem {meta.subsystem!r} must match {SUBSYSTEM_PATTERN.pattern}")
    if not HLT_MODE_PATTERN.fullmatch(meta.hlt_mode):
        raise ValueError(f"hlt_mode {meta.hlt_mode!r} must match {HLT_MODE_PATTERN.pattern}")
    if not isinstance(meta.beam_type, str):
        raise ValueError(f"beam_type must be a string, got {meta.beam_type!r}")
    if not isinstance(meta.merger_reset, bool):
        raise ValueError(f"merger_reset must be True or False, got {meta.merger_reset!r}")
    if meta.th1_version is not None and (
        isinstance(meta.th1_version, bool) or not isinstance(meta.th1_version, int)
    ):
        raise ValueError(f"th1_version must be an int or None, got {meta.th1_version!r}")
    names = [h.name for h in histograms]
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"duplicate histogram names in one snapshot: {duplicates}")
    bad = [h.name for h in histograms if not 1 <= h.dimension <= MAX_DIMENSION]
    if bad:
        raise ValueError(f"histograms must have 1 to {MAX_DIMENSION} axes: {bad}")


def _publish(table: pa.Table, final_path: Path) -> bool:
    """Write `table` as `final_path` (atomic, fsynced, see `atomic_files`); False if that name is taken."""
    return atomic_files.write_file(final_path, memoryview(parquet_bytes(table)), replace=False)


def parquet_bytes(table: pa.Table, options: dict[str, object] = PARQUET_OPTIONS) -> pa.Buffer:
    """A snapshot table as the bytes of its Parquet file, in row groups of `row_group_bounds`.

    Written in memory, then to the file in one call: the writer's hundreds of small writes (a few per
    column chunk) each cost a system call.
    """
    sink = pa.BufferOutputStream()
    # The lengths, not `combine_chunks().offsets`: combining copies every number (~1 ms a reply).
    bounds = row_group_bounds(pc.list_value_length(table["values"]).to_numpy())
    with pq.ParquetWriter(sink, table.schema, **options) as writer:
        if not table.num_rows:
            writer.write_table(table)
        for start, stop in itertools.pairwise(bounds):
            writer.write_table(table.slice(start, stop - start), row_group_size=stop - start)
    return sink.getvalue()


def row_group_bounds(
    bins_per_row: Sequence[int],
    min_rows: int = ROW_GROUP_MIN_ROWS,
    max_bins: int = ROW_GROUP_BINS,
    max_rows: int = ROW_GROUP_MAX_ROWS,
) -> list[int]:
    """Row indices where row groups start, then the row count: a group ends at `max_rows` rows, or
    once it has `min_rows` rows and the next row would take it over `max_bins` bins."""
    if not len(bins_per_row):
        return [0]
    bounds = [0]
    held = 0
    for row, bins in enumerate(bins_per_row):
        rows = row - bounds[-1]
        if rows >= max_rows or (rows >= min_rows and held + bins > max_bins):
            bounds.append(row)
            held = 0
        held += int(bins)
    bounds.append(len(bins_per_row))
    return bounds


def _read_rows(path: Path, names: list[str] | None) -> pa.Table:
    """All rows, or only the named ones, reading only row groups whose name range can hold them."""
    parquet_file = pq.ParquetFile(path)
    if names is None:
        return parquet_file.read()
    groups = _row_groups_with(parquet_file.metadata, names)
    table = parquet_file.read_row_groups(groups) if groups else SNAPSHOT_SCHEMA.empty_table()
    return table.filter(pc.is_in(table["name"], value_set=pa.array(names, pa.string())))


def _row_groups_with(metadata: pq.FileMetaData, names: list[str]) -> list[int]:
    name_column = metadata.schema.names.index("name")
    return [
        index
        for index in range(metadata.num_row_groups)
        if _may_hold(metadata.row_group(index).column(name_column).statistics, names)
    ]


def _may_hold(statistics: pq.Statistics | None, names: list[str]) -> bool:
    if statistics is None or not statistics.has_min_max:
        return True  # without statistics the group cannot be ruled out
    return any(statistics.min <= name <= statistics.max for name in names)


def _partition_values(directory: Path | str, key: str) -> list[str]:
    """Values `v` of the `key=v` subdirectories of `directory` (hive partitions)."""
    prefix = f"{key}="
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    names = [entry.name for entry in entries if entry.is_dir()]
    return sorted(name[len(prefix) :] for name in names if name.startswith(prefix))


# Listing of one run folder, reused while the folder's mtime is unchanged: publishing a snapshot adds a
# name (and so changes the mtime), while a live dashboard lists the same folders every few seconds.
# Directory mtimes come from a coarse clock, so a change made in the same tick as a listing can leave
# the mtime as it was. As git does with "racy" index entries, a listing taken less than a second after
# the folder's last change is never reused: it is read again until one is taken later than that (the
# run timelines of pipeline.processing.runs follow the same rule).
RACY_NS = 1_000_000_000
# Bounded by the snapshots they name too (~0.7 KB each): a run list lists every folder of a store that
# grows for as long as the experiment runs, so a count of folders alone would let it take gigabytes.
LISTED_SNAPSHOTS_KEPT = 200_000
_FOLDER_LISTINGS: BoundedCache[str, tuple[int, list[tuple[SnapshotKey, Path]]]] = BoundedCache(
    4096, max_weight=LISTED_SNAPSHOTS_KEPT, weight=lambda cached: len(cached[1])
)


def _snapshot_files(directory: str, subsystem: str, run_text: str) -> list[tuple[SnapshotKey, Path]]:
    """The snapshots of one run folder (of `subsystem` and run `run_text`), oldest first."""
    listed_at_ns = time.time_ns()
    try:
        mtime_ns = os.stat(directory).st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return []
    cached = _FOLDER_LISTINGS.get(directory)
    if cached is not None and cached[0] == mtime_ns:
        return cached[1]
    listing = []
    for entry in os.scandir(directory):
        # Hidden names (temp files where the file system has no unnamed files) and names that are not
        # snapshot ids are ignored.
        if entry.name.startswith(".") or not entry.name.endswith(SUFFIX):
            continue
        key = parse_snapshot_id(entry.name[: -len(SUFFIX)])
        # The name must agree with its partition, or readers of the hive columns and readers of our
        # ids would disagree about which run a file belongs to.
        if key is not None and key.subsystem == subsystem and str(key.run) == run_text:
            listing.append((key, Path(entry.path)))
    # Sorted once here rather than by every reader of the (reused) listing.
    listing.sort(key=lambda entry: entry[0].order)
    if listed_at_ns - mtime_ns > RACY_NS:
        _FOLDER_LISTINGS[directory] = (mtime_ns, listing)
    else:
        _FOLDER_LISTINGS.pop(directory, None)
    return listing


def _frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)
