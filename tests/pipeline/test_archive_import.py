"""Import of the original's receiver archive: names, Zurich times, modes, values, idempotence, Dask."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from pipeline.__main__ import main
from pipeline.archive.driver import import_archive
from pipeline.archive.synthetic import (
    counts_histograms,
    dqm_name,
    flat_name,
    moved_path,
    write_receiver_file,
    write_run_info,
)
from pipeline.histogram import Histogram
from pipeline.qc.paths import CHECKS_TABLE, TRENDS_TABLE
from pipeline.qc.results import read_results, result_files
from pipeline.qc.schema import CHECKS_SCHEMA
from pipeline.settings import Settings
from pipeline.store import SnapshotStore


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def small_histograms(seed: int, prefix: str = "EMCTRQA_hist") -> list[Histogram]:
    return counts_histograms(4, seed, prefix)


def tpc_histograms(seed: int) -> list[Histogram]:
    rng = np.random.default_rng(seed)
    values = rng.normal(3.0, 2.0, size=(12, 7))  # signed, non-integer: weighted-like contents
    return [
        Histogram(
            "TPCQA/h_tpc_dca",
            "TH2D",
            "dca",
            (np.linspace(-5.0, 5.0, 11), np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0])),
            values,
            np.abs(values) * 1.5,
            40.0,
            ("dca (cm)", "pT"),
        )
    ]


# What the archive holds: (path relative to the archive, histograms or None for special files).
# Times are the UTC instants; names carry them in Zurich wall-clock time (CEST +2 h, CET +1 h).
SUMMER = [utc(2018, 7, 1, 10, 0, 0), utc(2018, 7, 1, 10, 1, 0), utc(2018, 7, 1, 10, 2, 0)]
WINTER = [utc(2018, 1, 15, 11, 0, 0), utc(2018, 1, 15, 11, 1, 30)]
AUTUMN_REPEATED_HOUR = utc(2018, 10, 28, 0, 30, 0)  # 02:30 CEST; 02:30 CET would be 01:30 UTC
SPRING_AFTER_SWITCH = utc(2018, 3, 25, 1, 30, 0)  # 03:30 CEST, just after 02:00 CET became 03:00


def expected_snapshots() -> dict[tuple[str, str, int, datetime], tuple[str, list[Histogram]]]:
    """(area, subsystem, run, UTC time) -> (HLT mode, histograms) for every file that must be stored."""
    expected = {}
    for index, time_utc in enumerate(SUMMER):
        expected["snapshots", "EMC", 300001, time_utc] = ("B", small_histograms(index))
    for index, time_utc in enumerate(WINTER):
        expected["snapshots", "TPC", 300002, time_utc] = ("C", tpc_histograms(index))
    expected["snapshots", "EMC", 300004, SPRING_AFTER_SWITCH] = ("DQM", small_histograms(40))
    expected["replay", "EMC", 300005, SUMMER[0]] = ("E", small_histograms(50))
    expected["replay", "EMC", 300006, SUMMER[1]] = ("E", small_histograms(60))
    expected["snapshots", "HLT", 300007, SUMMER[2]] = ("U", small_histograms(70, "fHistHLT"))
    return expected


def make_archive(root: Path, fixtures_dir: Path) -> Path:
    """Every naming scheme of the original, plus the files the import must skip or report."""
    archive = root / "archive"
    for index, time_utc in enumerate(SUMMER):  # flat ZMQ receiver files
        write_receiver_file(
            archive / "data" / flat_name("EMC", 300001, "B", time_utc), small_histograms(index)
        )
    # The first one again, as the processing moved it: the same snapshot, imported once.
    moved_copy = archive / moved_path("EMC", 300001, SUMMER[0])
    moved_copy.parent.mkdir(parents=True)
    shutil.copyfile(archive / "data" / flat_name("EMC", 300001, "B", SUMMER[0]), moved_copy)
    write_run_info(archive, 300001, "B")
    for index, time_utc in enumerate(WINTER):  # moved files: the mode comes from runInfo.yaml
        write_receiver_file(archive / moved_path("TPC", 300002, time_utc), tpc_histograms(index))
    write_run_info(archive, 300002, "C")
    tpc_folder = archive / "Run300002" / "TPC"
    write_receiver_file(tpc_folder / "hists.combined.1.1516014090.root", tpc_histograms(1))
    write_receiver_file(tpc_folder / "timeSlice.1516014000.1516014090.4bb7cc4.root", tpc_histograms(1))
    (tpc_folder / "img").mkdir()
    (tpc_folder / "img" / "TPCQA_h_tpc_dca.png").write_bytes(b"\x89PNG")  # not a ROOT file: not counted
    # A Run-2 file (ROOT 6.08, TH1 v7 / TH1F v2), in the autumn hour that Zurich clocks repeat.
    shutil.copyfile(
        fixtures_dir / "run2_root608_th1f.root",
        archive / "data" / flat_name("HLT", 300003, "B", AUTUMN_REPEATED_HOUR),
    )
    write_receiver_file(archive / "data" / dqm_name("EMC", 300004, SPRING_AFTER_SWITCH), small_histograms(40))
    # Replay data: HLT mode E in the name, or moved under ReplayData/.
    write_receiver_file(archive / "data" / flat_name("EMC", 300005, "E", SUMMER[0]), small_histograms(50))
    write_receiver_file(archive / moved_path("EMC", 300006, SUMMER[1], replay=True), small_histograms(60))
    # Moved, without runInfo.yaml: mode unknown.
    hlt_file = write_receiver_file(
        archive / moved_path("HLT", 300007, SUMMER[2]), small_histograms(70, "fHistHLT")
    )
    with uproot.update(hlt_file) as root_file:  # an object the store does not hold, beside the histograms
        root_file["fHistNote"] = "not a histogram"
    # No histogram in it: a receiver file holding a TObjString only.
    with uproot.recreate(archive / "data" / NO_HISTOGRAM) as root_file:
        root_file["note"] = "not a histogram"
    # Unreadable: a receiver name over bytes that are no ROOT file.
    (archive / "data" / flat_name("EMC", 300001, "B", utc(2018, 7, 1, 10, 5, 0))).write_bytes(b"root" * 100)
    return archive


UNREADABLE = "EMChistos_300001_B_2018_7_1_12_5_0.root"
NO_HISTOGRAM = "EMChistos_300001_B_2018_7_1_12_6_0.root"
RUN2_FILE = "HLThistos_300003_B_2018_10_28_2_30_0.root"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    return make_archive(tmp_path_factory.mktemp("original"), fixtures_dir)


def store_contents(data_dir: Path) -> dict[str, pa.Table]:
    """Every stored snapshot file, by its path in the store, as its table (columns and footer)."""
    return {
        str(path.relative_to(data_dir)): pq.read_table(path)
        for path in sorted(data_dir.glob("*/subsystem=*/run=*/*.parquet"))
    }


def assert_same_store(got: dict[str, pa.Table], want: dict[str, pa.Table]) -> None:
    assert got.keys() == want.keys()
    for path, table in want.items():
        assert got[path].equals(table, check_metadata=True), path


def assert_same_numbers(got: Histogram, want: Histogram) -> None:
    assert (got.name, got.class_name, got.title, got.entries) == (
        want.name,
        want.class_name,
        want.title,
        want.entries,
    )
    assert got.axis_titles == want.axis_titles
    for got_edges, want_edges in zip(got.edges, want.edges, strict=True):
        assert got_edges.tobytes() == np.asarray(want_edges, dtype=float).tobytes()
    assert got.values_flow.tobytes() == want.values_flow.tobytes()
    assert got.variances_flow.tobytes() == want.variances_flow.tobytes()


def test_archive_imports_into_exactly_the_expected_snapshots(
    archive: Path, tmp_path: Path, fixtures_dir: Path
):
    summary = import_archive(archive, tmp_path, workers=0, progress=None)

    assert summary.files == 15  # every .root file: 10 to import, 1 moved copy, 2 derived, 2 failing
    assert summary.snapshots == 10 and summary.histograms == 31  # 7 files of 4, 2 TPC files of 1, Run-2 1
    failed = {Path(path).name: reason for path, reason in summary.failed}
    assert failed.keys() == {UNREADABLE, NO_HISTOGRAM}
    assert failed[UNREADABLE].startswith("unreadable ROOT file: ")
    assert failed[NO_HISTOGRAM].startswith("no histogram left to store: ")
    assert "unsupported histogram class 'TObjString'" in failed[NO_HISTOGRAM]
    skipped = {Path(path).name: reason for path, reason in summary.skipped}
    assert skipped.keys() == {
        "EMChistos_300001_B_2018_7_1_12_0_0.root",  # the moved copy (first in path order) was imported
        "hists.combined.1.1516014090.root",
        "timeSlice.1516014000.1516014090.4bb7cc4.root",
    }
    duplicate = skipped["EMChistos_300001_B_2018_7_1_12_0_0.root"]
    assert duplicate.startswith("same snapshot (EMC_300001_20180701T100000.000000) as ")
    assert duplicate.endswith("Run300001/EMC/EMChists.2018_7_1_12_0_0.root")

    store = SnapshotStore(tmp_path)
    stored = {}
    for area in ("snapshots", "replay"):
        for path in sorted((tmp_path / area).glob("subsystem=*/run=*/*.parquet")):
            meta, histograms = store.read_snapshot(path.stem)
            stored[area, meta.subsystem, meta.run, meta.snapshot_time_utc] = (meta.hlt_mode, histograms)
    expected = expected_snapshots()
    run2_key = ("snapshots", "HLT", 300003, AUTUMN_REPEATED_HOUR)
    assert stored.keys() == expected.keys() | {run2_key}
    for key, (mode, histograms) in expected.items():
        assert stored[key][0] == mode, key
        assert sorted(stored[key][1]) == sorted(h.name for h in histograms)
        for histogram in histograms:
            assert_same_numbers(stored[key][1][histogram.name], histogram)
    # The Run-2 object: its values as ROOT 6.08 wrote them (one entry at x=4), read with the file's schema.
    mode, [(name, run2)] = stored[run2_key][0], stored[run2_key][1].items()
    with uproot.open(fixtures_dir / "run2_root608_th1f.root") as root_file:
        truth = root_file["test"]
        assert (mode, name, run2.class_name, run2.title) == ("B", "test", "TH1F", "testHist")
        assert run2.values_flow.tolist() == truth.values(flow=True).tolist()
        assert run2.values_flow[5] == 1.0 and run2.values_flow.sum() == 1.0
        np.testing.assert_array_equal(run2.edges[0], truth.axis().edges())


def test_a_second_import_adds_nothing(archive: Path, tmp_path: Path):
    import_archive(archive, tmp_path, workers=0, progress=None)
    before = store_contents(tmp_path)
    again = import_archive(archive, tmp_path, workers=0, progress=None)

    assert_same_store(store_contents(tmp_path), before)
    assert again.snapshots == 0 and again.histograms == 0
    already = [path for path, reason in again.skipped if reason.startswith("already stored as ")]
    assert len(already) == 10
    assert len(again.failed) == 2  # the files that failed are reported again


def test_the_command_line_prints_the_summary_and_says_a_file_failed(archive: Path, tmp_path: Path, capsys):
    code = main(["import-archive", str(archive), "--data-dir", str(tmp_path), "--workers", "0", "--no-qc"])
    out, err = capsys.readouterr()
    assert code == 1  # a file failed; the others were imported
    assert out.splitlines()[0] == (
        "15 files: 10 snapshots stored (31 histograms), 3 skipped, 2 failed; "
        "1 objects rejected inside stored files"
    )
    assert f"failed: {archive / 'data' / UNREADABLE}: unreadable ROOT file" in out
    assert "  skipped: 1 x combined file" in out
    bar = err.splitlines()[-1]  # the progress bar's last line
    assert bar.startswith("import 12/12 files [###") and bar.endswith(", 31 histograms, 2 failed")


def stored_snapshot_ids(data_dir: Path) -> set[str]:
    return {path.stem for path in (data_dir / "snapshots").glob("subsystem=*/run=*/*.parquet")}


def test_the_command_line_checks_and_trends_the_imported_runs(archive: Path, tmp_path: Path, capsys):
    code = main(["import-archive", str(archive), "--data-dir", str(tmp_path), "--workers", "0"])
    out, _ = capsys.readouterr()
    assert code == 1  # the two files that failed; the QC of the others did not
    imported = stored_snapshot_ids(tmp_path)
    assert len(imported) == 8  # the replay area's mode-E runs are stored, never processed
    assert out.splitlines()[-1] == (
        "quality control: rebuilt QC results of 8 snapshots in 5 runs (0 failed, 0 step errors)"
    )
    checks = read_results(tmp_path, CHECKS_TABLE, CHECKS_SCHEMA)
    assert set(checks["snapshot_id"]) == imported
    assert set(checks["quality"]) <= {"Good", "Medium", "Bad", "Null"} and "QC service" not in set(
        checks["title"]
    )
    trended = {path.stem for path in result_files(tmp_path, TRENDS_TABLE)}
    assert trended == imported  # trended like live runs, so their alarms could be evaluated


def test_two_dask_workers_store_the_same_as_one(archive: Path, tmp_path: Path):
    from distributed import LocalCluster

    one, two = tmp_path / "one", tmp_path / "two"
    summary_one = import_archive(archive, one, workers=1, progress=None)  # a local cluster of its own
    # Two workers of a cluster that already runs, as `--scheduler tcp://HOST:PORT` uses one.
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        local_directory=tmp_path / "scratch",
    ) as cluster:
        summary_two = import_archive(
            archive, two, scheduler=cluster.scheduler_address, progress=None, qc_settings=Settings()
        )
        assert len(cluster.workers) == 2

    assert summary_one.snapshots == summary_two.snapshots == 10
    assert sorted(summary_one.failed) == sorted(summary_two.failed)
    contents = store_contents(one)
    assert len(contents) == 10
    assert_same_store(store_contents(two), contents)
    # Then the QC of the 5 imported runs, on the same cluster (several runs: the Dask rebuild).
    assert summary_one.qc is None and summary_two.qc is not None
    assert (summary_two.qc.runs, summary_two.qc.snapshots, summary_two.qc.failed) == (5, 8, 0)
    assert summary_two.qc.alarm_snapshots == 8
    checks = read_results(two, CHECKS_TABLE, CHECKS_SCHEMA)
    assert set(checks["snapshot_id"]) == stored_snapshot_ids(two)
