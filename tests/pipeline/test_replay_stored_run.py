"""A stored run served as live (`emulator --replay-run`): receivers store the original run's histograms."""

from __future__ import annotations

import shutil
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.archive.driver import import_archive
from pipeline.archive.synthetic import flat_name
from pipeline.emulator.merger import MergerEmulator
from pipeline.emulator.stored_run import StoredRunSource
from pipeline.histogram import Histogram
from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.paths import TRENDS_TABLE
from pipeline.qc.results import read_results
from pipeline.qc.service import QCService
from pipeline.qc.steps import trend_and_alarm_steps
from pipeline.qc.trend_store import TRENDS_SCHEMA
from pipeline.receiver import Outcome, Receiver
from pipeline.settings import DEFAULT_SELECTIONS, Settings
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.pipeline.qc_helpers import record_runs

pytestmark = pytest.mark.network

RUN = 246001
T0 = datetime(2015, 11, 24, 17, 4, 10, tzinfo=UTC)
SPEED = 10.0


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def emc_histograms(step: int) -> list[Histogram]:
    """Cumulative contents growing with `step`: an unweighted TH2F and a weighted TH1D."""
    rng = np.random.default_rng(step)
    counts = (
        np.cumsum(rng.poisson(3.0, size=(step + 1, 50, 106)), axis=0)[-1].astype(np.float32).astype(float)
    )
    spectrum = rng.normal(10.0, 3.0, size=102)
    return [
        Histogram(
            "EMCTRQA_histFastORL0",
            "TH2F",
            "FastOR L0",
            (np.arange(49.0), np.arange(105.0)),
            counts,
            counts,
            7.0,
        ),
        Histogram(
            "hClusterEnergy",
            "TH1D",
            "cluster energy",
            (np.geomspace(0.1, 100.0, 101),),  # variable bins
            spectrum,
            np.abs(spectrum) * 0.5,
            float(step * 100 + 3),
            ("E (GeV)", "counts"),
        ),
    ]


def tpc_histograms(step: int) -> list[Histogram]:
    values = np.arange(5 * 4 * 3, dtype=float).reshape(5, 4, 3) * (step + 1)
    edges = (np.linspace(-1.0, 1.0, 4), np.linspace(0.0, 2.0, 3), np.array([0.0, 1.0]))
    return [Histogram("TPCQA/h_tpc_track_pt", "TH3D", "pT", edges, values, values + 0.5, 12.0)]


def original_run(data_dir: Path) -> dict[str, list[tuple[datetime, list[Histogram]]]]:
    """EMC every minute, TPC in between, as two receivers stored them; returns what was stored."""
    store = SnapshotStore(data_dir)
    written: dict[str, list[tuple[datetime, list[Histogram]]]] = {"EMC": [], "TPC": []}
    for subsystem, offsets_s, make in (
        ("EMC", (0, 60, 120), emc_histograms),
        ("TPC", (30, 90), tpc_histograms),
    ):
        for step, offset_s in enumerate(offsets_s):
            time_utc = T0 + timedelta(seconds=offset_s)
            meta = SnapshotMeta(RUN, subsystem, time_utc, hlt_mode="C", beam_type="PbPb")
            store.write_snapshot(meta, make(step))
            written[subsystem].append((time_utc, make(step)))
    return written


def assert_same_histogram(got: Histogram, want: Histogram) -> None:
    assert (got.name, got.class_name, got.title, got.entries) == (
        want.name,
        want.class_name,
        want.title,
        want.entries,
    )
    assert got.axis_titles == want.axis_titles
    for got_edges, want_edges in zip(got.edges, want.edges, strict=True):
        np.testing.assert_array_equal(got_edges, want_edges)
    assert got.values_flow.tobytes() == want.values_flow.tobytes()
    assert got.variances_flow.tobytes() == want.variances_flow.tobytes()


