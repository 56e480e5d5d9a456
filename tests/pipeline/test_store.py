"""SnapshotStore: exact round trips, atomic under SIGKILL, data readable without our code."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.histogram import Histogram
from pipeline.store import (
    ROW_GROUP_BINS,
    ROW_GROUP_MAX_ROWS,
    ROW_GROUP_MIN_ROWS,
    BoundedCache,
    SnapshotMeta,
    SnapshotStore,
    row_group_bounds,
)
from pipeline.store_schema import SNAPSHOT_SCHEMA, histograms_to_table, schema_markdown

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def th1(name: str = "hAmp", offset: float = 0.0) -> Histogram:
    values = np.arange(12, dtype=float) + offset  # 10 bins + underflow (index 0) + overflow (11)
    return Histogram(
        name=name,
        class_name="TH1D",
        title="cell amplitude",
        edges=(np.linspace(0.0, 10.0, 11),),
        values_flow=values,
        variances_flow=values * 2.0,
        entries=float(values.sum()),
        axis_titles=("E (GeV)", "counts"),
    )


def th2(name: str = "EMCTRQA/hEtaPhi") -> Histogram:
    values = np.arange(5 * 4, dtype=float).reshape(5, 4) * 1.5  # 3x2 bins with flow
    return Histogram(
        name=name,
        class_name="TH2F",
        title="tower occupancy",
        edges=(np.array([0.0, 1.0, 2.5, 7.0]), np.array([-1.0, 0.0, 1.0])),
        values_flow=values,
        variances_flow=values + 0.25,
        entries=123.0,
        axis_titles=("#eta", "#phi"),
    )


def th3(name: str = "TPCQA/h_dca") -> Histogram:
    values = np.arange(4 * 5 * 3, dtype=float).reshape(4, 5, 3) - 7.0
    return Histogram(
        name=name,
        class_name="TH3D",
        title="dca vs phi vs pt",
        edges=(np.linspace(0, 1, 3), np.linspace(-2, 2, 4), np.array([0.5, 3.0])),
        values_flow=values,
        variances_flow=np.abs(values),
        entries=60.0,
        axis_titles=("x", "y", "z"),
    )


def meta(run: int = 300000, subsystem: str = "EMC", seconds: float = 0.0, **fields) -> SnapshotMeta:
    return SnapshotMeta(run, subsystem, T0 + timedelta(seconds=seconds), **fields)


def assert_same_histogram(got: Histogram, want: Histogram) -> None:
    assert (got.name, got.class_name, got.title) == (want.name, want.class_name, want.title)
    assert got.axis_titles == want.axis_titles
    assert got.entries == want.entries
    assert len(got.edges) == len(want.edges)
    for got_edges, want_edges in zip(got.edges, want.edges, strict=True):
        np.testing.assert_array_equal(got_edges, want_edges)
    np.testing.assert_array_equal(got.values_flow, want.values_flow)
    np.testing.assert_array_equal(got.variances_flow, want.variances_flow)


def parquet_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.rglob("*.parquet"))


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "data")


def test_th1_th2_th3_read_back_exactly_as_written(store: SnapshotStore) -> None:
    written = [th3(), th1(), th2()]
    snapshot_id = store.write_snapshot(meta(hlt_mode="B", beam_type="Pb-Pb"), written)

    assert snapshot_id == "EMC_300000_20250601T120000.123456"
    read_meta, histograms = store.read_snapshot(snapshot_id)
    assert read_meta == SnapshotMeta(300000, "EMC", T0, "B", "Pb-Pb")
    assert list(histograms) == ["EMCTRQA/hEtaPhi", "TPCQA/h_dca", "hAmp"]
    for histogram in written:
        assert_same_histogram(histograms[histogram.name], histogram)
    # Concrete numbers, flow bins included: TH1 underflow/overflow, TH2 corner, TH3 last cell.
    assert histograms["hAmp"].values(flow=True)[[0, 11]].tolist() == [0.0, 11.0]
    assert histograms["hAmp"].variances()[0] == 2.0
    assert histograms["EMCTRQA/hEtaPhi"].values_flow[4, 3] == 28.5
    assert histograms["EMCTRQA/hEtaPhi"].values().shape == (3, 2)
    assert histograms["TPCQA/h_dca"].values_flow[3, 4, 2] == 52.0
    assert histograms["TPCQA/h_dca"].edges[2].tolist() == [0.5, 3.0]


def test_selected_names_and_single_histogram(store: SnapshotStore) -> None:
    many = [th1(f"h{i:03d}", offset=i) for i in range(100)]
    snapshot_id = store.write_snapshot(meta(), [*many, th2()])

    assert store.histogram_names(snapshot_id) == sorted(h.name for h in [*many, th2()])
    _, subset = store.read_snapshot(snapshot_id, ["h070", "h003", "EMCTRQA/hEtaPhi"])
    assert sorted(subset) == ["EMCTRQA/hEtaPhi", "h003", "h070"]
    assert_same_histogram(subset["h070"], many[70])
    single = store.read_histogram(snapshot_id, "h099")
    assert single.values_flow[0] == 99.0
    assert_same_histogram(single, many[99])


def test_unknown_snapshot_or_histogram_is_a_clear_key_error(store: SnapshotStore) -> None:
    snapshot_id = store.write_snapshot(meta(), [th1()])
    with pytest.raises(KeyError, match=r"unknown snapshot 'EMC_300000_20990101T000000\.000000'"):
        store.read_snapshot("EMC_300000_20990101T000000.000000")
    with pytest.raises(KeyError, match="unknown snapshot 'not-an-id'"):
        store.histogram_names("not-an-id")
    with pytest.raises(KeyError, match=r"has no histogram\(s\) \['nope'\]"):
        store.read_histogram(snapshot_id, "nope")


@pytest.mark.parametrize(
    ("bad_meta", "histograms", "message"),
    [
        (meta(run=0), [th1()], "run must be a positive integer"),
        (meta(run=-5), [th1()], "run must be a positive integer"),
        (meta(), [], "at least one histogram"),
        (SnapshotMeta(300000, "EMC", datetime(2025, 6, 1, 12)), [th1()], "naive"),
        (meta(subsystem="../EMC"), [th1()], "subsystem"),
        (meta(hlt_mode="B/"), [th1()], "hlt_mode"),
        (meta(hlt_mode="B\n"), [th1()], "hlt_mode"),  # re.match's $ would let a trailing newline in
        (meta(subsystem="EMC\n"), [th1()], "subsystem"),
        (meta(beam_type=None), [th1()], "beam_type"),
        (meta(), [th1("same"), th2("same")], "duplicate histogram names"),
    ],
)
def test_bad_snapshots_are_rejected_and_nothing_is_written(
    store: SnapshotStore, bad_meta: SnapshotMeta, histograms: list[Histogram], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.write_snapshot(bad_meta, histograms)
    assert not store.data_dir.exists() or not any(p.is_file() for p in store.data_dir.rglob("*"))
    assert store.count_snapshots() == 0


def test_listing_runs_and_snapshots(store: SnapshotStore) -> None:
    geneva = timezone(timedelta(hours=2))
    store.write_snapshot(meta(300000, "EMC", 0, hlt_mode="B", beam_type="pp"), [th1()])
    store.write_snapshot(meta(300000, "EMC", 60, hlt_mode="C", beam_type="pp"), [th1(), th2()])
    store.write_snapshot(meta(np.int64(300000), "TPC", 30), [th3()])  # numpy ints are fine
    # Given in Geneva summer time: stored and listed in UTC.
    late = SnapshotMeta(300002, "EMC", datetime(2025, 6, 1, 16, 0, tzinfo=geneva), "B")
    late_id = store.write_snapshot(late, [th1()])
    assert late_id == "EMC_300002_20250601T140000.000000"

    runs = store.runs()
    assert list(runs.columns) == [
        "run",
        "subsystem",
        "hlt_mode",
        "beam_type",
        "first_snapshot_utc",
        "last_snapshot_utc",
        "n_snapshots",
        "merger_reset",
    ]
    assert runs[["run", "subsystem", "n_snapshots"]].values.tolist() == [
        [300002, "EMC", 1],
        [300000, "EMC", 2],
        [300000, "TPC", 1],
    ]
    emc = runs.iloc[1]
    assert (emc.hlt_mode, emc.beam_type) == ("C", "pp")  # from the newest snapshot
    assert emc.first_snapshot_utc == pd.Timestamp(T0)
    assert emc.last_snapshot_utc == pd.Timestamp(T0 + timedelta(seconds=60))
    assert str(runs["last_snapshot_utc"].dtype) == "datetime64[us, UTC]"
    assert store.runs("TPC")["run"].tolist() == [300000]

    snapshots = store.snapshots(300000, "EMC")
    assert snapshots["snapshot_id"].tolist() == [
        "EMC_300000_20250601T120000.123456",
        "EMC_300000_20250601T120100.123456",
    ]
    assert snapshots["n_histograms"].tolist() == [1, 2]
    assert store.latest_snapshot_id(300000, "EMC") == "EMC_300000_20250601T120100.123456"
    assert store.latest_snapshot_id(300001, "EMC") is None
    assert (store.count_snapshots(), store.count_snapshots("EMC")) == (4, 3)


def test_empty_store_lists_nothing(store: SnapshotStore) -> None:
    assert store.runs().empty
    assert list(store.runs().columns)[:2] == ["run", "subsystem"]
    assert store.snapshots(1, "EMC").empty
    assert store.count_snapshots() == 0
    assert store.sql("select count(*) as n from histograms")["n"].tolist() == [0]


def test_same_time_gets_a_suffix_and_never_overwrites(store: SnapshotStore) -> None:
    first = store.write_snapshot(meta(), [th1(offset=0)])
    second = store.write_snapshot(meta(), [th1(offset=100)])
    third = store.write_snapshot(meta(), [th1(offset=200)])

    assert (second, third) == (f"{first}_1", f"{first}_2")
    assert store.read_histogram(first, "hAmp").values_flow[0] == 0.0
    assert store.read_histogram(second, "hAmp").values_flow[0] == 100.0
    assert store.snapshots(300000, "EMC")["snapshot_id"].tolist() == [first, second, third]
    assert store.latest_snapshot_id(300000, "EMC") == third


def test_a_snapshot_published_in_the_same_clock_tick_as_a_listing_is_never_missed(
    store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dashboard lists the run folder while a receiver publishes into it. Folder mtimes come from a
    # coarse clock, so the publication can leave the mtime as it was when the listing was taken;
    # such a listing must not be reused later, when the mtime looks old and settled.
    store.write_snapshot(SnapshotMeta(10, "EMC", T0), [th1()])
    run_dir = store.data_dir / "snapshots" / "subsystem=EMC" / "run=10"
    tick_ns = run_dir.stat().st_mtime_ns
    real_time_ns = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: tick_ns + 100_000_000)  # listed 0.1 s after the change
    assert len(store.snapshot_keys(10, "EMC")) == 1
    monkeypatch.setattr(time, "time_ns", real_time_ns)
    store.write_snapshot(SnapshotMeta(10, "EMC", T0 + timedelta(minutes=1)), [th1(offset=1.0)])
    os.utime(run_dir, ns=(tick_ns, tick_ns))  # the same clock tick
    monkeypatch.setattr(time, "time_ns", lambda: tick_ns + 5_000_000_000)  # asked again 5 s later
    assert len(store.snapshot_keys(10, "EMC")) == 2
    assert store.latest_snapshot_id(10, "EMC").endswith("T120100.123456")


def test_replay_mode_is_stored_apart(store: SnapshotStore) -> None:
    store.write_snapshot(meta(300000), [th1()])
    replay_id = store.write_snapshot(meta(300001, hlt_mode="E"), [th2()])

    replay_file = store.data_dir / "replay/subsystem=EMC/run=300001" / f"{replay_id}.parquet"
    assert replay_file.is_file()
    assert store.runs()["run"].tolist() == [300000]
    assert store.count_snapshots() == 1
    assert store.snapshots(300001, "EMC").empty
    assert store.runs(include_replay=True)[["run", "hlt_mode"]].values.tolist() == [
        [300001, "E"],
        [300000, "U"],
    ]
    assert store.latest_snapshot_id(300001, "EMC", include_replay=True) == replay_id
    assert_same_histogram(store.read_histogram(replay_id, th2().name), th2())


def test_stray_and_foreign_files_are_ignored(store: SnapshotStore) -> None:
    snapshot_id = store.write_snapshot(meta(), [th1()])
    run_dir = store.data_dir / "snapshots/subsystem=EMC/run=300000"
    (run_dir / f".{snapshot_id}_9.parquet.123.tmp").write_bytes(b"PAR1 half a file")
    (run_dir / "notes.parquet").write_bytes(b"not ours")
    (run_dir / ".hidden.parquet").write_bytes(b"dot file")
    # A snapshot file in the wrong run directory would make hive columns and ids disagree.
    misplaced = run_dir.parent / "run=300009"
    misplaced.mkdir()
    (misplaced / f"{snapshot_id}.parquet").hardlink_to(run_dir / f"{snapshot_id}.parquet")

    assert store.count_snapshots() == 1
    assert store.runs()["run"].tolist() == [300000]
    assert store.snapshots(300000, "EMC")["snapshot_id"].tolist() == [snapshot_id]
    assert store.remove_stale_temp_files(max_age_s=3600) == 0
    assert store.remove_stale_temp_files(max_age_s=-1) == 1


def test_plain_duckdb_and_pandas_read_the_store_without_our_code(store: SnapshotStore) -> None:
    store.write_snapshot(meta(300000, "EMC"), [th1(), th2()])
    store.write_snapshot(meta(300007, "TPC"), [th3()])
    data_dir = store.data_dir

    every_snapshot = f"read_parquet('{data_dir}/snapshots/**/*.parquet', hive_partitioning=true)"
    columns = "run, subsystem, name, nbins, values, snapshot_time_utc"
    rows = duckdb.sql(f"select {columns} from {every_snapshot} order by name").fetchall()
    assert [row[:3] for row in rows] == [
        (300000, "EMC", "EMCTRQA/hEtaPhi"),
        (300007, "TPC", "TPCQA/h_dca"),
        (300000, "EMC", "hAmp"),
    ]
    # Rebuild the TH2 contents from the plain row: C order over nbins+2 per axis.
    nbins, values = rows[0][3], rows[0][4]
    np.testing.assert_array_equal(np.reshape(values, [n + 2 for n in nbins]), th2().values_flow)
    assert rows[0][5] == T0
    described = duckdb.sql(f"describe select * from {every_snapshot}").fetchall()
    assert [column[0] for column in described] == SNAPSHOT_SCHEMA.names  # no duplicated partitions

    one_file = next((data_dir / "snapshots/subsystem=TPC").rglob("*.parquet"))
    frame = pd.read_parquet(one_file)
    assert frame[["run", "subsystem", "name"]].values.tolist() == [[300007, "TPC", "TPCQA/h_dca"]]
    assert frame["entries"].tolist() == [60.0]
    # Whole tree with pandas: the columns are in the files, so skip hive discovery.
    everything = pd.read_parquet(data_dir / "snapshots", partitioning=None)
    assert sorted(everything["run"].tolist()) == [300000, 300000, 300007]


def test_sql_helper_and_documented_schema(store: SnapshotStore) -> None:
    snapshot_id = store.write_snapshot(meta(), [th1(), th2()])
    store.write_snapshot(meta(300001, hlt_mode="E"), [th1()])

    counts = store.sql("select run, count(*) as n from histograms group by run order by run")
    assert counts.values.tolist() == [[300000, 2]]
    with_replay = store.sql("select count(*) as n from histograms", include_replay=True)
    assert with_replay["n"].tolist() == [3]

    path = next(store.data_dir.glob("snapshots/**/*.parquet"))
    assert pq.read_schema(path).remove_metadata().equals(SNAPSHOT_SCHEMA.remove_metadata())
    assert path.stem == snapshot_id
    table = schema_markdown()
    for name in SNAPSHOT_SCHEMA.names:
        assert f"| `{name}` |" in table
    # The README documents exactly the schema the store writes.
    assert table in (REPO_ROOT / "README.md").read_text()


def counts_histogram(name: str, seed: int) -> Histogram:
    """An unweighted TH2F as a receiver decodes it: whole-number contents, variances equal to them."""
    counts = np.random.default_rng(seed).poisson(20.0, size=(50, 106)).astype(float)
    return Histogram(name, "TH2F", "counts", (np.arange(49.0), np.arange(105.0)), counts, counts.copy(), 1.0)


def test_variances_equal_to_values_are_stored_once_and_read_back_bit_for_bit(store: SnapshotStore) -> None:
    unweighted = counts_histogram("unweighted", 1)
    shared_counts = counts_histogram("shared", 2).values_flow
    shared_counts.flags.writeable = False
    shared = Histogram("shared", "TH2F", "", unweighted.edges, shared_counts, shared_counts, 5.0)
    # Equal as numbers, not as bits: -0.0 contents with +0.0 variances must come back as they were.
    signed = np.array([-0.0, 1.0, 2.0, 0.0])
    negative_zero = Histogram("negative_zero", "TH1D", "", (np.arange(3.0),), signed, np.abs(signed), 3.0)
    written = [unweighted, shared, negative_zero, th1(), th3()]
    snapshot_id = store.write_snapshot(meta(), written)

    _, histograms = store.read_snapshot(snapshot_id)
    for histogram in written:
        got = histograms[histogram.name]
        assert_same_histogram(got, histogram)
        assert got.values_flow.tobytes() == histogram.values_flow.tobytes()
        assert got.variances_flow.tobytes() == histogram.variances_flow.tobytes()
    assert np.signbit(histograms["negative_zero"].values_flow[0])
    assert not np.signbit(histograms["negative_zero"].variances_flow[0])
    assert histograms["unweighted"].variances_flow[10, 20] == unweighted.values_flow[10, 20] > 0

    # In the file the equal variances are null; plain SQL gets them back with coalesce().
    path = next(store.data_dir.glob("snapshots/**/*.parquet"))
    stored = pq.read_table(path, columns=["name", "variances"]).to_pydict()
    stored_null = dict(zip(stored["name"], (v is None for v in stored["variances"]), strict=True))
    assert stored_null == {
        "TPCQA/h_dca": False,
        "hAmp": False,
        "negative_zero": False,
        "shared": True,
        "unweighted": True,
    }
    rows = duckdb.sql(
        f"select name, coalesce(variances, values) from read_parquet('{path}') order by name"
    ).fetchall()
    plain = {name: np.array(variances) for name, variances in rows}
    for histogram in written:
        assert plain[histogram.name].tobytes() == histogram.variances_flow.ravel().tobytes()


def test_a_reply_of_counts_is_stored_compressed_and_plain_tools_read_it(store: SnapshotStore) -> None:
    written = [counts_histogram(f"h{i:03d}", i) for i in range(100)]
    snapshot_id = store.write_snapshot(meta(), written)
    path = next(store.data_dir.glob("snapshots/**/*.parquet"))
    raw_bytes = sum(h.values_flow.nbytes for h in written)  # 4.2 MB of float64 contents
    assert path.stat().st_size < raw_bytes / 10
    assert pq.ParquetFile(path).metadata.num_row_groups == 4  # 32 rows each

    frame = pd.read_parquet(path)
    assert frame["name"].tolist() == [h.name for h in written]
    assert frame["variances"].isna().all()
    for row in (0, 31, 32, 99):  # first and last rows of row groups
        np.testing.assert_array_equal(frame["values"][row], written[row].values_flow.ravel())
    [(total,)] = duckdb.sql(f"select sum(list_sum(values)) from read_parquet('{path}')").fetchall()
    assert total == sum(h.values_flow.sum() for h in written)
    assert_same_histogram(store.read_histogram(snapshot_id, "h070"), written[70])


def test_row_groups_are_bounded_by_bins_and_rows() -> None:
    assert row_group_bounds([]) == [0]
    assert row_group_bounds([5300] * 70) == [0, 32, 64, 70]  # 32 maps of 48x104 fill a group
    assert row_group_bounds([102] * 300) == [0, 128, 256, 300]  # small ones: the row bound
    # Never fewer rows than before the bound (32): large histograms would make a larger file.
    assert row_group_bounds([2 * ROW_GROUP_BINS] * 40) == [0, ROW_GROUP_MIN_ROWS, 40]
    assert row_group_bounds([10, 2 * ROW_GROUP_BINS, 10, 10]) == [0, 4]


def test_small_histograms_share_row_groups_and_read_back_exactly(store: SnapshotStore) -> None:
    # 40 maps of 48x104 then 300 TH1 of 100 bins, as a reply of the EMC-like benchmark holds them.
    maps = [counts_histogram(f"a{i:03d}", i) for i in range(40)]
    small = [th1(f"b{i:03d}", offset=i) for i in range(300)]
    snapshot_id = store.write_snapshot(meta(), maps + small)
    path = next(store.data_dir.glob("snapshots/**/*.parquet"))
    metadata = pq.ParquetFile(path).metadata
    rows = [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]
    # 32 maps; 8 maps and 120 TH1 (128 rows); then TH1 up to the row bound.
    assert rows == [32, ROW_GROUP_MAX_ROWS, ROW_GROUP_MAX_ROWS, 340 - 32 - 2 * ROW_GROUP_MAX_ROWS]
    histograms = store.read_snapshot(snapshot_id)[1]
    for written in maps + small:
        assert_same_histogram(histograms[written.name], written)
    # A read of one name decodes its row group only: the names' statistics prune the others.
    assert_same_histogram(store.read_histogram(snapshot_id, "b250"), small[250])


def test_snapshots_written_before_variances_became_nullable_still_read(store: SnapshotStore) -> None:
    # Schema version 1: variances always written, never null (and pyarrow's default encodings).
    old_meta = meta(300000, seconds=-60)
    old_id = "EMC_300000_20250601T115900.123456"
    table = histograms_to_table(old_id, old_meta, [th1(), counts_histogram("unweighted", 3)])
    variances = pa.array([th1().variances_flow, counts_histogram("unweighted", 3).variances_flow.ravel()])
    index = table.schema.get_field_index("variances")
    field = table.schema.field(index).with_nullable(False)
    table = table.set_column(index, field, variances.cast(field.type))
    footer = {**table.schema.metadata, b"overwatch_ng.schema_version": b"1"}
    run_dir = store.data_dir / "snapshots/subsystem=EMC/run=300000"
    run_dir.mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata(footer), run_dir / f"{old_id}.parquet", row_group_size=32)
    new_id = store.write_snapshot(meta(), [th1(offset=1.0), counts_histogram("unweighted", 4)])

    assert store.snapshots(300000, "EMC")["snapshot_id"].tolist() == [old_id, new_id]
    _, old = store.read_snapshot(old_id)
    assert_same_histogram(old["hAmp"], th1())
    assert_same_histogram(old["unweighted"], counts_histogram("unweighted", 3))
    both = store.sql("select snapshot_id, coalesce(variances, values)[1] as v from histograms order by all")
    assert both.values.tolist() == [
        [old_id, 0.0],
        [old_id, counts_histogram("unweighted", 3).variances_flow[0, 0]],
        [new_id, 2.0],
        [new_id, counts_histogram("unweighted", 4).values_flow[0, 0]],
    ]


def test_merger_reset_is_kept_in_the_footer_and_readable_without_our_code(store: SnapshotStore) -> None:
    cumulative_id = store.write_snapshot(meta(300000, seconds=0), [th1()])
    reset_id = store.write_snapshot(meta(300000, seconds=60, merger_reset=True), [th1()])
    other_run_id = store.write_snapshot(meta(300001, seconds=120), [th1()])

    assert store.snapshot_meta(cumulative_id).merger_reset is False
    assert store.snapshot_meta(reset_id).merger_reset is True
    assert SnapshotStore(store.data_dir).read_snapshot(reset_id)[0].merger_reset is True
    # runs() reports the newest snapshot's flag.
    assert store.runs()[["run", "merger_reset"]].values.tolist() == [[300001, False], [300000, True]]
    # Plain pyarrow: one JSON record in the footer's key/value metadata, no column.
    path = store.data_dir / f"snapshots/subsystem=EMC/run=300000/{reset_id}.parquet"
    footer = pq.read_metadata(path).metadata
    assert json.loads(footer[b"overwatch_ng.snapshot"])["merger_reset"] is True
    assert pq.read_schema(path).names == SNAPSHOT_SCHEMA.names
    # Plain DuckDB too.
    [(flag,)] = duckdb.sql(
        f"select json_extract(decode(value), '$.merger_reset')::boolean from parquet_kv_metadata('{path}') "
        "where decode(key) = 'overwatch_ng.snapshot'"
    ).fetchall()
    assert flag is True
    assert other_run_id


def test_snapshots_written_before_merger_reset_existed_read_as_cumulative(store: SnapshotStore) -> None:
    old_id = "EMC_300000_20250601T115900.123456"
    table = histograms_to_table(old_id, meta(300000, seconds=-60, merger_reset=True), [th1()])
    record = json.loads(table.schema.metadata[b"overwatch_ng.snapshot"])
    del record["merger_reset"]
    footer = {**table.schema.metadata, b"overwatch_ng.snapshot": json.dumps(record).encode()}
    run_dir = store.data_dir / "snapshots/subsystem=EMC/run=300000"
    run_dir.mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata(footer), run_dir / f"{old_id}.parquet")

    assert store.snapshot_meta(old_id).merger_reset is False
    assert store.runs()["merger_reset"].tolist() == [False]


def test_merger_reset_must_be_a_bool(store: SnapshotStore) -> None:
    with pytest.raises(ValueError, match="merger_reset"):
        store.write_snapshot(meta(merger_reset="yes"), [th1()])


CHILD_WRITER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
import os
import numpy as np
from pipeline import atomic_files
from pipeline.histogram import Histogram
from pipeline.store import BoundedCache, SnapshotMeta, SnapshotStore

def stall_half_way(draft, content):
    # Half the file's bytes are on disk, the rest (and the footer) are not: the temp file is half written.
    view = memoryview(content)
    os.write(draft.descriptor, view[: len(view) // 2])
    print("PARTIAL", flush=True)
    time.sleep(60)

atomic_files._fill = stall_half_way
edges = (np.linspace(0, 48, 49), np.linspace(0, 104, 105))
# Random numbers: they do not compress, so the row groups written before the stall are big.
contents = np.random.default_rng(7).random((50, 106))
big = [Histogram(f"h{i:03d}", "TH2F", "", edges, contents, contents) for i in range(300)]
when = datetime(2025, 6, 1, 13, 0, tzinfo=UTC)
SnapshotStore(Path(sys.argv[1])).write_snapshot(SnapshotMeta(300000, "EMC", when), big)
print("FINISHED", flush=True)
"""


