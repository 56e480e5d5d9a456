"""The QC service on emulated runs with injected faults: every check against what the emulator filled,
aggregation, the hot-channel history, a SIGKILLed service that restarts, and rebuilds giving the same rows.

One module-wide data folder (two short runs, recorded once, checked once in-process) serves every test;
the kill and rebuild tests copy its snapshots or compare with its rows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline.detectors.base import worst_of
from pipeline.emulator import HOT_FASTOR_IDS
from pipeline.emulator.detectors_emc import CELLS_PER_ID_BIN, DEAD_FASTOR_IDS, NOISY_CELL_IDS
from pipeline.emulator.detectors_tpc import LOW_EFFICIENCY_SECTOR
from pipeline.qc.history import channel_history, new_channels
from pipeline.qc.paths import CHECKS_TABLE, QUALITY_TABLE
from pipeline.qc.results import latest_quality, read_results, result_files
from pipeline.qc.schema import CHECKS_SCHEMA, QUALITY_SCHEMA
from pipeline.qc.service import QCService
from pipeline.qc.status_file import read_status
from pipeline.store import SnapshotStore
from tests.pipeline.qc_helpers import minute_of, record_runs

REPO = Path(__file__).resolve().parents[2]
FAULTY_RUN, LOW_RATE_RUN = 300000, 300001
FAULT_MINUTE = 2.0
INJECTED_FASTOR, DEAD_SM, LOST_SECTOR = 1000, 5, 11
FAULTS = (
    f"hot_fastor:id={INJECTED_FASTOR}:at={FAULT_MINUTE}:run={FAULTY_RUN};"
    f"dead_supermodule:sm={DEAD_SM}:at={FAULT_MINUTE}:run={FAULTY_RUN};"
    f"tpc_sector:sector={LOST_SECTOR}:keep=0.2:at={FAULT_MINUTE}:run={FAULTY_RUN};"
    f"low_rate:factor=0.1:at={FAULT_MINUTE}:run={LOW_RATE_RUN}"
)
# Interval checks look back 60 s: a snapshot at minute 1.9 sees only the time before the faults, one at
# 3.0 only the time after them.
MINUTES = {0: (0.5, 1.0, 1.9, 2.0, 3.0, 3.5), 1: (0.9, 1.9, 3.0, 3.5)}
SORT = ["snapshot_id", "histogram", "check", "content"]


@pytest.fixture(scope="module")
def qc_data(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("qc")
    runs = record_runs(SnapshotStore(data_dir), MINUTES, faults=FAULTS, run_length_s=240.0)
    service = QCService(data_dir)
    assert service.check_pending() == sum(len(m) for m in MINUTES.values()) * 3
    checks = read_results(data_dir, CHECKS_TABLE, CHECKS_SCHEMA)
    checks["minute"] = [
        minute_of(runs, r, t) for r, t in zip(checks["run"], checks["snapshot_time_utc"], strict=True)
    ]
    return data_dir, runs, checks


def rows_of(checks: pd.DataFrame, run: int, histogram: str, check: str) -> pd.DataFrame:
    selected = checks[
        (checks["run"] == run) & (checks["histogram"] == histogram) & (checks["check"] == check)
    ]
    assert not selected.empty, (run, histogram, check)
    return selected


def before_and_after(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows whose interval lies wholly before the fault (and had an interval), and wholly after it."""
    before = rows[(rows["minute"] < FAULT_MINUTE) & (rows["quality"] != "Null")]
    after = rows[rows["minute"] >= FAULT_MINUTE + 1.0]
    assert len(before) >= 1 and len(after) >= 2
    return before, after


def ids(row) -> list[int]:
    return [int(i) for i in row["flagged_ids"]]


