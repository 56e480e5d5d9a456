"""A merger that restarts inside a run starts its histograms from zero: slices must never subtract
across the restart, sum the segments instead, and say so (checked against the emulator's truth)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.emulator.runs import SyntheticRuns
from pipeline.processing import service as service_module
from pipeline.processing.restarts import merger_restarted
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import Window
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.pipeline.test_processing_service import (
    CHECKED,
    CONFIG,
    EVENTS,
    RAW,
    RUN,
    SNAPSHOT_TIMES,
    T0,
    Clock,
    assert_equals_truth,
    snapshot_ids,
)

RESTART_AFTER = 4  # the merger restarts right after snapshot 4 was taken (minute 4.12)


def test_entries_going_down_for_most_histograms_is_a_restart():
    before = {"a": 10.0, "b": 5.0, "c": 0.0, "d": 7.0}
    assert merger_restarted(before, {"a": 1.0, "b": 0.0, "c": 3.0, "d": 2.0})
    assert merger_restarted(before, {"a": 1.0, "b": 9.0})  # half of those with entries went down
    assert not merger_restarted(before, {"a": 11.0, "b": 5.0, "c": 0.0, "d": 7.0})  # unchanged is fine
    assert not merger_restarted(before, {"a": 9.0, "b": 6.0, "d": 8.0})  # one damaged histogram is not
    assert not merger_restarted({}, {"a": 1.0})
    assert not merger_restarted({"a": 0.0}, {"a": 0.0})


@pytest.fixture(scope="module")
def restarted_run(tmp_path_factory):
    """The EMC recording of test_processing_service, with `restart_merger()` after snapshot 4."""
    clock = Clock()
    runs = SyntheticRuns(("EMC",), CONFIG, now=clock)
    store = SnapshotStore(tmp_path_factory.mktemp("restart") / "data")
    for index, time_utc in enumerate(SNAPSHOT_TIMES):
        clock.t = time_utc
        runs.advance(clock.t)
        held = runs.snapshot()
        store.write_snapshot(
            SnapshotMeta(RUN, "EMC", datetime.fromtimestamp(time_utc, UTC), "B", "pp"), list(held.values())
        )
        if index == RESTART_AFTER:
            runs.restart_merger()
    assert runs.merger_restarts == 1
    return runs, store


@pytest.fixture
def service(restarted_run, tmp_path):
    return ProcessingService(restarted_run[1], tmp_path / "cache", ("EMC",))


def test_the_recording_really_goes_down_at_the_restart(restarted_run):
    _, store = restarted_run
    ids = snapshot_ids(store)
    events = [store.histogram_entries(snapshot_id)[EVENTS] for snapshot_id in ids]
    assert events[RESTART_AFTER + 1] < events[RESTART_AFTER]  # what naive subtraction would turn negative
    assert events == sorted(events[: RESTART_AFTER + 1]) + sorted(events[RESTART_AFTER + 1 :])


# Edges go to the nearest snapshots (minutes 0, 1.12, 2, 3, 4.12, 5, 6, 7.12, 8, 9; None: run start).
@pytest.mark.parametrize(
    "window,earlier,later",
    [(Window(3, 6), 3, 6), (Window(0, 9.1), None, 9), (Window(4.5, 7.5), 4, 7), (Window(2, 5), 2, 5)],
)
def test_a_slice_across_the_restart_sums_the_segments_and_equals_the_truth(
    restarted_run, service, window, earlier, later
):
    runs, store = restarted_run
    ids = snapshot_ids(store)
    view = service.view(RUN, "EMC", window, RAW)
    assert view.plan.segment_end_snapshot_ids == (ids[RESTART_AFTER],)
    assert view.plan.restart_minutes == (5.0,)
    assert view.merger_restarts == 1
    assert any("merger restarted inside the window" in warning for warning in view.warnings)
    start = T0 if earlier is None else SNAPSHOT_TIMES[earlier]
    # Nothing was filled between snapshot 4 and the restart, so the sum of segments is exact.
    assert_equals_truth(view, runs, start, SNAPSHOT_TIMES[later], names=CHECKED)
    assert (view.histogram(EVENTS).histogram.values() >= 0).all()


def test_a_slice_inside_one_segment_is_a_plain_difference(restarted_run, service):
    runs, _ = restarted_run
    for window, earlier, later in ((Window(6, 8), 6, 8), (Window(1.5, 3), 1, 3)):
        view = service.view(RUN, "EMC", window, RAW)
        assert view.plan.segment_end_snapshot_ids == () and view.merger_restarts == 0
        assert not any("merger restarted" in warning for warning in view.warnings)
        assert_equals_truth(view, runs, SNAPSHOT_TIMES[earlier], SNAPSHOT_TIMES[later])


def test_restart_right_after_the_windows_start_counts_from_zero(restarted_run, service):
    """Window (4.5, 6]: the segment before the restart is snapshot 4 minus itself; only what came after
    the restart counts, and it is the whole of snapshot 6."""
    runs, store = restarted_run
    view = service.view(RUN, "EMC", Window(4.5, 6), RAW)
    later = store.read_histogram(snapshot_ids(store)[6], EVENTS)
    np.testing.assert_array_equal(view.histogram(EVENTS).histogram.values_flow, later.values_flow)
    assert_equals_truth(view, runs, SNAPSHOT_TIMES[4], SNAPSHOT_TIMES[6])


def test_restart_answers_stay_bounded_and_right_after_eviction(restarted_run, tmp_path, monkeypatch):
    """A dashboard runs for days while snapshots arrive: the per-pair answers kept are bounded, and an
    answer dropped is read again, not lost (the restart is still found)."""
    monkeypatch.setattr(service_module, "RESTART_ANSWERS_KEPT", 3)
    bounded = ProcessingService(restarted_run[1], tmp_path / "cache", ("EMC",))
    ids = snapshot_ids(restarted_run[1])
    for window in (Window(0, 9.1), Window(3, 6), Window(0, 9.1)):
        view = bounded.view(RUN, "EMC", window, RAW)
        assert view.plan.segment_end_snapshot_ids == (ids[RESTART_AFTER],)
    assert len(bounded._restart_answers) == 3  # 9 consecutive pairs were asked about
    assert bounded._merger_restarted(ids[RESTART_AFTER], ids[RESTART_AFTER + 1])
    assert not bounded._merger_restarted(ids[0], ids[1])