def test_a_replayed_run_is_stored_again_with_the_same_histograms(tmp_path: Path):
    written = original_run(tmp_path / "original")
    clock = FakeClock(5_000.0)
    source = StoredRunSource(tmp_path / "original", RUN, speed=SPEED, now=clock)
    replayed_dir = tmp_path / "replayed"
    with MergerEmulator("tcp://127.0.0.1:*", source=source) as merger:
        receivers = {
            "EMC": Receiver(merger.endpoint, "EMC", replayed_dir, select="^(EMC|hCluster)", timeout_s=5.0),
            "TPC": Receiver(merger.endpoint, "TPC", replayed_dir, select="^TPCQA/", timeout_s=5.0),
        }
        try:
            # Each subsystem asks once its next snapshot is due on the replay clock (10x the wall clock).
            schedule = sorted((t, system) for system, entries in written.items() for t, _ in entries)
            for time_utc, system in schedule:
                clock.t = 5_000.0 + (time_utc - T0).total_seconds() / SPEED + 0.01
                assert receivers[system].request_once() is Outcome.STORED
            # One typical gap (30 s of run time) after the last snapshot the run is over: run=0.
            clock.t = 5_000.0 + (120 + 31) / SPEED
            assert receivers["EMC"].request_once() is Outcome.SKIPPED
            assert source.finished
        finally:
            for receiver in receivers.values():
                receiver.close()

    replayed = SnapshotStore(replayed_dir)
    for system, entries in written.items():
        keys = replayed.snapshot_keys(RUN, system)
        assert len(keys) == len(entries)
        for key, (_, histograms) in zip(keys, entries, strict=True):
            meta, stored = replayed.read_snapshot(key.snapshot_id)
            assert (meta.hlt_mode, meta.beam_type) == ("C", "PbPb")
            assert meta.th1_version == 8  # the receiver records what it got: today's versions
            assert sorted(stored) == sorted(h.name for h in histograms)
            for histogram in histograms:
                assert_same_histogram(stored[histogram.name], histogram)


def test_the_replay_clock_serves_the_newest_snapshot_of_each_subsystem(tmp_path: Path):
    original_run(tmp_path)
    clock = FakeClock(100.0)
    source = StoredRunSource(tmp_path, RUN, speed=2.0, now=clock)
    source.refresh()  # the first request starts the replay at the run's first snapshot
    assert source.info() == f"run={RUN};HLT_MODE=C;BEAM_TYPE=PbPb"
    assert source.names() == ["EMCTRQA_histFastORL0", "hClusterEnergy"]  # TPC's first is at 30 s
    clock.t = 100.0 + 45 / 2.0  # 45 s into the run
    source.refresh()
    assert source.names() == ["EMCTRQA_histFastORL0", "TPCQA/h_tpc_track_pt", "hClusterEnergy"]
    source.erase(["TPCQA/h_tpc_track_pt"])  # -ResetOnRequest: gone until TPC's next snapshot
    source.refresh()
    assert "TPCQA/h_tpc_track_pt" not in source.names()
    clock.t = 100.0 + 95 / 2.0
    source.refresh()
    assert "TPCQA/h_tpc_track_pt" in source.names()


def test_an_imported_run2_file_is_replayed_in_its_original_class_versions(tmp_path: Path, fixtures_dir: Path):
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(fixtures_dir / "run2_root608_th1f.root", archive / flat_name("HLT", 300003, "B", T0))
    imported = tmp_path / "imported"
    assert import_archive(archive, imported, workers=0).snapshots == 1
    store = SnapshotStore(imported)
    [key] = store.snapshot_keys(300003, "HLT")
    original_meta, original = store.read_snapshot(key.snapshot_id)
    assert original_meta.th1_version == 7  # recorded from the file's streamers
    assert list((imported / "streamers").glob("*.rootstri.bin"))  # and its schema kept

    source = StoredRunSource(imported, 300003, now=FakeClock(1.0))
    source.refresh()
    # TH1F v2 over TH1 v7, as ROOT 6.08 streamed it.
    assert struct.unpack_from(">hIh", source.encoded("test"), 25) == (2, 0x40000206, 7)
    with MergerEmulator("tcp://127.0.0.1:*", source=source) as merger:
        receiver = Receiver(merger.endpoint, "HLT", tmp_path / "replayed", timeout_s=5.0)
        try:
            assert receiver.request_once() is Outcome.STORED  # with the schema the replay sent
        finally:
            receiver.close()
    replayed = SnapshotStore(tmp_path / "replayed")
    replayed_meta, stored = replayed.read_snapshot(replayed.latest_snapshot_id(300003, "HLT"))
    assert_same_histogram(stored["test"], original["test"])
    assert stored["test"].values_flow[5] == 1.0
    # The live receiver recorded the version it received, as the import did: a replay of its
    # recording (a live-recorded run) serves TH1 v7 again, with the schema it kept.
    assert replayed_meta.th1_version == 7
    assert list((tmp_path / "replayed" / "streamers").glob("*.rootstri.bin"))
    again = StoredRunSource(tmp_path / "replayed", 300003, now=FakeClock(1.0))
    again.refresh()
    assert again.encoded("test") == source.encoded("test")


