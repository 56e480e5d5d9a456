"""Views and time slices checked against truth: the emulator knows exactly what it filled and when."""

import time
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.emulator import HOT_FASTOR_IDS
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.processing.options import HOT_CHANNEL_THRESHOLD_MAX, OptionsError, ProcessingOptions
from pipeline.processing.service import ProcessingService, ViewContent
from pipeline.processing.sizes import HISTOGRAM_OVERHEAD_BYTES, held_bytes
from pipeline.processing.timeslice import READ_CHUNK, MergerMode, Window
from pipeline.store import SnapshotMeta, SnapshotStore

T0 = 1_800_000_000.0
RUN = 5000
RAW = ProcessingOptions(scale_by_events=False)
# A 10-minute run, a fill every 20 s, snapshots about once a minute with receiver jitter.
CONFIG = EmulatorConfig(step_s=20.0, run_length_s=600.0, run_gap_s=60.0, first_run=RUN, start_time_utc=T0)
SNAPSHOT_OFFSETS_S = [50.0 + 60.0 * i + (7.0 if i % 3 == 1 else 0.0) for i in range(10)]
SNAPSHOT_TIMES = [T0 + offset for offset in SNAPSHOT_OFFSETS_S]
# Minutes since the start of run (the first snapshot): 0, 1.12, 2, 3, 4.12, 5, 6, 7.12, 8, 9.
CHECKED = ["EMCTRQA_histEvents", "EMCTRQA_histFastORL0", "EMCTRQA_histAmpEdgePosEMCGAHOnline"]
EVENTS = "EMCTRQA_histEvents"


class Clock:
    t = T0

    def __call__(self) -> float:
        return self.t


class CountingStore(SnapshotStore):
    """A store that records every histogram read: (snapshot id, names asked for, None = all)."""

    def __init__(self, data_dir) -> None:
        super().__init__(data_dir)
        self.reads: list[tuple[str, list[str] | None]] = []

    def read_snapshot(self, snapshot_id, names=None):
        names = None if names is None else list(names)
        self.reads.append((snapshot_id, names))
        return super().read_snapshot(snapshot_id, names)


def record_run(tmp_path, subsystems=("EMC",), reset=False, store_as=None, own_from=None):
    """Drive the emulator through a run, storing what the receivers would at each snapshot time.

    `store_as`: one receiver (e.g. the HLT's) stores everything in one snapshot per time. `own_from`:
    from that snapshot index on, each subsystem's own receiver stores its histograms too (scenario 1a).
    """
    clock = Clock()
    runs = SyntheticRuns(subsystems, CONFIG, now=clock)
    store = CountingStore(tmp_path / "data")
    for index, time_utc in enumerate(SNAPSHOT_TIMES):
        clock.t = time_utc
        runs.advance(clock.t)
        held = runs.snapshot()
        when = datetime.fromtimestamp(clock.t, UTC)
        meta = SnapshotMeta(RUN, store_as or "EMC", when, "B", "pp", merger_reset=reset)
        if store_as:
            store.write_snapshot(meta, list(held.values()))
        for subsystem in subsystems:
            if store_as and (own_from is None or index < own_from or subsystem == store_as):
                continue
            names = [n for n in held if runs.subsystem_of(n) == subsystem]
            store.write_snapshot(replace(meta, subsystem=subsystem), [held[n] for n in names])
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


def snapshot_ids(store, subsystem="EMC"):
    return [key.snapshot_id for key in store.snapshot_keys(RUN, subsystem)]


def assert_equals_truth(view, runs, start, end, names=CHECKED):
    for name in names:
        truth = runs.filled_between(name, start, end)
        got = view.histogram(name).histogram
        np.testing.assert_array_equal(got.values_flow, truth.values_flow, err_msg=name)
        np.testing.assert_allclose(got.variances_flow, truth.variances_flow, err_msg=name)


