"""Runs as listed for people: start and length over all subsystems, ongoing, HLT mode, beam type, source."""

import logging
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipeline.histogram import Histogram
from pipeline.processing.runs import (
    ONGOING_WITHIN_S,
    RunTimelines,
    find_run,
    list_runs,
    load_run_timeline,
    merger_reports,
    reported_runs,
)
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import MergerMode
from pipeline.status import ReceiverStatus, write_status
from pipeline.store import SnapshotMeta, SnapshotStore

RUN = 7000
START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SUBSYSTEMS = ("EMC", "TPC", "HLT")


def histogram(name: str = "h") -> Histogram:
    values = np.array([0.0, 1.0, 2.0, 0.0])
    return Histogram(name, "TH1D", name, (np.array([0.0, 1.0, 2.0]),), values, values.copy())


def store_at(store, subsystem, minutes, run=RUN, hlt_mode="B", beam_type="pp", merger_reset=False):
    for minute in minutes:
        when = START + timedelta(minutes=minute)
        meta = SnapshotMeta(run, subsystem, when, hlt_mode, beam_type, merger_reset=merger_reset)
        store.write_snapshot(meta, [histogram()])


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(tmp_path / "data")


def infos_by_subsystem(store, now, run=None):
    return {info.subsystem: info for info in list_runs(store, SUBSYSTEMS, now=now, run=run)}


def test_run_start_and_length_span_every_subsystem(store):
    # The HLT ran from minute 0 to 20; EMC's own receiver from minute 6 to 18 (scenario 1a).
    store_at(store, "HLT", [0, 10, 20])
    store_at(store, "EMC", [6, 12, 18])
    now = (START + timedelta(minutes=30)).timestamp()
    listed = infos_by_subsystem(store, now)
    found = {subsystem: find_run(store, RUN, subsystem) for subsystem in SUBSYSTEMS}
    for infos in (listed, found):
        emc, tpc, hlt = infos["EMC"], infos["TPC"], infos["HLT"]
        assert emc.start_utc == tpc.start_utc == hlt.start_utc == START
        assert emc.end_utc == START + timedelta(minutes=20)
        assert emc.length_minutes == tpc.length_minutes == 20.0
        assert (emc.source_subsystem, tpc.source_subsystem) == ("EMC", "HLT")
        assert emc.source_start_utc == START + timedelta(minutes=6)
        assert emc.minute_of(emc.source_start_utc) == 6.0
        assert (emc.n_snapshots, tpc.n_snapshots) == (3, 3)


def test_ongoing_by_the_age_of_the_newest_snapshot_when_no_receiver_reports(store):
    store_at(store, "HLT", [0, 10])
    store_at(store, "EMC", [5, 12])
    last = (START + timedelta(minutes=12)).timestamp()
    assert all(info.ongoing for info in infos_by_subsystem(store, last + ONGOING_WITHIN_S - 1).values())
    assert not any(info.ongoing for info in infos_by_subsystem(store, last + ONGOING_WITHIN_S + 1).values())


def test_ongoing_while_a_live_receiver_reports_the_run(store):
    store_at(store, "HLT", [0, 10])
    now = time.time()  # the snapshots are long past
    assert not find_run(store, RUN, "HLT").ongoing
    write_status(store.data_dir, ReceiverStatus("HLT", last_reply_utc=now - 5, last_run=RUN))
    assert find_run(store, RUN, "HLT").ongoing
    assert infos_by_subsystem(store, now)["EMC"].ongoing
    assert RunTimelines(store).find(RUN, "TPC")[0].ongoing
    # A receiver silent for longer than that no longer keeps the run open.
    write_status(
        store.data_dir, ReceiverStatus("HLT", last_reply_utc=now - ONGOING_WITHIN_S - 5, last_run=RUN)
    )
    assert not find_run(store, RUN, "HLT").ongoing


