"""Views and time slices checked against truth: the emulator knows exactly what it filled and when."""

from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.emulator import HOT_FASTOR_IDS
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.processing.options import OptionsError, ProcessingOptions
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import MergerMode, Window
from pipeline.store import SnapshotMeta, SnapshotStore

T0 = 1_800_000_000.0
RUN = 5000
RAW = ProcessingOptions(scale_by_events=False)
# A 10-minute run, a fill every 20 s, snapshots about once a minute with receiver jitter.
CONFIG = EmulatorConfig(step_s=20.0, run_length_s=600.0, run_gap_s=60.0, first_run=RUN, start_time_utc=T0)
SNAPSHOT_OFFSETS_S = [50.0 + 60.0 * i + (7.0 if i % 3 == 1 else 0.0) for i in range(10)]
CHECKED = ["EMCTRQA_histEvents", "EMCTRQA_histFastORL0", "EMCTRQA_histAmpEdgePosEMCGAHOnline"]


class Clock:
    t = T0

    def __call__(self) -> float:
        return self.t


def record_run(tmp_path, subsystems=("EMC",), reset=False, store_as=None):
    """Drive the emulator through a run, storing what a receiver would at each snapshot time."""
    clock = Clock()
    runs = SyntheticRuns(subsystems, CONFIG, now=clock)
    store = SnapshotStore(tmp_path / "data")
    for offset in SNAPSHOT_OFFSETS_S:
        clock.t = T0 + offset
        runs.advance(clock.t)
        held = runs.snapshot()
        for subsystem in subsystems:
            names = [n for n in held if runs.subsystem_of(n) == subsystem]
            meta = SnapshotMeta(RUN, store_as or subsystem, datetime.fromtimestamp(clock.t, UTC), "B", "pp")
            store.write_snapshot(meta, [held[n] for n in names])
        if reset:
            runs.erase(list(held))
    return runs, store


@pytest.fixture(scope="module")
def recorded_emc(tmp_path_factory):
    return record_run(tmp_path_factory.mktemp("emc"))


@pytest.fixture
def cumulative(recorded_emc, tmp_path):
    runs, store = recorded_emc
    return runs, ProcessingService(store, tmp_path / "cache", ("EMC", "TPC", "HLT"))


def snapshot_epoch(service, snapshot_id):
    meta, _ = service.store.read_snapshot(snapshot_id, names=[])
    return meta.snapshot_time_utc.timestamp()


def window_bounds(service, plan):
    """The emulator times a slice covers: (time of the subtracted snapshot or run start, later snapshot)."""
    start = snapshot_epoch(service, plan.earlier_snapshot_id) if plan.earlier_snapshot_id else T0
    return start, snapshot_epoch(service, plan.used_snapshot_ids[-1])


@pytest.mark.parametrize("window", [Window(0, 1), Window(8, 9), Window(0, 9.1), Window(3, 6), Window(5, 5)])
def test_cumulative_slice_equals_what_was_filled_in_it(cumulative, window):
    runs, service = cumulative
    view = service.view(RUN, "EMC", window, RAW)
    assert not view.plan.is_empty
    start, end = window_bounds(service, view.plan)
    for name in CHECKED:
        truth = runs.filled_between(name, start, end)
        got = view.histograms[name].histogram
        np.testing.assert_array_equal(got.values_flow, truth.values_flow, err_msg=name)
        np.testing.assert_allclose(got.variances_flow, truth.variances_flow, err_msg=name)


def test_slice_reports_requested_and_returned_minutes(cumulative):
    _, service = cumulative
    view = service.view(RUN, "EMC", Window(3, 6), RAW)
    # Minutes count from the first snapshot: 0, 1.1, 2.0, 3.0, 4.1, 5.0, 6.0, 7.1 ... The one at 3.0 is
    # not strictly before minute 3, so the slice subtracts the one at 2.0 and ends on the one at 6.0.
    assert view.description == "requested 3-6 min, returned 2.0-6.0 min due to data"


def test_reset_mode_slice_is_the_sum_of_the_snapshots(tmp_path):
    runs, store = record_run(tmp_path, reset=True)
    service = ProcessingService(store, tmp_path / "cache")
    view = service.view(RUN, "EMC", Window(2, 5), RAW, MergerMode.RESET)
    ids = view.plan.summed_snapshot_ids
    assert len(ids) == 4
    previous = store.snapshots(RUN, "EMC")["snapshot_id"].tolist().index(ids[0]) - 1
    start = snapshot_epoch(service, store.snapshots(RUN, "EMC")["snapshot_id"].iloc[previous])
    truth = runs.filled_between("EMCTRQA_histFastORL0", start, snapshot_epoch(service, ids[-1]))
    np.testing.assert_array_equal(
        view.histograms["EMCTRQA_histFastORL0"].histogram.values_flow, truth.values_flow
    )