# Expected snapshots, worked out by hand from the minutes above: each edge goes to the nearest snapshot
# (the lower one may be the run start: None); a window on one snapshot widens on its cheaper side.
@pytest.mark.parametrize(
    "window,earlier,later",
    [
        (Window(0, 1), None, 1),
        (Window(8, 9), 8, 9),
        (Window(0, 9.1), None, 9),
        (Window(3, 6), 3, 6),
        (Window(2.7, 6.3), 3, 6),
        (Window(5, 5), 4, 5),
        (Window(4.5, 7.5), 4, 7),
    ],
)
def test_cumulative_slice_equals_what_was_filled_in_it(cumulative, window, earlier, later):
    runs, service = cumulative
    view = service.view(RUN, "EMC", window, RAW)
    ids = snapshot_ids(service.store)
    assert view.plan.earlier_snapshot_id == (None if earlier is None else ids[earlier])
    assert view.plan.later_snapshot_id == ids[later]
    start = T0 if earlier is None else SNAPSHOT_TIMES[earlier]
    assert_equals_truth(view, runs, start, SNAPSHOT_TIMES[later])


def test_slice_reports_requested_and_returned_minutes(cumulative):
    _, service = cumulative
    view = service.view(RUN, "EMC", Window(3, 6), RAW)
    assert view.description == "requested 3-6 min, returned 3.0-6.0 min"
    off = service.view(RUN, "EMC", Window(1, 4), RAW)
    assert off.description == "requested 1-4 min, returned 1.1-4.1 min due to data"


def test_a_view_served_from_memory_answers_its_own_request(cumulative):
    _, service = cumulative
    first = service.view(RUN, "EMC", Window(3, 6), RAW)
    built = service.computed
    # Another window over the same two snapshots: the cached content, but this request's plan.
    second = service.view(RUN, "EMC", Window(2.7, 6.3), RAW)
    assert service.computed == built
    assert second.plan.used_snapshot_ids == first.plan.used_snapshot_ids
    assert second.plan.requested == Window(2.7, 6.3)
    assert second.description == "requested 2.7-6.3 min, returned 3.0-6.0 min due to data"
    assert first.description == "requested 3-6 min, returned 3.0-6.0 min"


@pytest.fixture(scope="module")
def recorded_reset(tmp_path_factory):
    return record_run(tmp_path_factory.mktemp("reset"), reset=True)


# Reset mode: snapshot i holds what was filled since snapshot i-1; a window sums those after its lower
# edge up to its upper one.
@pytest.mark.parametrize(
    "window,first,last",
    [
        (Window(0, 1), 0, 1),  # first minute
        (Window(9, 9), 9, 9),  # last minute
        (None, 0, 9),  # whole run
        (Window(2, 5), 3, 5),
    ],
)
def test_reset_mode_slice_is_the_sum_of_the_snapshots(recorded_reset, tmp_path, window, first, last):
    runs, store = recorded_reset
    service = ProcessingService(store, tmp_path / "cache")
    view = service.view(RUN, "EMC", window, RAW, MergerMode.RESET)
    assert view.plan.summed_snapshot_ids == tuple(snapshot_ids(store)[first : last + 1])
    start = T0 if first == 0 else SNAPSHOT_TIMES[first - 1]
    assert_equals_truth(view, runs, start, SNAPSHOT_TIMES[last])
    events = runs.filled_between(EVENTS, start, SNAPSHOT_TIMES[last]).values()[0]
    assert view.n_events == events > 0


# The receiver ran with --reset and its snapshots say so: without being told, a view sums them.
@pytest.mark.parametrize(
    "window,first,last",
    [
        (None, 0, 9),  # the full run is every increment, not the newest one
        (Window(2, 5), 3, 5),
        (Window(9, 9), 9, 9),
    ],
)
def test_a_run_recorded_in_reset_mode_is_summed_without_being_told(
    recorded_reset, tmp_path, window, first, last
):
    runs, store = recorded_reset
    service = ProcessingService(store, tmp_path / "cache")
    assert service.run_info(RUN, "EMC").merger_mode is MergerMode.RESET
    view = service.view(RUN, "EMC", window, RAW)
    assert view.plan.mode is MergerMode.RESET
    assert view.plan.summed_snapshot_ids == tuple(snapshot_ids(store)[first : last + 1])
    start = T0 if first == 0 else SNAPSHOT_TIMES[first - 1]
    assert_equals_truth(view, runs, start, SNAPSHOT_TIMES[last])
    events = runs.filled_between(EVENTS, start, SNAPSHOT_TIMES[last]).values()[0]
    assert view.n_events == events > 0
    # The full run holds every event filled: far more than its newest snapshot alone.
    if window is None:
        newest = store.read_histogram(snapshot_ids(store)[-1], EVENTS).values()[0]
        assert view.n_events == runs.filled_between(EVENTS, T0, SNAPSHOT_TIMES[-1]).values()[0] > newest
    assert service.plan(RUN, "EMC", window)[1] == view.plan
    # Asking for the recorded mode is the same view (one cache entry).
    built = service.computed
    assert service.view(RUN, "EMC", window, RAW, MergerMode.RESET).plan == view.plan
    assert service.computed == built