def test_a_fastor_turning_hot_is_flagged_with_its_id_only_after_it_turned(qc_data) -> None:
    _, _, checks = qc_data
    rows = rows_of(checks, FAULTY_RUN, "EMCTRQA_histFastORL0", "hot_fastors")
    for _, row in rows[rows["minute"] < FAULT_MINUTE].iterrows():
        assert ids(row) == sorted(HOT_FASTOR_IDS)  # the emulator's built-in hot FastORs, nothing else
        assert row["quality"] == "Medium" and "(4 known)" in row["message"]  # known: reported, not news
    for _, row in rows[rows["minute"] >= FAULT_MINUTE + 0.5].iterrows():
        assert ids(row) == sorted({*HOT_FASTOR_IDS, INJECTED_FASTOR})
        assert row["quality"] == "Bad" and row["threshold"] == pytest.approx(1e-2)


def test_the_subsystem_turns_from_known_problems_to_bad_when_the_fault_starts(qc_data) -> None:
    data_dir, runs, _ = qc_data
    quality = read_results(data_dir, QUALITY_TABLE, QUALITY_SCHEMA, run=FAULTY_RUN)
    rows = quality[quality["level"] == "subsystem"]
    minutes = [minute_of(runs, FAULTY_RUN, t) for t in rows["snapshot_time_utc"]]
    verdicts = {
        (s, round(m, 1)): q for s, m, q in zip(rows["subsystem"], minutes, rows["quality"], strict=True)
    }
    for subsystem in ("EMC", "TPC"):
        before = {q for (s, m), q in verdicts.items() if s == subsystem and m < FAULT_MINUTE}
        after = {q for (s, m), q in verdicts.items() if s == subsystem and m >= FAULT_MINUTE + 1}
        assert "Bad" not in before and after == {"Bad"}, (subsystem, before, after)


def test_a_dead_supermodule_is_bad_in_the_checks_table_and_its_group(qc_data) -> None:
    data_dir, _, checks = qc_data
    silent = checks[(checks["run"] == FAULTY_RUN) & (checks["check"] == "silent_supermodule")]
    before, after = before_and_after(silent)
    assert set(before["quality"]) == {"Good"}  # every supermodule, before the fault
    bad = after[after["quality"] == "Bad"]
    assert set(bad["histogram"]) == {f"EMCTRQA_histFastORL{level}_SM{DEAD_SM}" for level in (0, 1)}
    assert len(bad) == 2 * after["snapshot_id"].nunique()  # in every snapshot after it
    quality = read_results(data_dir, QUALITY_TABLE, QUALITY_SCHEMA, subsystem="EMC", run=FAULTY_RUN)
    group = quality[quality["name"] == "FastOR L0 (hits with ADC > 0)"].set_index("snapshot_id")
    for snapshot_id in before["snapshot_id"].unique():
        assert group.loc[snapshot_id, "quality"] == "Good"
    for snapshot_id in after["snapshot_id"].unique():
        assert group.loc[snapshot_id, "quality"] == "Bad"
        assert f"EMCTRQA_histFastORL0_SM{DEAD_SM} silent_supermodule" in group.loc[snapshot_id, "message"]


def test_a_tpc_sector_losing_efficiency_is_flagged_beside_the_known_weak_one(qc_data) -> None:
    _, _, checks = qc_data
    for charge in ("pos", "neg"):
        before, after = before_and_after(
            rows_of(checks, FAULTY_RUN, f"Eta_vs_Phi_{charge}tracks", "sector_efficiency")
        )
        assert [ids(row) for _, row in before.iterrows()] == [[LOW_EFFICIENCY_SECTOR]] * len(before)
        assert set(before["quality"]) == {"Medium"} and set(after["quality"]) == {"Bad"}  # 7 is known
        assert [ids(row) for _, row in after.iterrows()] == [[LOW_EFFICIENCY_SECTOR, LOST_SECTOR]] * len(
            after
        )
    # The other run has only the emulator's permanent weak sector, seen by the HLT's cluster maps too.
    hlt = rows_of(checks, LOW_RATE_RUN, "fHistTPCAallClustersRowPhi", "sector_efficiency")
    assert [ids(row) for _, row in hlt[hlt["quality"] != "Null"].iterrows()] == [[LOW_EFFICIENCY_SECTOR]] * 3


