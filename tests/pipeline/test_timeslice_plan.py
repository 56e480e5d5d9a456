"""Which snapshots a window uses, in cumulative and reset mode, and what the answer says it returned."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline.histogram import Histogram
from pipeline.processing.options import OptionsError
from pipeline.processing.timeslice import (
    MergerMode,
    SliceHistograms,
    Window,
    plan_slice,
)

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


def test_cumulative_subtracts_the_last_snapshot_strictly_before_the_window():
    plan = plan_slice(JITTERY, 1, "EMC", Window(3, 7))
    # min 3: last snapshot whose minute is < 3 is s2 (2.0); s3 (2.9) rounds to 3, so it is inside.
    assert (plan.earlier_snapshot_id, plan.later_snapshot_id) == ("s2", "s7")
    assert plan.returned == Window(2.0, 7.0)
    assert plan.describe() == "requested 3-7 min, returned 2.0-7.0 min due to data"


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


def test_window_without_its_own_snapshot_is_empty():
    sparse = snapshot_list([0, 5, 10])
    plan = plan_slice(sparse, 1, "EMC", Window(6, 9))
    assert plan.is_empty and "no snapshot" in plan.describe()


def test_reset_mode_sums_the_snapshots_inside():
    plan = plan_slice(JITTERY, 1, "EMC", Window(3, 5), MergerMode.RESET)
    assert plan.summed_snapshot_ids == ("s3", "s4", "s5")
    assert plan.returned == Window(2.0, 5.0)


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