def test_scaling_divides_by_the_slices_own_event_count(cumulative):
    runs, service = cumulative
    window = Window(4, 7)
    raw = service.view(RUN, "EMC", window, RAW)
    scaled = service.view(RUN, "EMC", window, ProcessingOptions(scale_by_events=True))
    start, end = window_bounds(service, raw.plan)
    events_in_window = runs.filled_between("EMCTRQA_histEvents", start, end).values()[0]
    assert scaled.n_events == events_in_window > 0
    whole_run = service.view(RUN, "EMC", None, RAW).n_events
    assert whole_run > events_in_window  # not the run's count (the original's stale nEvents)
    name = "EMCTRQA_histFastORL0"
    np.testing.assert_allclose(
        scaled.histograms[name].histogram.values_flow,
        raw.histograms[name].histogram.values_flow / events_in_window,
    )
    assert scaled.histograms[name].hints.y_title == "entries / events"
    assert raw.histograms[name].hints.y_title == "entries"


def hot_ids(view, name="EMCTRQA_histFastORL0"):
    [check] = [c for c in view.histograms[name].checks if "hot_channel_ids" in c.details]
    return check.details["hot_channel_ids"], check.details["threshold"]


def test_thresholds_give_different_hot_lists_and_never_share_a_cached_result(cumulative):
    _, service = cumulative
    default_ids, default_threshold = hot_ids(service.view(RUN, "EMC", Window(0, 9)))
    assert set(HOT_FASTOR_IDS) <= set(default_ids) and default_threshold == 1e-2
    built = service.computed
    loose_ids, loose_threshold = hot_ids(
        service.view(RUN, "EMC", Window(0, 9), ProcessingOptions(hot_channel_threshold=1e-4))
    )
    assert service.computed == built + 1  # same window, other options: computed, not reused
    assert loose_threshold == 1e-4 and len(loose_ids) > len(default_ids)
    again_ids, _ = hot_ids(service.view(RUN, "EMC", Window(0, 9)))
    assert again_ids == default_ids and service.computed == built + 1  # served from the cache


def test_cache_survives_a_new_service_and_clearing_it_rebuilds_the_same(cumulative, tmp_path):
    _, service = cumulative
    first = service.view(RUN, "EMC", Window(2, 6))
    other = ProcessingService(service.store, tmp_path / "cache")
    cached = other.view(RUN, "EMC", Window(2, 6))
    assert other.computed == 0
    other.clear_cache()
    rebuilt = other.view(RUN, "EMC", Window(2, 6))
    assert other.computed == 1
    for name in CHECKED:
        np.testing.assert_array_equal(
            rebuilt.histograms[name].histogram.values_flow, first.histograms[name].histogram.values_flow
        )
        np.testing.assert_array_equal(
            cached.histograms[name].histogram.values_flow, first.histograms[name].histogram.values_flow
        )


@pytest.mark.parametrize(
    "window,field",
    [(Window(-1, 2), "min_minutes"), (Window(4, 2), "min_minutes"), (Window(0, 99), "max_minutes")],
)
def test_bad_windows_are_clear_errors(cumulative, window, field):
    _, service = cumulative
    with pytest.raises(OptionsError) as error:
        service.view(RUN, "EMC", window)
    assert error.value.field == field


def test_options_are_never_an_error_for_tpc_or_hlt(tmp_path):
    _, store = record_run(tmp_path, subsystems=("TPC", "HLT"))
    service = ProcessingService(store, tmp_path / "cache")
    options = ProcessingOptions(scale_by_events=True, hot_channel_threshold=0.5)
    for subsystem in ("TPC", "HLT"):
        view = service.view(RUN, subsystem, Window(1, 4), options)
        assert view.histograms and not view.plan.is_empty


def test_tpc_projections_come_with_the_view(tmp_path):
    _, store = record_run(tmp_path, subsystems=("TPC",))
    view = ProcessingService(store, tmp_path / "cache").view(RUN, "TPC")
    titles = [group.title for group, _ in view.groups]
    assert titles[:5] == [
        "DCAr vs Phi",
        "DCAz vs Phi",
        "TPC Cluster Eta vs Phi",
        "TPC Cluster Eta",
        "Pt spectra",
    ]
    assert view.histograms["pT_postracks"].hints.log_y


def test_subsystem_without_its_own_receiver_shows_hlt_data_then_switches(tmp_path):
    # Only the HLT receiver ran: its files hold the TPC histograms too (scenario 1).
    _, store = record_run(tmp_path, subsystems=("TPC",), store_as="HLT")
    service = ProcessingService(store, tmp_path / "cache")
    tpc = [info for info in service.runs() if info.subsystem == "TPC"]
    assert [(i.run, i.source_subsystem) for i in tpc] == [(RUN, "HLT")]
    view = service.view(RUN, "TPC")
    stored_names = [name for name in view.histograms if "/" in name]  # projections have no folder
    assert stored_names and all(name.startswith("TPCQA/") for name in stored_names)
    assert "Non TPC" not in [group.title for group, _ in view.groups]
    # TPC's own snapshots start arriving mid-run (scenario 1a): it switches to them.
    held = {n: h for n, h in store.read_snapshot(store.latest_snapshot_id(RUN, "HLT"))[1].items()}
    store.write_snapshot(
        SnapshotMeta(RUN, "TPC", datetime.fromtimestamp(T0 + 590, UTC), "B", "pp"), list(held.values())
    )
    assert service.view(RUN, "TPC").run.source_subsystem == "TPC"