def test_an_explicit_mode_still_overrides_the_recorded_one(recorded_reset, recorded_emc, tmp_path):
    runs, store = recorded_reset
    service = ProcessingService(store, tmp_path / "cache")
    # Read as cumulative, the full run of a reset run is only its newest increment.
    view = service.view(RUN, "EMC", None, RAW, MergerMode.CUMULATIVE)
    assert view.plan.mode is MergerMode.CUMULATIVE
    assert view.plan.used_snapshot_ids == (snapshot_ids(store)[-1],)
    assert_equals_truth(view, runs, SNAPSHOT_TIMES[-2], SNAPSHOT_TIMES[-1])
    # And a cumulative run stays cumulative unless told otherwise.
    _, cumulative_store = recorded_emc
    other = ProcessingService(cumulative_store, tmp_path / "other-cache")
    assert other.view(RUN, "EMC", Window(3, 6), RAW).plan.mode is MergerMode.CUMULATIVE
    assert other.view(RUN, "EMC", Window(3, 6), RAW, MergerMode.RESET).plan.mode is MergerMode.RESET


def test_reset_mode_reads_only_the_needed_histograms_one_snapshot_at_a_time(recorded_reset, tmp_path):
    _, store = recorded_reset
    service = ProcessingService(store, tmp_path / "cache")
    store.reads.clear()
    view = service.view(RUN, "EMC", None, RAW, MergerMode.RESET)
    # The view itself read the events histogram (with its row group) once from each snapshot.
    assert sorted(snapshot for snapshot, _ in store.reads) == snapshot_ids(store)
    assert all(names is not None and EVENTS in names and len(names) <= READ_CHUNK for _, names in store.reads)
    store.reads.clear()
    view.histogram("EMCTRQA_histFastORL1_SM0")
    assert len(store.reads) == 10
    assert all(names is not None and len(names) <= READ_CHUNK for _, names in store.reads)


def test_building_a_view_reads_only_the_events_histogram(cumulative, tmp_path):
    runs, service = cumulative
    store = service.store
    store.reads.clear()
    view = service.view(RUN, "EMC", Window(4, 8), ProcessingOptions(hot_channel_threshold=0.123))
    ids = snapshot_ids(store)
    assert sorted(snapshot for snapshot, _ in store.reads) == sorted([ids[4], ids[8]])
    assert all(EVENTS in names and len(names) <= READ_CHUNK for _, names in store.reads)
    assert len(view.names) > READ_CHUNK  # far more than was read
    store.reads.clear()
    view.histogram("hClusterCells")
    assert len(store.reads) == 2 and all("hClusterCells" in names for _, names in store.reads)
    assert_equals_truth(view, runs, SNAPSHOT_TIMES[4], SNAPSHOT_TIMES[8], ["hClusterCells"])


def test_scaling_divides_by_the_slices_own_event_count(cumulative):
    runs, service = cumulative
    window = Window(4, 7)
    raw = service.view(RUN, "EMC", window, RAW)
    scaled = service.view(RUN, "EMC", window, ProcessingOptions(scale_by_events=True))
    # The nearest snapshots to minutes 4 and 7 are snapshot 4 (4.12) and 7 (7.12).
    events_in_window = runs.filled_between(EVENTS, SNAPSHOT_TIMES[4], SNAPSHOT_TIMES[7]).values()[0]
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
    [check] = [c for c in view.histogram(name).checks if "hot_channel_ids" in c.details]
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