@pytest.mark.parametrize("next_run", [RUN + 1, 0])
def test_a_run_ends_when_its_receivers_report_another_run_or_run_zero(tmp_path, next_run):
    # The case: the next run started a minute ago, and the finished one still said "live".
    store = SnapshotStore(tmp_path / "data")
    now = time.time()
    for minutes_ago in (3, 2):
        when = datetime.fromtimestamp(now - 60 * minutes_ago, UTC)
        for subsystem in ("EMC", "HLT"):
            store.write_snapshot(SnapshotMeta(RUN, subsystem, when, "B", "pp"), [histogram()])
    assert find_run(store, RUN, "EMC").ongoing  # a recent snapshot, and nobody has said otherwise
    write_status(store.data_dir, ReceiverStatus("EMC", last_reply_utc=now - 2, last_run=next_run))
    for info in (find_run(store, RUN, "EMC"), RunTimelines(store).find(RUN, "HLT")[0]):
        assert not info.ongoing
    assert not any(info.ongoing for info in infos_by_subsystem(store, now).values())
    # A receiver of another subsystem (no data in this run) says nothing about it...
    write_status(store.data_dir, ReceiverStatus("EMC", last_reply_utc=now - 2 - 600, last_run=next_run))
    write_status(store.data_dir, ReceiverStatus("TPC", last_reply_utc=now - 2, last_run=next_run))
    assert find_run(store, RUN, "EMC").ongoing
    # ...and one still reporting this run keeps it ongoing whatever the others say.
    write_status(store.data_dir, ReceiverStatus("EMC", last_reply_utc=now - 2, last_run=next_run))
    write_status(store.data_dir, ReceiverStatus("HLT", last_reply_utc=now - 1, last_run=RUN))
    assert find_run(store, RUN, "EMC").ongoing


def test_only_a_real_run_number_counts_as_reported(tmp_path):
    now = time.time()
    for subsystem, last_run in (("EMC", 0), ("TPC", -3), ("HLT", RUN)):
        write_status(tmp_path, ReceiverStatus(subsystem, last_reply_utc=now - 5, last_run=last_run))
    reports = merger_reports(tmp_path, now)
    assert reported_runs(reports) == {RUN}
    assert {subsystem: run for subsystem, (run, _) in reports.items()} == {"EMC": 0, "TPC": 0, "HLT": RUN}


def test_run_summaries_say_when_in_cern_and_utc_time_and_who_has_data(store, tmp_path):
    store_at(store, "HLT", [0, 10], hlt_mode="C", beam_type="PbPb")
    store_at(store, "EMC", [6, 12], hlt_mode="C", beam_type="PbPb")
    store_at(store, "HLT", [0, 3], run=RUN - 1)
    service = ProcessingService(store, tmp_path / "cache", SUBSYSTEMS)
    newest, older = service.run_summaries()
    assert (newest.run, older.run) == (RUN, RUN - 1)
    assert newest.start_utc == START and newest.length_minutes == 12.0
    # 12:00 UTC on 24 November is 13:00 in Geneva (CET, UTC+1).
    assert newest.start_cern.strftime("%Y-%m-%d %H:%M %Z") == "2026-11-24 13:00 CET"
    assert (newest.hlt_mode, newest.beam_type, newest.ongoing) == ("C", "PbPb", False)
    assert newest.subsystems == SUBSYSTEMS and newest.own_subsystems == ("EMC", "HLT")
    assert older.own_subsystems == ("HLT",) and older.length_minutes == 3.0


def test_replays_in_hlt_mode_e_are_never_listed(store):
    store_at(store, "HLT", [0, 5], run=RUN, hlt_mode="E")
    store_at(store, "HLT", [0, 5], run=RUN + 1, hlt_mode="B")
    assert [info.run for info in list_runs(store, SUBSYSTEMS)] == [RUN + 1] * 3
    with pytest.raises(LookupError):
        find_run(store, RUN, "HLT")
    with pytest.raises(LookupError):
        RunTimelines(store).find(RUN, "EMC")


