"""Emulator fault injection: the spec language, the demo's one fault per run, and faults that change
exactly what they say from the minute they say, with `filled_between` still telling the truth."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.emulator.detectors_emc import SUPERMODULE_BOXES
from pipeline.emulator.faults import DEMO_START_MINUTE, KINDS, FaultPlan, FaultSpecError
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.settings import Settings
from tests.clocks import ManualClock

T0 = 1_767_000_000.0


def test_spec_strings_parse_with_defaults_and_bad_ones_say_what_is_wrong() -> None:
    plan = FaultPlan.parse("hot_fastor:id=42:at=2; low_rate:factor=0.5:run=300001")
    hot, low = plan.faults
    assert (hot.kind, hot["id"], hot.at_minute, hot.run) == ("hot_fastor", 42, 2.0, None)
    assert (low.kind, low["factor"], low.at_minute, low.run) == ("low_rate", 0.5, DEMO_START_MINUTE, 300001)
    assert FaultPlan.parse("none") == FaultPlan() and FaultPlan.parse("demo").demo
    for spec, message in [
        ("melted_magnet", "unknown fault kind"),
        ("hot_fastor:colour=red", "must be a number"),
        ("hot_fastor:colour=1", "unknown key"),
        ("hot_fastor:id", "key=value"),
        ("hot_fastor:id=99999", "FastOR id"),
        ("dead_supermodule:sm=20", "sm must be"),
        ("tpc_sector:keep=2", "keep"),
        ("low_rate:at=-1", "'at'"),
    ]:
        with pytest.raises(FaultSpecError, match=message):
            FaultPlan.parse(spec)
    with pytest.raises(ValueError, match="unknown fault kind"):
        EmulatorConfig(faults="nonsense")


def test_the_demo_injects_one_fault_per_run_early_in_it() -> None:
    plan = FaultPlan.parse(Settings().emulator_faults)
    kinds = [[fault.kind for fault in plan.in_run(index, 300000 + index)] for index in range(5)]
    assert kinds == [[KINDS[0]], [KINDS[1]], [KINDS[2]], [KINDS[3]], [KINDS[0]]]
    assert DEMO_START_MINUTE <= 2.0  # a newcomer sees a check turn Bad within the first run
    assert plan.active(0, 300000, DEMO_START_MINUTE - 0.1, "EMC") == []
    assert [f.kind for f in plan.active(0, 300000, DEMO_START_MINUTE, "EMC")] == ["hot_fastor"]
    assert plan.active(0, 300000, 5.0, "TPC") == []  # a hot FastOR is EMC's


def emulator(faults: str) -> tuple[SyntheticRuns, ManualClock]:
    clock = ManualClock(T0)
    config = EmulatorConfig(start_time_utc=T0, step_s=6.0, run_length_s=600.0, faults=faults)
    return SyntheticRuns(("EMC", "TPC"), config, now=clock), clock


def test_faults_start_at_their_minute_and_filled_between_stays_the_truth() -> None:
    runs, clock = emulator(
        "hot_fastor:id=1000:at=1;dead_supermodule:sm=5:at=1;tpc_sector:sector=11:keep=0:at=1"
    )
    clean, clean_clock = emulator("none")
    for minute in (1.0, 2.0):
        clock.time_utc = clean_clock.time_utc = T0 + 60 * minute
        runs.advance()
        clean.advance()
    held, clean_held = runs.snapshot(), clean.snapshot()
    at_1, at_2 = T0 + 60.0, T0 + 120.0
    # The truth the emulator reports is what it served.
    for name in ("EMCTRQA_histFastORL0", "EMCTRQA_histFastORL0_SM5", "TPCQA/h_tpc_track_pos_recvertex_2_5_6"):
        np.testing.assert_array_equal(runs.filled_between(name, T0, at_2).values_flow, held[name].values_flow)
    hits = runs.filled_between("EMCTRQA_histFastORL0", T0, at_2).values()
    clean_hits = clean.filled_between("EMCTRQA_histFastORL0", T0, at_2).values()
    # Before minute 1 nothing differs; after it FastOR 1000 fires in ~20 % of events.
    np.testing.assert_array_equal(
        runs.filled_between("EMCTRQA_histFastORL0", T0, at_1 - 1).values(),
        clean.filled_between("EMCTRQA_histFastORL0", T0, at_1 - 1).values(),
    )
    n_events = runs.filled_between("EMCTRQA_histEvents", at_1, at_2).values()[0]
    added = runs.filled_between("EMCTRQA_histFastORL0", at_1, at_2).values()[1000]
    assert added == pytest.approx(0.2 * n_events, rel=0.15)
    # The dead supermodule records nothing after minute 1, in its own map and in the per-id histogram.
    assert runs.filled_between("EMCTRQA_histFastORL0_SM5", at_1, at_2).values().sum() == 0
    _, col0, ncols, row0, nrows = SUPERMODULE_BOXES[5]
    sm5_ids = [row * 48 + col for row in range(row0, row0 + nrows) for col in range(col0, col0 + ncols)]
    assert runs.filled_between("EMCTRQA_histFastORL0", at_1, at_2).values()[sm5_ids].sum() == 0
    assert clean_hits[sm5_ids].sum() > hits[sm5_ids].sum() > 0  # counted before minute 1
    # TPC sector 11, A side (η > 0): no tracks left after minute 1; the C side untouched.
    tracks = runs.filled_between("TPCQA/h_tpc_track_pos_recvertex_2_5_6", at_1, at_2).values()
    assert tracks[:, 15:, 11].sum() == 0 and tracks[:, :15, 11].sum() > 0
    assert clean_held["TPCQA/h_tpc_track_pos_recvertex_2_5_6"].values()[:, 15:, 11].sum() > 0


def test_a_rate_drop_cuts_the_events_of_every_detector() -> None:
    runs, clock = emulator("low_rate:factor=0.1:at=1")
    clean, clean_clock = emulator("none")
    clock.time_utc = clean_clock.time_utc = T0 + 120.0
    runs.advance()
    clean.advance()
    window = (T0 + 60.0, T0 + 120.0)
    low = runs.filled_between("EMCTRQA_histEvents", *window).values()[0]
    full = clean.filled_between("EMCTRQA_histEvents", *window).values()[0]
    assert low == pytest.approx(0.1 * full, rel=0.2)
    tpc_low = runs.filled_between("TPCQA/h_tpc_event_6", *window).values().sum()
    tpc_full = clean.filled_between("TPCQA/h_tpc_event_6", *window).values().sum()
    assert tpc_low == pytest.approx(0.1 * tpc_full, rel=0.3)