def test_options_stay_apart_in_the_disk_cache_of_a_new_service(cumulative, tmp_path):
    _, service = cumulative
    loose_options = ProcessingOptions(hot_channel_threshold=1e-4)
    default = hot_ids(service.view(RUN, "EMC", Window(1, 8)))
    loose = hot_ids(service.view(RUN, "EMC", Window(1, 8), loose_options))
    assert default != loose
    service.flush()  # processed histograms reach the disk in the background
    other = ProcessingService(service.store, tmp_path / "cache")
    service.store.reads.clear()
    assert hot_ids(other.view(RUN, "EMC", Window(1, 8), loose_options)) == loose
    assert hot_ids(other.view(RUN, "EMC", Window(1, 8))) == default
    assert other.computed == 0 and service.store.reads == []  # both from disk, no snapshot read


def test_a_threshold_above_every_fastor_finds_none(cumulative):
    _, service = cumulative
    name = "EMCTRQA_histFastORL0"
    highest = float(service.view(RUN, "EMC", Window(0, 9)).histogram(name).histogram.values().max())
    above = service.view(RUN, "EMC", Window(0, 9), ProcessingOptions(hot_channel_threshold=highest * 1.01))
    assert hot_ids(above) == ([], highest * 1.01)
    [check] = above.histogram(name).checks
    assert check.quality == "Good" and check.message == f"0 hot FastORs above {highest * 1.01:g}"
    below = service.view(RUN, "EMC", Window(0, 9), ProcessingOptions(hot_channel_threshold=highest * 0.999))
    hottest = int(np.argmax(service.view(RUN, "EMC", Window(0, 9)).histogram(name).histogram.values()))
    assert hot_ids(below)[0] == [hottest]
    with pytest.raises(OptionsError) as error:
        service.view(RUN, "EMC", Window(0, 9), {"hot_channel_threshold": HOT_CHANNEL_THRESHOLD_MAX * 2})
    assert error.value.field == "hot_channel_threshold"


@pytest.mark.parametrize(
    "options,field",
    [
        ({"outlier_n_sigma": "abc"}, "outlier_n_sigma"),
        ({"outlier_n_sigma": 11}, "outlier_n_sigma"),
        ({"outlier_sigma": 1}, "outlier_sigma"),
        ({"scale_by_events": "sometimes"}, "scale_by_events"),
    ],
)
def test_bad_options_through_the_service_name_the_field(cumulative, options, field):
    _, service = cumulative
    with pytest.raises(OptionsError) as error:
        service.view(RUN, "EMC", Window(1, 4), options)
    assert error.value.field == field


def test_plugin_options_reach_the_checks(cumulative):
    _, service = cumulative
    name = "EMCTRQA_histFastORL0_SM4"
    plain = service.view(RUN, "EMC", Window(1, 4), {"outlier_n_sigma": "0"})
    flagged = service.view(RUN, "EMC", Window(1, 4), {"outlier_n_sigma": "1"})
    assert [c.check for c in plain.histogram(name).checks] == []
    [check] = flagged.histogram(name).checks
    assert check.check == "signal_outliers" and check.details["n_sigma"] == 1.0


def test_cache_survives_a_new_service_and_clearing_it_rebuilds_the_same(cumulative, tmp_path):
    _, service = cumulative
    first = service.view(RUN, "EMC", Window(2, 6))
    first.histograms  # noqa: B018 - processed now, so the new service finds them on disk
    service.flush()
    other = ProcessingService(service.store, tmp_path / "cache")
    service.store.reads.clear()
    cached = other.view(RUN, "EMC", Window(2, 6))
    cached_values = {name: cached.histogram(name).histogram.values_flow for name in CHECKED}
    assert other.computed == 0 and service.store.reads == []
    other.clear_cache()
    rebuilt = other.view(RUN, "EMC", Window(2, 6))
    assert other.computed == 1
    for name in CHECKED:
        np.testing.assert_array_equal(
            rebuilt.histograms[name].histogram.values_flow, first.histograms[name].histogram.values_flow
        )
        np.testing.assert_array_equal(cached_values[name], first.histograms[name].histogram.values_flow)


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
    options = {"scale_by_events": "true", "hot_channel_threshold": "0.5", "outlier_n_sigma": "2"}
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