def test_a_dropped_event_rate_turns_the_rate_checks_bad(qc_data) -> None:
    _, _, checks = qc_data
    for histogram in ("EMCTRQA_histEvents", "TPCQA/h_tpc_event_6", "fHistTZERO_ITSSPDVertexZ"):
        before, after = before_and_after(rows_of(checks, LOW_RATE_RUN, histogram, "event_rate"))
        assert set(before["quality"]) == {"Good"} and set(after["quality"]) == {"Bad"}, histogram
    healthy = rows_of(checks, FAULTY_RUN, "EMCTRQA_histEvents", "event_rate")
    assert set(healthy["quality"]) <= {"Good", "Null"}


def test_known_dead_fastors_and_noisy_cells_are_found(qc_data) -> None:
    _, _, checks = qc_data
    dead = rows_of(checks, LOW_RATE_RUN, "EMCTRQA_histFastORL0", "dead_fastors")
    judged = dead[dead["quality"] != "Null"]
    assert len(judged) >= 2
    assert [ids(row) for _, row in judged.iterrows()] == [sorted(DEAD_FASTOR_IDS)] * len(judged)
    assert set(judged["quality"]) == {"Medium"}  # 4 known dead FastORs: a fact of life, not an emergency
    noisy_bins = sorted({cell // CELLS_PER_ID_BIN * CELLS_PER_ID_BIN for cell in NOISY_CELL_IDS})
    high_gain = rows_of(checks, FAULTY_RUN, "hIDvsAmpHG", "hot_cells")
    assert [ids(row) for _, row in high_gain.iterrows()] == [noisy_bins] * len(high_gain)
    low_gain = rows_of(checks, FAULTY_RUN, "hIDvsAmpLG", "hot_cells")
    assert set(low_gain["quality"]) == {"Good"}  # noisy cells fire at low amplitude: high gain only


def test_latest_quality_is_what_a_tile_shows_at_the_end_of_the_run(qc_data) -> None:
    data_dir, _, checks = qc_data
    tiles = latest_quality(data_dir, FAULTY_RUN)
    subsystems = tiles[tiles["level"] == "subsystem"].set_index("subsystem")
    assert sorted(subsystems.index) == ["EMC", "HLT", "TPC"]
    last = checks[checks["run"] == FAULTY_RUN]["snapshot_time_utc"].max()
    assert (subsystems["snapshot_time_utc"] == last).all()
    assert subsystems.loc["EMC", "quality"] == "Bad" and subsystems.loc["TPC", "quality"] == "Bad"
    assert not tiles.duplicated(["subsystem", "level", "name"]).any()


def test_subsystem_quality_is_the_worst_of_its_checks(qc_data) -> None:
    data_dir, _, checks = qc_data
    quality = read_results(data_dir, QUALITY_TABLE, QUALITY_SCHEMA)
    subsystem_rows = quality[quality["level"] == "subsystem"].set_index("snapshot_id")
    assert len(subsystem_rows) == checks["snapshot_id"].nunique()
    for snapshot_id, rows in checks.groupby("snapshot_id"):
        row = subsystem_rows.loc[snapshot_id]
        assert row["quality"] == worst_of(list(rows["quality"])) and row["rule"] == "worst"
        counts = rows["quality"].value_counts()
        assert row["n_bad"] == counts.get("Bad", 0) and row["n_good"] == counts.get("Good", 0)


def test_hot_channel_history_says_when_a_channel_was_flagged_and_whether_it_is_new(qc_data) -> None:
    data_dir, _, checks = qc_data
    history = channel_history(data_dir, "EMC", checks=["hot_fastors"])
    injected = history[history["channel_id"] == INJECTED_FASTOR]
    assert list(injected["run"]) == [FAULTY_RUN] and bool(injected["new"].iloc[0])
    first_flagged = rows_of(checks, FAULTY_RUN, "EMCTRQA_histFastORL0", "hot_fastors")
    first_flagged = first_flagged[first_flagged["flagged_ids"].apply(lambda x: INJECTED_FASTOR in x)]
    run_start = checks[checks["run"] == FAULTY_RUN]["minute"].min()
    assert injected["first_minute"].iloc[0] == pytest.approx(first_flagged["minute"].min() - run_start)
    expected_minutes = sorted(round(m - run_start, 2) for m in first_flagged["minute"].unique())
    assert list(injected["minutes"].iloc[0]) == pytest.approx(expected_minutes)
    assert injected["n_snapshots"].iloc[0] == len(expected_minutes)
    # The built-in hot FastORs were flagged in both runs: new in the first, not in the second.
    for fastor in HOT_FASTOR_IDS:
        rows = history[history["channel_id"] == fastor].set_index("run")
        assert bool(rows.loc[FAULTY_RUN, "new"]) and not bool(rows.loc[LOW_RATE_RUN, "new"])
        assert rows.loc[LOW_RATE_RUN, "n_snapshots"] == len(MINUTES[1])
    assert INJECTED_FASTOR not in set(new_channels(data_dir, "EMC", LOW_RATE_RUN)["channel_id"])


def _qc_command(data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "qc", "--data-dir", str(data_dir), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")


def test_rebuild_from_the_command_line_gives_the_same_rows(qc_data) -> None:
    data_dir, _, _ = qc_data
    before = read_results(data_dir, CHECKS_TABLE, CHECKS_SCHEMA, run=LOW_RATE_RUN)
    for path in result_files(data_dir, CHECKS_TABLE, run=LOW_RATE_RUN):
        path.unlink()  # a rebuild recomputes; it does not depend on what is there
    done = subprocess.run(
        _qc_command(data_dir, "--rebuild", "--run", str(LOW_RATE_RUN)),
        env=_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    total = 3 * len(MINUTES[1])
    assert f"qc rebuild {total}/{total}" in done.stderr  # the progress bar reached the end
    after = read_results(data_dir, CHECKS_TABLE, CHECKS_SCHEMA, run=LOW_RATE_RUN)
    pd.testing.assert_frame_equal(
        before.sort_values(SORT).reset_index(drop=True), after.sort_values(SORT).reset_index(drop=True)
    )


def test_a_killed_service_carries_on_without_gap_or_duplicate(qc_data, tmp_path) -> None:
    data_dir, _, checks = qc_data
    shutil.copytree(data_dir / "snapshots", tmp_path / "snapshots")
    snapshot_ids = set(checks["snapshot_id"])
    first = subprocess.Popen(_qc_command(tmp_path, "--poll", "0.2"), env=_env(), stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(result_files(tmp_path, CHECKS_TABLE)) >= 3, 120, "three snapshots checked")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    done_at_kill = len(result_files(tmp_path, CHECKS_TABLE))
    second = subprocess.Popen(_qc_command(tmp_path, "--poll", "0.2"), env=_env(), stderr=subprocess.DEVNULL)
    try:
        _wait_for(
            lambda: len(result_files(tmp_path, CHECKS_TABLE)) == len(snapshot_ids),
            300,
            "every snapshot checked",
        )
        status = _wait_for(
            lambda: (s := read_status(tmp_path)) and s["pid"] == second.pid and s["snapshots_checked"] and s,
            60,
            "the restarted service's status",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert second.returncode == 0
    # Carried on from what was stored: the restarted service checked only what the first had not.
    assert status["snapshots_checked"] == len(snapshot_ids) - done_at_kill
    restarted = read_results(tmp_path, CHECKS_TABLE, CHECKS_SCHEMA)
    assert set(restarted["snapshot_id"]) == snapshot_ids  # no gap
    assert not restarted.duplicated(SORT).any()  # no duplicate
    expected = checks.drop(columns="minute")
    pd.testing.assert_frame_equal(
        restarted.sort_values(SORT).reset_index(drop=True), expected.sort_values(SORT).reset_index(drop=True)
    )
