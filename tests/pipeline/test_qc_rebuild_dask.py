"""QC rebuild of several runs on Dask: the same tables as the single-process rebuild, checks, quality,
trends and alarms (which cross runs: a new run clears the last one's open alarms)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.engine import cluster
from pipeline.qc.alarm_book import ALARMS_SCHEMA, AlarmBook
from pipeline.qc.paths import CHECKS_TABLE, QUALITY_TABLE, TRENDS_TABLE
from pipeline.qc.rebuild import rebuild_qc
from pipeline.qc.results import read_results
from pipeline.qc.schema import CHECKS_SCHEMA, QUALITY_SCHEMA
from pipeline.qc.trend_store import TRENDS_SCHEMA
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from tests.pipeline.qc_helpers import record_runs

FIRST_RUN = 300000
# A FastOR turns hot in the first and in the third run: the alarm fires in each, and the first one
# is cleared by the second run ("run ended"), which only a pass in time order across runs gets right.
FAULTS = f"hot_fastor:id=1000:at=1.0:run={FIRST_RUN};hot_fastor:id=1500:at=1.0:run={FIRST_RUN + 2}"
MINUTES = {0: (0.5, 1.5, 2.5), 1: (0.5, 1.5), 2: (0.5, 1.5, 2.5)}
N_SNAPSHOTS = 3 * sum(len(m) for m in MINUTES.values())
TABLES = {CHECKS_TABLE: CHECKS_SCHEMA, QUALITY_TABLE: QUALITY_SCHEMA, TRENDS_TABLE: TRENDS_SCHEMA}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("recorded")
    record_runs(SnapshotStore(data_dir), MINUTES, faults=FAULTS, run_length_s=240.0)
    return data_dir


def copy_of(recorded: Path, target: Path) -> Path:
    shutil.copytree(recorded / "snapshots", target / "snapshots")
    return target


def qc_tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    tables = {}
    for name, schema in TABLES.items():
        frame = read_results(data_dir, name, schema)
        keys = [
            c
            for c in ("snapshot_id", "level", "name", "histogram", "check", "quantity", "content")
            if c in frame
        ]
        tables[name] = frame.sort_values(keys).reset_index(drop=True)
    alarms = pq.read_table(AlarmBook(data_dir).table_path, schema=ALARMS_SCHEMA).to_pandas()
    tables["alarms"] = alarms.sort_values("alarm_id").reset_index(drop=True)
    return tables


def test_a_rebuild_of_several_runs_on_two_dask_workers_writes_the_same_tables(recorded, tmp_path):
    settings = Settings()
    single = copy_of(recorded, tmp_path / "single")
    summary_single = rebuild_qc(single, settings, client=None, show_progress=False)
    on_dask = copy_of(recorded, tmp_path / "dask")
    with cluster(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        summary_dask = rebuild_qc(on_dask, settings, client=client, show_progress=False)

    assert summary_single.snapshots == summary_dask.snapshots == N_SNAPSHOTS
    assert summary_single.failed == summary_dask.failed == 0
    assert summary_dask.runs == 3 and summary_dask.alarm_snapshots == N_SNAPSHOTS  # pass 2 saw them all
    assert summary_dask.cpu_s > 0  # pass 1 ran on the workers
    want, got = qc_tables(single), qc_tables(on_dask)
    assert len(want[CHECKS_TABLE]["snapshot_id"].unique()) == N_SNAPSHOTS
    assert set(want[TRENDS_TABLE]["run"]) == {FIRST_RUN, FIRST_RUN + 1, FIRST_RUN + 2}
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)
    hot = want["alarms"][want["alarms"]["alarm"] == "new_hot_fastor"]
    states = sorted(zip(hot["run"], hot["histogram"], hot["state"], strict=True))
    assert states == [  # the FastOR maps of L0 and L1; the first run's alarms ended with their run
        (FIRST_RUN, "EMCTRQA_histFastORL0", "cleared"),
        (FIRST_RUN, "EMCTRQA_histFastORL1", "cleared"),
        (FIRST_RUN + 2, "EMCTRQA_histFastORL0", "active"),
        (FIRST_RUN + 2, "EMCTRQA_histFastORL1", "active"),
    ]
    pd.testing.assert_frame_equal(got["alarms"], want["alarms"], obj="alarms")