def test_run_subsystems_are_those_the_run_list_shows(tmp_path):
    # TPC shown from the HLT's files, EMC and HLT from their own; asked without listing the store.
    _, store = record_run(tmp_path, subsystems=("EMC", "HLT"))
    service = ProcessingService(store, tmp_path / "cache", ("EMC", "TPC", "HLT"))
    listed = [info.subsystem for info in service.runs() if info.run == RUN]
    assert service.run_subsystems(RUN) == listed == ["EMC", "TPC", "HLT"]
    assert service.run_subsystems(RUN + 1) == []


@pytest.fixture(scope="module")
def hlt_only(tmp_path_factory):
    """Scenario 1: only the HLT receiver ran; its snapshots hold every detector's histograms."""
    return record_run(tmp_path_factory.mktemp("hlt"), subsystems=("EMC", "TPC", "HLT"), store_as="HLT")


def test_a_subsystem_shown_from_hlt_files_claims_only_its_own_histograms(hlt_only, tmp_path):
    runs, store = hlt_only
    service = ProcessingService(store, tmp_path / "cache")
    by_subsystem = {s: {n for n in runs.declared_names if runs.subsystem_of(n) == s} for s in runs.detectors}
    emc = service.view(RUN, "EMC")
    assert emc.run.source_subsystem == "HLT"
    # Everything of EMC's, nothing else: not the HLT's fHistClusterChargeMax/Tot for "Cluster".
    assert set(emc.names) == by_subsystem["EMC"]
    [cluster_names] = [names for group, names in emc.groups if group.title == "EMCal cluster level"]
    assert cluster_names and all(name.startswith("hCluster") for name in cluster_names)
    tpc = service.view(RUN, "TPC")
    stored = {name for name in tpc.names if name in runs.declared_names}
    assert stored == by_subsystem["TPC"]  # not the HLT's fHistTPC* histograms
    assert "pT_postracks" in tpc.names  # projections of its TH3s are still made
    assert set(service.view(RUN, "HLT").names) == set(runs.declared_names)
    assert_equals_truth(emc, runs, T0, SNAPSHOT_TIMES[-1], ["hClusterCells", EVENTS])


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


@pytest.fixture(scope="module")
def emc_switches(tmp_path_factory):
    """Scenario 1a: the HLT receiver ran all along; EMC's own receiver from snapshot 6 (minute 6) on."""
    return record_run(
        tmp_path_factory.mktemp("switch"), subsystems=("EMC", "HLT"), store_as="HLT", own_from=6
    )


# (window, whose snapshots, earlier, later): minutes count from the start of run for EMC too.
@pytest.mark.parametrize(
    "window,source,earlier,later",
    [
        # Before EMC's own data began: the HLT's snapshots, which hold EMC's histograms, answer.
        (Window(0, 1), "HLT", None, 1),
        (Window(4.5, 7.5), "HLT", 4, 7),
        # EMC's own data cover these: its own snapshots, at their minutes since the start of run.
        (Window(6.5, 9), "EMC", 6, 9),
        (Window(0, 9), "EMC", None, 9),
    ],
)
def test_minutes_count_from_the_start_of_run_for_every_subsystem(
    emc_switches, tmp_path, window, source, earlier, later
):
    runs, store = emc_switches
    service = ProcessingService(store, tmp_path / "cache")
    view = service.view(RUN, "EMC", window, RAW)
    assert view.run.source_subsystem == source
    assert view.run.start_utc.timestamp() == SNAPSHOT_TIMES[0]  # the HLT's first snapshot
    assert view.run.length_minutes == pytest.approx(9.0)
    ids = snapshot_ids(store, source)
    if source == "EMC":
        ids = [None] * 6 + ids  # EMC's own snapshots are the run's 6th to 9th
    assert view.plan.later_snapshot_id == ids[later]
    assert view.plan.earlier_snapshot_id == (None if earlier is None else ids[earlier])
    start = T0 if earlier is None else SNAPSHOT_TIMES[earlier]
    assert_equals_truth(view, runs, start, SNAPSHOT_TIMES[later])
    returned = view.plan.returned
    assert returned.min_minutes == pytest.approx((start - SNAPSHOT_TIMES[0]) / 60 if earlier else 0.0)
    assert returned.max_minutes == pytest.approx((SNAPSHOT_TIMES[later] - SNAPSHOT_TIMES[0]) / 60)