def test_hlt_mode_defaults_to_u_and_beam_type_comes_from_the_newest_snapshot(store):
    store.write_snapshot(SnapshotMeta(RUN, "HLT", START), [histogram()])  # the receiver knew neither
    store_at(store, "HLT", [5], beam_type="PbPb")
    store_at(store, "EMC", [1])  # no mode or beam of its own: SnapshotMeta's defaults
    store.write_snapshot(SnapshotMeta(RUN, "EMC", START + timedelta(minutes=2)), [histogram()])
    listed = infos_by_subsystem(store, time.time())
    assert (listed["HLT"].hlt_mode, listed["HLT"].beam_type) == ("B", "PbPb")
    assert (listed["TPC"].hlt_mode, listed["TPC"].beam_type) == ("B", "PbPb")  # from the HLT's files
    assert (listed["EMC"].hlt_mode, listed["EMC"].beam_type) == ("U", "")
    found = find_run(store, RUN, "EMC")
    assert (found.hlt_mode, found.beam_type) == ("U", "")


def test_no_data_for_a_subsystem_or_run_is_a_lookup_error(store):
    store_at(store, "EMC", [0, 1])
    with pytest.raises(LookupError):
        find_run(store, RUN, "TPC")  # neither its own snapshots nor the HLT's
    with pytest.raises(LookupError):
        find_run(store, RUN + 5, "EMC")
    assert {info.subsystem for info in list_runs(store, SUBSYSTEMS)} == {"EMC"}


def test_a_run_timeline_is_reused_until_a_snapshot_arrives(store):
    store_at(store, "HLT", [0, 1])
    folder = store.data_dir / "snapshots" / "subsystem=HLT" / f"run={RUN}"
    # Folders changed within the last second are never trusted (coarse mtimes); age this one.
    past = time.time_ns() - 10_000_000_000
    os.utime(folder, ns=(past, past))
    timelines = RunTimelines(store)
    first = timelines.timeline(RUN)
    assert timelines.timeline(RUN) is first
    store_at(store, "HLT", [2])
    second = timelines.timeline(RUN)
    assert second is not first and len(second.subsystems["HLT"].snapshot_ids) == 3
    # Just changed: read again each time until the change is old enough to be sure of.
    assert timelines.timeline(RUN) is not second
    assert (
        load_run_timeline(store, RUN).subsystems["HLT"].snapshot_ids == second.subsystems["HLT"].snapshot_ids
    )


def test_run_timelines_kept_are_bounded_by_the_snapshots_they_list(store, monkeypatch):
    # A dashboard left open for days sees run after run: what it keeps must not grow with the store.
    monkeypatch.setattr("pipeline.processing.runs.TIMELINE_SNAPSHOTS_KEPT", 7)
    runs = [RUN + i for i in range(5)]
    for run in runs:  # 3 + 3 snapshots each
        store_at(store, "HLT", [0, 1, 2], run=run)
        store_at(store, "EMC", [0, 1, 2], run=run)
    past = time.time_ns() - 10_000_000_000
    for folder in (store.data_dir / "snapshots").glob("subsystem=*/run=*"):
        os.utime(folder, ns=(past, past))  # old enough to be kept (see the test above)
    timelines = RunTimelines(store)
    first = {run: timelines.timeline(run) for run in runs}
    kept = timelines._timelines
    assert (len(kept), kept.total_weight) == (1, 6)  # 7 snapshots hold one run of 6, not two
    assert timelines.timeline(runs[-1]) is first[runs[-1]]  # the newest is kept and reused
    again = timelines.timeline(runs[0])  # dropped: read again, the same
    assert again is not first[runs[0]]
    for subsystem in ("HLT", "EMC"):
        expected = load_run_timeline(store, runs[0]).subsystems[subsystem].snapshot_ids
        assert (
            again.subsystems[subsystem].snapshot_ids
            == expected
            == first[runs[0]].subsystems[subsystem].snapshot_ids
        )
    assert (len(kept), kept.total_weight) == (1, 6)
    monkeypatch.setattr("pipeline.processing.runs.TIMELINES_KEPT", 2)
    monkeypatch.setattr("pipeline.processing.runs.TIMELINE_SNAPSHOTS_KEPT", 100)
    by_count = RunTimelines(store)
    for run in runs:
        by_count.timeline(run)
    assert (len(by_count._timelines), by_count._timelines.total_weight) == (2, 12)