def test_a_replayed_run_is_checked_trended_and_alarmed_like_the_original(tmp_path: Path):
    original, replayed_dir = tmp_path / "original", tmp_path / "replayed"
    run = 300000  # the emulator's first run: a FastOR turns hot in its second minute
    record_runs(
        SnapshotStore(original),
        {0: (0.5, 1.5, 2.5)},
        faults=f"hot_fastor:id=1000:at=1.0:run={run}",
        run_length_s=240.0,
        subsystems=("EMC",),
    )
    keys = SnapshotStore(original).snapshot_keys(run, "EMC")
    clock = FakeClock(5_000.0)
    source = StoredRunSource(original, run, speed=SPEED, now=clock)
    with MergerEmulator("tcp://127.0.0.1:*", source=source) as merger:
        receiver = Receiver(
            merger.endpoint, "EMC", replayed_dir, select=DEFAULT_SELECTIONS["EMC"], timeout_s=5.0
        )
        try:
            for key in keys:
                clock.t = (
                    5_000.0 + (key.snapshot_time_utc - keys[0].snapshot_time_utc).total_seconds() / SPEED
                )
                assert receiver.request_once() is Outcome.STORED
        finally:
            receiver.close()
    # The QC service follows the replayed store as it follows a live one: checks, trends, alarms.
    for data_dir in (original, replayed_dir):
        steps, _ = trend_and_alarm_steps(data_dir, Settings(), deliver=False)
        assert QCService(data_dir, consumers=steps).check_pending() == len(keys)
    trends = {}
    for data_dir in (original, replayed_dir):
        rows = read_results(data_dir, TRENDS_TABLE, TRENDS_SCHEMA)
        rows = rows[rows["content"] == "cumulative"]  # interval ones depend on the replay's timing
        order = {sid: index for index, sid in enumerate(sorted(rows["snapshot_id"].unique()))}
        trends[data_dir] = sorted(
            zip(
                rows["snapshot_id"].map(order),
                rows["histogram"],
                rows["quantity"],
                rows["value"],
                strict=True,
            )
        )
    assert len(trends[original]) > 0 and trends[replayed_dir] == trends[original]
    alarms = AlarmBook(replayed_dir).alarms()
    fired = alarms[alarms["alarm"] == "new_hot_fastor"]
    assert sorted(fired["histogram"]) == ["EMCTRQA_histFastORL0", "EMCTRQA_histFastORL1"]
    assert set(fired["run"]) == {run} and set(fired["state"]) == {"active"}
    second = sorted(SnapshotStore(replayed_dir).snapshot_keys(run, "EMC"), key=lambda k: k.order)[1]
    assert set(fired["snapshot_id"]) == {second.snapshot_id}  # fired where the fault shows, as live


def test_replay_run_needs_a_run_number_and_a_stored_run(tmp_path: Path):
    assert main(["emulator", "--replay-run", str(tmp_path)]) == 2
    assert main(["emulator", "--replay-run", str(tmp_path), "--run", "5", "--bind", "tcp://127.0.0.1:*"]) == 2