def test_the_description_says_when_hlt_snapshots_stand_in(emc_switches, tmp_path):
    _, store = emc_switches
    service = ProcessingService(store, tmp_path / "cache")
    early = service.view(RUN, "EMC", Window(0, 1), RAW)
    assert early.description == (
        "requested 0-1 min, returned 0.0-1.1 min due to data"
        " (from HLT snapshots: EMC's own begin at minute 6.0)"
    )
    late = service.view(RUN, "EMC", Window(7, 9), RAW)
    assert late.description == "requested 7-9 min, returned 7.1-9.0 min due to data"
    assert service.view(RUN, "EMC").run.source_subsystem == "EMC"  # the whole run: its own data


def test_minutes_before_a_subsystems_own_data_without_hlt_copies_say_so(tmp_path):
    # The HLT's snapshots hold only HLT histograms, so nothing can stand in for EMC's first minutes.
    _, store = record_run(tmp_path, subsystems=("HLT",), store_as="HLT")
    runs = SyntheticRuns(("EMC",), CONFIG, now=lambda: SNAPSHOT_TIMES[6])
    runs.advance(SNAPSHOT_TIMES[6])
    meta = SnapshotMeta(RUN, "EMC", datetime.fromtimestamp(SNAPSHOT_TIMES[6], UTC), "B", "pp")
    store.write_snapshot(meta, list(runs.snapshot().values()))
    service = ProcessingService(store, tmp_path / "cache")
    view = service.view(RUN, "EMC", Window(0, 1), RAW)
    # The nearest data: from the start of run to EMC's first snapshot, and the answer says so.
    assert view.plan.used_snapshot_ids == tuple(snapshot_ids(store))
    assert view.n_events == runs.filled_between(EVENTS, T0, SNAPSHOT_TIMES[6]).values()[0]
    assert view.description == (
        "requested 0-1 min, returned 0.0-6.0 min due to data (EMC's own snapshots begin at minute 6.0)"
    )


def test_processed_histograms_reach_the_disk_once_requests_pause(cumulative, tmp_path):
    _, service = cumulative
    entries = len(service.cache)
    service.view(RUN, "EMC", Window(2, 7)).histogram("hClusterCells")
    # The view's skeleton and its histogram are written by the background writer, not the request.
    deadline = time.monotonic() + 10
    while len(service.cache) < entries + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(service.cache) == entries + 2
    other = ProcessingService(service.store, tmp_path / "cache")
    service.store.reads.clear()
    other.view(RUN, "EMC", Window(2, 7)).histogram("hClusterCells")
    assert other.computed == 0 and service.store.reads == []


def test_a_mode_the_run_was_not_recorded_in_is_said_prominently(recorded_emc, recorded_reset, tmp_path):
    # The case: a cumulative run summed in reset mode (events jumped from 13,599 to 248,138).
    _, store = recorded_emc
    service = ProcessingService(store, tmp_path / "cache")
    recorded = service.view(RUN, "EMC", None, RAW)
    summed = service.view(RUN, "EMC", None, RAW, MergerMode.RESET)
    assert recorded.mode_mismatch is None and not recorded.warnings
    assert summed.n_events > 3 * recorded.n_events  # the inflated numbers the warning is about
    assert summed.mode_mismatch.startswith("Not recorded this way: run 5000 EMC was recorded in cumulative")
    assert summed.warnings[0] == summed.mode_mismatch
    _, reset_store = recorded_reset
    other = ProcessingService(reset_store, tmp_path / "other-cache")
    assert other.view(RUN, "EMC", None, RAW).mode_mismatch is None
    subtracted = other.view(RUN, "EMC", Window(2, 5), RAW, MergerMode.CUMULATIVE)
    assert "recorded in reset mode" in subtracted.mode_mismatch


def windows_over_every_pair():
    """Windows that each use a different pair of snapshots (minutes as in SNAPSHOT_OFFSETS_S)."""
    return [Window(float(a), float(b)) for a in range(0, 8) for b in range(a + 1, 10) if (a, b) != (0, 1)]


def held_now(entry):
    """The histograms a cached view or slice holds, listed from its insides (not its running count)."""
    if isinstance(entry, ViewContent):
        combined, raw = entry._histograms._combined, entry._histograms._raw
        read = [h for later, earlier, _ in raw.values() for h in (*later.values(), *earlier.values())]
        return [*combined.values(), *read, *entry._derived.values()]
    return [processed.histogram for processed in entry._processed.values()]