def unnamed_file_sizes(pid: int) -> list[int]:
    """Sizes of the files process `pid` holds open that have no name (unlinked or O_TMPFILE)."""
    sizes = []
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(descriptor).endswith(" (deleted)"):
                sizes.append(descriptor.stat().st_size)
        except OSError:
            continue
    return sizes


def test_writer_killed_mid_write_leaves_no_visible_snapshot(store: SnapshotStore) -> None:
    complete = [store.write_snapshot(meta(seconds=s), [th1(), th2()]) for s in (0, 60)]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_WRITER, str(store.data_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    committed = sorted(str(path) for path in store.data_dir.rglob("*"))
    try:
        ready, _, _ = select.select([child.stdout], [], [], 30)
        assert ready and child.stdout.readline().strip() == "PARTIAL"
        # The half-written file is on disk, open in the writer, but has no name: nothing lists it.
        assert max(unnamed_file_sizes(child.pid), default=0) > 100_000
        assert sorted(str(path) for path in store.data_dir.rglob("*")) == committed
        seen = duckdb.sql(f"select file from glob('{store.data_dir}/**/*') order by file").fetchall()
        assert [row[0] for row in seen] == [path for path in committed if Path(path).is_file()]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    # The killed writer left nothing at all behind.
    assert sorted(str(path) for path in store.data_dir.rglob("*")) == committed
    reader = SnapshotStore(store.data_dir)
    assert reader.count_snapshots() == 2
    assert reader.snapshots(300000, "EMC")["snapshot_id"].tolist() == complete
    assert reader.runs()["n_snapshots"].tolist() == [2]
    for snapshot_id in complete:
        assert_same_histogram(reader.read_histogram(snapshot_id, "hAmp"), th1())
    plain = duckdb.sql(
        f"select count(*) from read_parquet('{store.data_dir}/snapshots/**/*.parquet')"
    ).fetchall()
    assert plain == [(4,)]
    # The next writer takes the time the dead one wanted, without a suffix: nothing was published.
    dead_writers_time = datetime(2025, 6, 1, 13, tzinfo=UTC)
    retry_id = reader.write_snapshot(SnapshotMeta(300000, "EMC", dead_writers_time), [th1()])
    assert retry_id == "EMC_300000_20250601T130000.000000"


def test_snapshots_of_schema_version_2_still_read_next_to_version_3(store: SnapshotStore) -> None:
    # Version 2 declared the numbers inside the lists nullable; version 3 declares them non-null.
    old_id = "EMC_300000_20250601T115900.123456"
    old_histograms = [th1(), th2(), counts_histogram("unweighted", 5)]
    table = histograms_to_table(old_id, meta(300000, seconds=-60), old_histograms)
    nullable_items = pa.schema(
        [
            field.with_type(pa.list_(field.type.value_type)) if pa.types.is_list(field.type) else field
            for field in table.schema
        ],
        metadata={**table.schema.metadata, b"overwatch_ng.schema_version": b"2"},
    )
    table = table.cast(nullable_items)
    assert table.schema.field("values").type.value_field.nullable
    run_dir = store.data_dir / "snapshots/subsystem=EMC/run=300000"
    run_dir.mkdir(parents=True)
    pq.write_table(table, run_dir / f"{old_id}.parquet", row_group_size=32)
    new_id = store.write_snapshot(meta(), [th1(offset=2.0)])

    new_path = run_dir / f"{new_id}.parquet"
    assert not pq.read_schema(new_path).field("values").type.value_field.nullable
    assert pq.read_metadata(new_path).metadata[b"overwatch_ng.schema_version"] == b"3"
    _, old = store.read_snapshot(old_id)
    for histogram in old_histograms:
        assert_same_histogram(old[histogram.name], histogram)
    sums = store.sql("select snapshot_id, name, list_sum(values) as s from histograms order by all")
    assert sums.values.tolist() == [
        [old_id, "EMCTRQA/hEtaPhi", th2().values_flow.sum()],
        [old_id, "hAmp", th1().values_flow.sum()],
        [old_id, "unweighted", counts_histogram("unweighted", 5).values_flow.sum()],
        [new_id, "hAmp", th1(offset=2.0).values_flow.sum()],
    ]


def test_write_snapshot_once_stores_under_the_snapshots_own_id_only_once(store: SnapshotStore) -> None:
    first = store.write_snapshot_once(meta(), [th1()])
    assert first == "EMC_300000_20250601T120000.123456"
    assert store.has_snapshot(first)
    assert store.write_snapshot_once(meta(), [th1(offset=5.0)]) is None  # same id: nothing added
    assert store.snapshots(300000, "EMC")["snapshot_id"].tolist() == [first]
    assert_same_histogram(store.read_histogram(first, "hAmp"), th1())
    # write_snapshot, for replies, still adds a suffixed snapshot at the same time.
    assert store.write_snapshot(meta(), [th1()]) == f"{first}_1"


def test_per_file_caches_keep_only_the_most_recently_used(tmp_path, monkeypatch):
    # A dashboard runs for days while snapshots keep arriving: its caches must not grow with them.
    cache = BoundedCache(2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache["c"] = 3
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    monkeypatch.setattr("pipeline.store.NAME_LISTS_KEPT", 3)
    store = SnapshotStore(tmp_path)
    ids = [store.write_snapshot(SnapshotMeta(5, "EMC", T0 + timedelta(seconds=i)), [th2()]) for i in range(6)]
    for snapshot_id in ids:
        assert store.histogram_names(snapshot_id) == [th2().name]
    assert len(store._names) == 3


def test_a_weighted_cache_keeps_its_total_weight_under_the_limit():
    cache = BoundedCache(100, max_weight=10, weight=len)
    for key in "abcd":
        cache[key] = [0] * 3  # 4 x 3 = 12: the oldest goes
    assert (len(cache), cache.total_weight, cache.get("a")) == (3, 9, None)
    cache["b"] = [0] * 5  # replacing an entry re-weighs it: 3 + 3 + 5 = 11 drops "c"
    assert (cache.get("c"), cache.total_weight) == (None, 8)
    assert cache.pop("d") == [0] * 3 and cache.total_weight == 5
    cache["huge"] = [0] * 11  # heavier than the limit alone: kept by nobody
    assert (cache.get("huge"), len(cache), cache.total_weight) == (None, 0, 0)
    cache["e"] = [0] * 4
    cache.clear()  # forgets the weight too, or later entries would be dropped as soon as they come
    cache["f"] = [0] * 9
    assert (cache.get("f"), cache.total_weight) == ([0] * 9, 9)
    with pytest.raises(ValueError):
        BoundedCache(10, max_weight=5)


def test_folder_listings_are_bounded_by_the_snapshots_they_name(tmp_path, monkeypatch):
    # A run list lists every folder of the store; the listings it leaves must not grow with the store.
    listings = BoundedCache(4096, max_weight=5, weight=lambda cached: len(cached[1]))
    monkeypatch.setattr("pipeline.store._FOLDER_LISTINGS", listings)
    monkeypatch.setattr("pipeline.store.RACY_NS", 0)  # listings taken right after a write may be kept
    store = SnapshotStore(tmp_path)
    for run in (1, 2, 3, 4):
        for second in (0, 1):
            store.write_snapshot(SnapshotMeta(run, "EMC", T0 + timedelta(seconds=second)), [th1()])
    time.sleep(0.01)
    assert sorted(store.runs()["run"]) == [1, 2, 3, 4]  # lists the 4 folders of 2 snapshots each
    assert (len(listings), listings.total_weight) == (2, 4)
    assert [key.run for key, _ in listings.values()[-1][1]] == [4, 4]


def test_a_weighted_cache_reweighs_values_that_fill_up_after_they_were_stored():
    # A slice reads its histograms after it is cached: its weight is taken again as it fills.
    cache = BoundedCache(100, max_weight=10, weight=len)
    a, b = [0] * 2, [0] * 2
    cache["a"], cache["b"] = a, b
    a.extend([0] * 4)  # "a" holds 6 now; the cache still counts 2 until told
    assert cache.total_weight == 4
    cache.reweigh("a")
    assert (cache.total_weight, len(cache)) == (8, 2)
    b.extend([0] * 3)
    cache.reweigh("b")  # 6 + 5 = 11 > 10: the least recently used ("a") goes, not the one that grew
    assert (cache.get("a"), cache.get("b"), cache.total_weight) == (None, b, 5)
    b.extend([0] * 6)
    cache.reweigh("b")  # 11 alone: too heavy to keep at all
    assert (len(cache), cache.total_weight) == (0, 0)
    cache.reweigh("gone")  # nothing to weigh: no error, no change
    c = [0] * 3
    cache["c"] = c
    c.extend([0] * 4)
    assert cache.pop("c") is c and cache.total_weight == 0  # dropping frees what was counted, not len now


def test_a_weighted_cache_weighs_outside_its_lock():
    # A value's weight may take the value's own lock; holding the cache's lock meanwhile could deadlock
    # with a thread that holds the value's lock and asks the cache. Here the weight reads the cache.
    def weight(value: list[int]) -> int:
        assert cache.get("other") is None  # takes the cache's lock: a deadlock if it were held here
        return len(value)

    cache: BoundedCache[str, list[int]] = BoundedCache(10, max_weight=100, weight=weight)
    done = []

    def fill() -> None:
        cache["a"] = [0] * 3
        cache.reweigh("a")
        done.append(cache.get("a") is not None and "a" in cache)

    worker = threading.Thread(target=fill, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done == [True]