def test_the_service_describes_one_run_as_it_lists_it(store, tmp_path):
    store_at(store, "HLT", [0, 10, 20])
    store_at(store, "EMC", [6, 12])
    service = ProcessingService(store, tmp_path / "cache", SUBSYSTEMS)
    for info in service.runs():
        assert service.run_info(info.run, info.subsystem) == info
    with pytest.raises(LookupError):
        service.run_info(RUN + 1, "EMC")


def test_a_run_knows_the_merger_mode_its_snapshots_were_taken_in(store, tmp_path):
    store_at(store, "HLT", [0, 10, 20])
    store_at(store, "EMC", [6, 12], merger_reset=True)
    service = ProcessingService(store, tmp_path / "cache", SUBSYSTEMS)
    modes = {info.subsystem: info.merger_mode for info in service.runs()}
    # TPC has no receiver of its own: it is shown from the HLT's (cumulative) snapshots.
    assert modes == {"EMC": MergerMode.RESET, "TPC": MergerMode.CUMULATIVE, "HLT": MergerMode.CUMULATIVE}
    for subsystem, mode in modes.items():
        info = service.run_info(RUN, subsystem)
        assert (info.merger_mode, info.warnings) == (mode, ())


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_run_that_mixes_merger_modes_says_so_and_uses_the_newest(store, tmp_path):
    store_at(store, "EMC", [0, 1])
    store_at(store, "EMC", [2, 3], merger_reset=True)
    logged = _Lines()
    logging.getLogger("pipeline.processing.runs").addHandler(logged)
    try:
        info = find_run(store, RUN, "EMC")
        find_run(store, RUN, "EMC")
    finally:
        logging.getLogger("pipeline.processing.runs").removeHandler(logged)
    assert info.merger_mode is MergerMode.RESET
    assert info.warnings == (
        f"run {RUN} EMC mixes merger modes (first snapshot cumulative, newest reset): shown in reset mode",
    )
    assert logged.lines == list(info.warnings)  # logged once, not at every look
    assert ProcessingService(store, tmp_path / "cache", SUBSYSTEMS).view(RUN, "EMC").warnings == list(
        info.warnings
    )


def test_the_current_run_is_the_one_a_merger_names_else_the_newest(store, tmp_path):
    store_at(store, "HLT", [0, 3], run=RUN)
    store_at(store, "HLT", [10, 12], run=RUN + 1)
    store_at(store, "EMC", [11], run=RUN + 1)
    service = ProcessingService(store, tmp_path / "cache", SUBSYSTEMS)
    newest = service.current_run()
    assert (newest.run, newest.ongoing, newest.own_subsystems) == (RUN + 1, False, ("EMC", "HLT"))
    assert newest == next(s for s in service.run_summaries() if s.run == RUN + 1)  # one builder
    # A merger still naming the older run (a receiver replaying it, say) makes it the current, ongoing one.
    write_status(store.data_dir, ReceiverStatus("HLT", last_reply_utc=time.time() - 1, last_run=RUN))
    service = ProcessingService(store, tmp_path / "cache", SUBSYSTEMS)
    current = service.current_run()
    assert (current.run, current.ongoing, current.length_minutes) == (RUN, True, 3.0)
    assert ProcessingService(SnapshotStore(tmp_path / "empty"), tmp_path / "c2").current_run() is None
