"""Which snapshots a window uses, in cumulative and reset mode, and what the answer says it returned."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline.histogram import Histogram
from pipeline.processing.options import OptionsError
from pipeline.processing.timeslice import (
    READ_CHUNK,
    MergerMode,
    SliceHistograms,
    SnapshotPart,
    Window,
    _read_in_order,
    load_slice,
    plan_slice,
    plan_window,
)
from pipeline.store import SnapshotMeta, SnapshotStore

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def snapshot_list(minutes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "snapshot_id": [f"s{i}" for i in range(len(minutes))],
            "snapshot_time_utc": [START + timedelta(minutes=m) for m in minutes],
        }
    )


# Snapshots about once a minute with receiver jitter, like a real run of 10 minutes.
JITTERY = snapshot_list([0.0, 1.1, 2.0, 2.9, 4.05, 5.0, 6.1, 7.0, 7.95, 9.0, 10.1])


def test_edges_go_to_the_nearest_snapshots():
    plan = plan_slice(JITTERY, 1, "EMC", Window(3, 7))
    # min 3: s3 (2.9) is nearer than s4 (4.05); max 7: s7 (7.0).
    assert (plan.earlier_snapshot_id, plan.later_snapshot_id) == ("s3", "s7")
    assert plan.returned == Window(2.9, 7.0)
    assert plan.describe() == "requested 3-7 min, returned 2.9-7.0 min due to data"


def test_a_snapshot_every_5_s_answers_within_2_5_s_of_each_edge():
    # The case: 1-2 min returned 0.4-2.4 min and 3-3.5 min returned 2.4-3.4 min.
    every_5_s = snapshot_list([i * 5 / 60 for i in range(1, 61)])
    for requested in (Window(1, 2), Window(3, 3.5), Window(0.3, 4.7)):
        plan = plan_slice(every_5_s, 1, "EMC", requested)
        assert plan.returned.min_minutes == pytest.approx(requested.min_minutes, abs=2.5 / 60 + 1e-9)
        assert plan.returned.max_minutes == pytest.approx(requested.max_minutes, abs=2.5 / 60 + 1e-9)
        assert plan.describe().startswith(
            f"requested {requested.min_minutes:g}-{requested.max_minutes:g} min, returned"
            f" {requested.min_minutes:.1f}-{requested.max_minutes:.1f} min"
        )


def test_window_from_start_uses_the_later_snapshot_alone():
    plan = plan_slice(JITTERY, 1, "EMC", Window(0, 4))
    assert plan.earlier_snapshot_id is None and plan.later_snapshot_id == "s4"
    assert plan.used_snapshot_ids == ("s4",)


def test_whole_run_and_last_minute():
    whole = plan_slice(JITTERY, 1, "EMC", Window(0, 10.1))
    assert whole.used_snapshot_ids == ("s10",)
    last = plan_slice(JITTERY, 1, "EMC", Window(10, 10))
    assert (last.earlier_snapshot_id, last.later_snapshot_id) == ("s9", "s10")
    assert last.returned.max_minutes == pytest.approx(10.1)


def test_a_window_narrower_than_the_snapshot_spacing_moves_the_cheaper_edge():
    # 4.1-4.2: both edges nearest to s4 (4.05); moving the upper one to s5 costs 0.8 min, moving the
    # lower one back to s3 (2.9) costs 1.2 min.
    narrow = plan_slice(JITTERY, 1, "EMC", Window(4.1, 4.2))
    assert (narrow.earlier_snapshot_id, narrow.later_snapshot_id) == ("s4", "s5")
    # 3.9-4.0: moving the lower edge back to s3 costs 1.05 min, the upper one forward to s5 1.15 min.
    early = plan_slice(JITTERY, 1, "EMC", Window(3.9, 4.0))
    assert (early.earlier_snapshot_id, early.later_snapshot_id) == ("s3", "s4")


def test_the_whole_run_ends_at_its_newest_snapshot_whatever_the_float_rounding():
    # The run length comes from datetimes, snapshot minutes from float epochs; for these two times the
    # epoch difference is a few ulps longer, and the newest snapshot (minute 8.87, rounded 9) was dropped.
    start = datetime(2026, 11, 30, 23, 8, 2, 267459, tzinfo=UTC)
    end = datetime(2026, 11, 30, 23, 16, 54, 236834, tzinfo=UTC)
    epochs = np.array([start.timestamp(), (start + timedelta(minutes=4)).timestamp(), end.timestamp()])
    length = (end - start).total_seconds() / 60.0
    assert (epochs[-1] - epochs[0]) / 60.0 > length  # the mismatch this test is about
    whole = plan_window(["a", "b", "c"], epochs, 1, "EMC", Window(0.0, length))
    assert whole.used_snapshot_ids == ("c",)
    # And a window starting exactly at a snapshot's time keeps that snapshot inside it.
    from_c = plan_window(["a", "b", "c"], epochs, 1, "EMC", Window(length, length))
    assert (from_c.earlier_snapshot_id, from_c.later_snapshot_id) == ("b", "c")


def test_a_window_between_sparse_snapshots_is_cut_at_the_nearest_ones():
    sparse = snapshot_list([0, 5, 10])
    plan = plan_slice(sparse, 1, "EMC", Window(6, 9))
    assert (plan.earlier_snapshot_id, plan.later_snapshot_id) == ("s1", "s2")
    assert plan.describe() == "requested 6-9 min, returned 5.0-10.0 min due to data"


def test_reset_mode_sums_the_snapshots_after_the_lower_edge_up_to_the_upper_one():
    plan = plan_slice(JITTERY, 1, "EMC", Window(3, 5), MergerMode.RESET)
    assert plan.summed_snapshot_ids == ("s4", "s5")
    assert plan.returned == Window(2.9, 5.0)
    from_start = plan_slice(JITTERY, 1, "EMC", Window(0, 1), MergerMode.RESET)
    assert from_start.summed_snapshot_ids == ("s0", "s1") and from_start.returned == Window(0.0, 1.1)


@pytest.mark.parametrize(
    "window,field",
    [
        (Window(-1, 3), "min_minutes"),
        (Window(5, 3), "min_minutes"),
        (Window(0, 60), "max_minutes"),
        (Window(float("nan"), 3), "min_minutes"),
        (Window("3", 4), "min_minutes"),
    ],
)
def test_bad_windows_name_the_field(window, field):
    with pytest.raises(OptionsError) as error:
        plan_slice(JITTERY, 1, "EMC", window)
    assert error.value.field == field


def hist(name: str, values: list[float], edges=(0.0, 1.0, 2.0)) -> Histogram:
    array = np.array(values, dtype=float)
    return Histogram(name, "TH1D", name, (np.array(edges),), array, array * 2)


def test_subtraction_keeps_histograms_new_in_the_window_and_subtracts_variances():
    later = {"a": hist("a", [1, 5, 7, 0]), "new": hist("new", [0, 2, 2, 0])}
    earlier = {"a": hist("a", [1, 2, 3, 0]), "gone": hist("gone", [0, 1, 1, 0])}
    result = SliceHistograms(MergerMode.CUMULATIVE, [later, earlier])
    assert list(result) == ["a", "new"] and "gone" not in result
    np.testing.assert_array_equal(result["a"].values_flow, [0, 3, 4, 0])
    np.testing.assert_array_equal(result["a"].variances_flow, [0, 6, 8, 0])
    assert result["new"] is later["new"] and not result.warnings


def test_changed_binning_is_reported_not_subtracted():
    result = SliceHistograms(
        MergerMode.CUMULATIVE,
        [{"a": hist("a", [0, 1, 1, 1, 0], (0, 1, 2, 3))}, {"a": hist("a", [0, 1, 1, 0])}],
    )
    assert result["a"].values_flow.sum() == 3 and result.warnings


def test_sum_of_reset_snapshots():
    parts = [{"a": hist("a", [0, 1, 2, 0])}, {"a": hist("a", [0, 3, 4, 0]), "b": hist("b", [0, 1, 0, 0])}]
    total = SliceHistograms(MergerMode.RESET, parts)
    assert list(total) == ["a", "b"]
    np.testing.assert_array_equal(total["a"].values_flow, [0, 4, 6, 0])


def epochs_of(frame: pd.DataFrame) -> np.ndarray:
    return np.array([t.timestamp() for t in frame["snapshot_time_utc"]])


def test_minutes_count_from_the_start_of_run_not_the_subsystems_first_snapshot():
    # A subsystem whose own snapshots began 6 minutes into a 20-minute run.
    own = snapshot_list([0.0, 1.0, 2.0, 3.0])
    run_start = START.timestamp() - 6 * 60
    ids = own["snapshot_id"].tolist()
    plan = plan_window(
        ids, epochs_of(own), 1, "EMC", Window(7, 8), run_start_epoch=run_start, run_length_minutes=20
    )
    assert (plan.earlier_snapshot_id, plan.later_snapshot_id) == ("s1", "s2")
    assert plan.returned == Window(7.0, 8.0) and plan.after_snapshot
    # Before its own data: counted from the start of run up to its first snapshot.
    early = plan_window(
        ids, epochs_of(own), 1, "EMC", Window(0, 1), run_start_epoch=run_start, run_length_minutes=20
    )
    assert early.used_snapshot_ids == ("s0",) and early.returned == Window(0.0, 6.0)
    assert not early.after_snapshot
    # The window may reach the end of the run, past this subsystem's last snapshot.
    late = plan_window(
        ids, epochs_of(own), 1, "EMC", Window(12, 20), run_start_epoch=run_start, run_length_minutes=20
    )
    assert late.is_empty
    with pytest.raises(OptionsError):
        plan_window(
            ids, epochs_of(own), 1, "EMC", Window(0, 21), run_start_epoch=run_start, run_length_minutes=20
        )


def test_a_plan_says_whether_its_start_is_a_snapshot_or_the_start_of_run():
    assert not plan_slice(JITTERY, 1, "EMC", Window(0, 4)).after_snapshot
    assert plan_slice(JITTERY, 1, "EMC", Window(3, 4)).after_snapshot
    assert not plan_slice(JITTERY, 1, "EMC", Window(0, 4), MergerMode.RESET).after_snapshot
    assert plan_slice(JITTERY, 1, "EMC", Window(3, 4), MergerMode.RESET).after_snapshot


class RecordingPart(SnapshotPart):
    """An in-memory snapshot that records which names each read asked for."""

    def __init__(self, histograms):
        self.reads: list[list[str] | None] = []

        def read(names):
            self.reads.append(None if names is None else list(names))
            return {name: histograms[name] for name in (histograms if names is None else names)}

        super().__init__(histograms, read)


def many(count: int, scale: float = 1.0) -> dict[str, Histogram]:
    return {name(i): hist(name(i), [0, scale * i, scale, 0]) for i in range(count)}


def name(index: int) -> str:
    return f"h{index:04d}"


def names(start: int, stop: int) -> list[str]:
    return [name(i) for i in range(start, stop)]


def test_a_slice_reads_the_asked_name_with_its_row_group_and_nothing_else():
    # Three row groups and a bit; the earlier snapshot lacks the last few names.
    total, in_earlier = 3 * READ_CHUNK + 4, 3 * READ_CHUNK - 6
    later, earlier = RecordingPart(many(total, 3.0)), RecordingPart(many(in_earlier, 1.0))
    result = SliceHistograms(MergerMode.CUMULATIVE, [later, earlier])
    asked = READ_CHUNK + 8
    np.testing.assert_array_equal(result[name(asked)].values_flow, [0, 2 * asked, 2, 0])
    assert later.reads == [names(READ_CHUNK, 2 * READ_CHUNK)] and earlier.reads == later.reads
    result[name(asked + 1)]  # read with the first one
    assert len(later.reads) == 1
    # A histogram the earlier snapshot lacks first appeared in the window: kept whole.
    new = 3 * READ_CHUNK - 2
    np.testing.assert_array_equal(result[name(new)].values_flow, [0, 3 * new, 3, 0])
    assert later.reads[-1] == names(2 * READ_CHUNK, 3 * READ_CHUNK)
    assert earlier.reads[-1] == names(2 * READ_CHUNK, in_earlier)
    assert name(total - 1) in result and name(total) not in result and len(result) == total


def test_reset_reads_run_at_most_two_parts_ahead_of_the_sum():
    started = []

    def read(part):
        started.append(part)
        return part

    with ThreadPoolExecutor(max_workers=2) as executor:
        for index, result in enumerate(_read_in_order(executor, read, list(range(30)))):
            assert result == index
            assert len(started) <= index + 3  # the one consumed and two ahead


def test_reset_sum_over_many_parts_with_readers():
    parts = [RecordingPart(many(READ_CHUNK + 8, 1.0)) for _ in range(30)]
    with ThreadPoolExecutor(max_workers=2) as executor:
        total = SliceHistograms(MergerMode.RESET, parts, executor)
        np.testing.assert_array_equal(total[name(2)].values_flow, [0, 60, 30, 0])
        last = READ_CHUNK + 5
        np.testing.assert_array_equal(total[name(last)].values_flow, [0, 30 * last, 30, 0])
    assert all(len(part.reads) == 2 for part in parts)  # one read per row group asked for


def test_a_whole_slice_reads_each_snapshot_in_one_scan():
    later, earlier = RecordingPart(many(100, 3.0)), RecordingPart(many(90, 1.0))
    whole = SliceHistograms(MergerMode.CUMULATIVE, [later, earlier]).materialized()
    assert len(whole) == 100 and later.reads == [None] and earlier.reads == [None]
    np.testing.assert_array_equal(whole[name(50)].values_flow, [0, 100, 2, 0])
    parts = [RecordingPart(many(3, 1.0)) for _ in range(5)]
    summed = SliceHistograms(MergerMode.RESET, parts).materialized()
    np.testing.assert_array_equal(summed[name(2)].values_flow, [0, 10, 5, 0])
    assert all(part.reads == [None] for part in parts)


def test_a_histogram_missing_at_the_windows_start_counts_from_the_snapshot_before(tmp_path):
    # The receiver rejected "B" (a corrupt payload) in the reply of minute 1; "C" appears at minute 2.
    store = SnapshotStore(tmp_path)
    contents = {
        0: {"A": [1, 1], "B": [10, 10]},
        1: {"A": [2, 2]},
        2: {"A": [3, 3], "B": [30, 30], "C": [5, 5]},
        3: {"A": [4, 4], "B": [40, 40], "C": [7, 7]},
    }
    ids = []
    for minute, histograms in contents.items():
        meta = SnapshotMeta(7, "EMC", START + timedelta(minutes=minute))
        ids.append(store.write_snapshot(meta, [hist(n, [0, *v, 0]) for n, v in histograms.items()]))
    epochs = np.array([(START + timedelta(minutes=m)).timestamp() for m in contents])
    plan = plan_window(ids, epochs, 7, "EMC", Window(1.5, 3))
    assert (plan.earlier_snapshot_id, plan.later_snapshot_id) == (ids[1], ids[3])
    assert plan.preceding_snapshot_ids == (ids[0],)

    window = load_slice(store, plan)
    assert window["A"].values().tolist() == [2, 2]  # 4 - 2, as always
    # B: 40 - 10 from minute 0, not 40 from the start of run; and the answer says so.
    assert window["B"].values().tolist() == [30, 30]
    np.testing.assert_array_equal(window["B"].variances(), [60, 60])  # hist() stores 2x the contents
    assert window.warnings == [
        "B: missing from the snapshot at the window's start; counted from the snapshot at 12:00:00 UTC"
    ]
    # C first appeared inside the window (in no earlier snapshot): kept whole, without a warning.
    assert window["C"].values().tolist() == [7, 7]
    assert len(window.warnings) == 1
    # A window starting at the run's first snapshot has nothing before it to look at.
    assert plan_window(ids, epochs, 7, "EMC", Window(0.5, 3)).preceding_snapshot_ids == ()
