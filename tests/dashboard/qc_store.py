"""A small store with real QC results for the QC pages' tests: two emulated EMC runs (a FastOR turns
hot mid-way through the second, `HOT_FASTOR_ID`), checked, trended and alarmed by the QC service itself.

Built once per test session (it takes seconds), then copied for each test that changes it (acknowledge,
mute, thresholds, references), so tests never see each other's changes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.qc.service import QCService
from pipeline.qc.steps import trend_and_alarm_steps
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from tests.pipeline.qc_helpers import record_runs

FIRST_RUN, FAULT_RUN = 300000, 300001
HOT_FASTOR_ID = 1000
MINUTES = (1, 2, 3, 4)
FAULT_AT_MINUTE = 2.5
FASTOR_L0 = "EMCTRQA_histFastORL0"


def build_qc_store(data_dir: Path) -> Path:
    """Record the runs and run the QC service over them (no delivery)."""
    return record_and_check(data_dir, {0: MINUTES, 1: MINUTES})


def record_and_check(data_dir: Path, minutes_per_run: dict[int, tuple[float, ...]]) -> Path:
    """Record snapshots of run index i (run FIRST_RUN + i) at its minutes, as the emulator fills them
    (the same fault), and let the QC service check, trend and alarm on them: what a live run adds."""
    record_runs(
        SnapshotStore(data_dir),
        minutes_per_run,
        faults=f"hot_fastor:id={HOT_FASTOR_ID}:at={FAULT_AT_MINUTE}:run={FAULT_RUN}",
        subsystems=("EMC",),
    )
    consumers, _ = trend_and_alarm_steps(data_dir, Settings(data_dir=data_dir), deliver=False)
    QCService(data_dir, consumers=consumers).check_pending()
    return data_dir


@pytest.fixture(scope="session")
def qc_store_template(tmp_path_factory) -> Path:
    return build_qc_store(tmp_path_factory.mktemp("qc-store") / "data")


@pytest.fixture
def qc_data_dir(qc_store_template, tmp_path) -> Path:
    """A private copy of the QC store for one test."""
    target = tmp_path / "data"
    shutil.copytree(qc_store_template, target)
    return target