def assert_weights_are_what_entries_hold(service):
    held = service._held
    for entry in held.values():
        assert entry.nbytes == held_bytes(held_now(entry))
    assert held.total_weight == sum(entry.nbytes for entry in held.values())
    assert len(held) <= held.max_entries and held.total_weight <= held.max_weight


def test_views_and_slices_in_memory_stay_within_their_bytes(recorded_emc, tmp_path):
    # A control room left open builds a new view every few seconds: what the service keeps must not
    # grow with them. About two slices' histograms fit in this limit.
    _, store = recorded_emc
    one = ProcessingService(store, tmp_path / "one")
    probe = one.view(RUN, "EMC", Window(3, 6), RAW)
    for name in CHECKED:
        probe.histogram(name)
    one_view_and_slice = one.memory_held()[1]
    assert one_view_and_slice > 100_000  # the row groups read: real buffers, not a token weight
    limit = int(2.5 * one_view_and_slice)
    service = ProcessingService(store, tmp_path / "cache", memory_bytes=limit)
    for window in windows_over_every_pair():
        view = service.view(RUN, "EMC", window, RAW)
        for name in CHECKED:
            view.histogram(name)
        assert_weights_are_what_entries_hold(service)
        assert service.memory_held()[1] <= limit
    entries, held = service.memory_held()
    assert 2 <= entries < 10 and held > one_view_and_slice  # full, and only a few kept


def test_views_in_memory_are_bounded_by_count_too(cumulative):
    _, service = cumulative
    for window in windows_over_every_pair():  # 41 views of nothing processed: no weight, count only
        service.view(RUN, "EMC", window, RAW)
    views = [key for key in service._held._entries if key[0] == "view"]
    assert len(views) <= 2 * 16 and len(service._held) == 2 * 16


def test_dropped_views_and_slices_are_rebuilt_with_the_same_numbers(recorded_emc, tmp_path):
    # A limit of 1 byte keeps nothing that holds a histogram: every slice is read again when needed,
    # also under a view that is still in use, and gives the truth every time.
    runs, store = recorded_emc
    service = ProcessingService(store, tmp_path / "cache", memory_bytes=1)
    view = service.view(RUN, "EMC", Window(3, 6), RAW)
    assert_equals_truth(view, runs, SNAPSHOT_TIMES[3], SNAPSHOT_TIMES[6])
    assert service.memory_held() == (0, 0)
    store.reads.clear()
    threshold = ProcessingOptions(scale_by_events=False, hot_channel_threshold=0.05)
    other = service.view(RUN, "EMC", Window(3, 6), threshold)
    assert_equals_truth(other, runs, SNAPSHOT_TIMES[3], SNAPSHOT_TIMES[6])
    assert store.reads  # the slice was dropped: read again from the snapshots
    for window in windows_over_every_pair()[:6]:
        service.view(RUN, "EMC", window, RAW).histogram(EVENTS)
    store.reads.clear()
    # A histogram the first view has not shown yet, from a row group no other view read.
    unread = [name for name in view.names if name.startswith("EMCTRQA_histFastORL1")][:1]
    assert unread
    assert_equals_truth(view, runs, SNAPSHOT_TIMES[3], SNAPSHOT_TIMES[6], names=unread)
    assert store.reads and service.memory_held()[1] == 0


def test_histograms_read_together_weigh_their_shared_buffers_once(recorded_emc):
    # Histograms read from one row group are views into the same column: holding one keeps it all.
    _, store = recorded_emc
    snapshot_id = snapshot_ids(store)[4]
    _, histograms = store.read_snapshot(snapshot_id, CHECKED)
    events, fastors = histograms[EVENTS], histograms["EMCTRQA_histFastORL0"]
    one = held_bytes([events])
    assert one > events.values_flow.nbytes * 100  # the buffers it keeps, not its 3 bins
    # Unweighted 1-D histograms of one read share the values, variances and edges columns' buffers.
    assert held_bytes([events, fastors]) == one + HISTOGRAM_OVERHEAD_BYTES
    copied = histograms[EVENTS].values_flow.copy()
    assert held_bytes([replace(histograms[EVENTS], values_flow=copied)]) > one  # its own array too
