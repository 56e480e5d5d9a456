"""The one atomic write (`pipeline.atomic_files`) and the one start-up cleanup (`pipeline.temp_cleanup`):
no reader of the data tree sees a file being written, and what killed writers leave is removed."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline import atomic_files
from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.paths import ALARMS_TABLE, CHECKS_TABLE, qc_dir, table_dir
from pipeline.qc.results import write_json_atomically
from pipeline.receiver import Receiver
from pipeline.status import ReceiverStatus, write_status
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.temp_cleanup import remove_stale_temp_files
from pipeline.wire.tmessage import STREAMER_FILE_SUFFIX, save_streamer_block
from tests.pipeline.test_store import th1, th2

WHEN = datetime(2025, 6, 1, 12, tzinfo=UTC)


def every_file(folder: Path) -> list[str]:
    return sorted(str(path) for path in folder.rglob("*") if path.is_file())


def duckdb_glob(folder: Path) -> list[str]:
    return [row[0] for row in duckdb.sql(f"select file from glob('{folder}/**/*') order by file").fetchall()]


def parquet_rows(folder: Path) -> int:
    return duckdb.sql(f"select count(*) from read_parquet('{folder}/**/*.parquet')").fetchall()[0][0]


def pause_before_naming(monkeypatch, check) -> list[bool]:
    """Run `check()` when a write is complete but not yet given its final name."""
    calls = []
    real_link = atomic_files._Draft.link_to

    def checked(draft, path):
        calls.append(check())
        return real_link(draft, path)

    monkeypatch.setattr(atomic_files._Draft, "link_to", checked)
    return calls


def test_a_snapshot_being_written_is_invisible_to_every_reader(tmp_path, monkeypatch) -> None:
    store = SnapshotStore(tmp_path)
    first = store.write_snapshot(SnapshotMeta(300000, "EMC", WHEN), [th1(), th2()])
    committed = every_file(tmp_path)
    assert len(committed) == 1 and duckdb_glob(tmp_path) == committed

    def nothing_new_is_seen() -> bool:
        assert every_file(tmp_path) == committed  # not even a hidden file or folder
        assert duckdb_glob(tmp_path) == committed  # DuckDB's ** lists hidden files: none is there
        assert parquet_rows(tmp_path) == 2
        assert store.snapshots(300000, "EMC")["snapshot_id"].tolist() == [first]
        return True

    calls = pause_before_naming(monkeypatch, nothing_new_is_seen)
    second = store.write_snapshot(SnapshotMeta(300000, "EMC", WHEN.replace(minute=1)), [th1()])
    assert calls == [True]
    assert store.snapshots(300000, "EMC")["snapshot_id"].tolist() == [first, second]
    assert parquet_rows(tmp_path) == 3 and len(duckdb_glob(tmp_path)) == 2


def test_without_unnamed_files_parquet_readers_still_see_nothing_partial(tmp_path, monkeypatch) -> None:
    """On a file system without O_TMPFILE (e.g. NFS) the write goes to a hidden temp name first."""
    monkeypatch.setattr(atomic_files, "_OWN_DESCRIPTORS", str(tmp_path / "no-proc"))
    store = SnapshotStore(tmp_path / "data")
    first = store.write_snapshot(SnapshotMeta(300000, "EMC", WHEN), [th1()])
    run_dir = tmp_path / "data/snapshots/subsystem=EMC/run=300000"

    def only_a_hidden_temp_name() -> bool:
        assert [path.name[0] for path in run_dir.iterdir()].count(".") == 1
        assert parquet_rows(tmp_path / "data") == 1
        assert store.snapshots(300000, "EMC")["snapshot_id"].tolist() == [first]
        return True

    calls = pause_before_naming(monkeypatch, only_a_hidden_temp_name)
    store.write_snapshot(SnapshotMeta(300000, "EMC", WHEN.replace(minute=1)), [th1()])
    assert calls == [True] and store.count_snapshots() == 2
    assert not [path for path in run_dir.iterdir() if path.name.startswith(".")]  # temp name gone


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named-temp"])
def test_write_file_replaces_or_refuses_and_sets_the_mode(tmp_path, monkeypatch, unnamed) -> None:
    if not unnamed:
        monkeypatch.setattr(atomic_files, "_OWN_DESCRIPTORS", str(tmp_path / "no-proc"))
    path = tmp_path / "state.json"
    assert atomic_files.write_file(path, "old", mode=0o600)
    assert atomic_files.write_file(path, b"new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert atomic_files.write_file(path, "other", replace=False) is False
    assert path.read_text() == "new"
    assert atomic_files.write_file(tmp_path / "key", "secret", replace=False, mode=0o600)
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "no-proc") == ["key", "state.json"]


def test_a_failed_write_leaves_nothing_and_the_old_file_intact(tmp_path) -> None:
    path = tmp_path / "table.parquet"
    atomic_files.write_file(path, b"complete")

    def fails_half_way(target: str) -> None:
        Path(target).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_files.write_file(path, fails_half_way)
    assert path.read_bytes() == b"complete" and [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    return int(child.stdout)


def test_every_writers_folder_is_cleaned_of_dead_writers_temp_files(tmp_path) -> None:
    data, users = tmp_path / "data", tmp_path / "etc"
    store = SnapshotStore(data)
    store.write_snapshot(SnapshotMeta(300000, "EMC", WHEN), [th1()])
    AlarmBook(data)  # makes DIR/qc/alarms
    folders = [
        data / "snapshots/subsystem=EMC/run=300000",  # snapshots
        data / "replay/subsystem=EMC/run=300001",  # replay snapshots
        data / "status",  # receiver status
        data,  # heartbeats, the session secret
        data / "streamers",  # schema blocks
        qc_dir(data),  # QC status, references, thresholds
        table_dir(data, ALARMS_TABLE),  # alarms book, mutes, progress
        table_dir(data, CHECKS_TABLE) / "subsystem=EMC/run=300000",  # QC results
        users,  # users file
    ]
    gone, alive = dead_pid(), os.getppid()  # pytest's parent runs
    dead_files, live_files = [], []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        dead_files.append(folder / f".file.json.{gone}.0a1b2c.tmp")
        live_files.append(folder / f".file.json.{alive}.0a1b2c.tmp")
    for path in dead_files + live_files:
        path.write_bytes(b"half a file")

    assert remove_stale_temp_files(data, [users]) == len(folders)
    assert [path.exists() for path in dead_files] == [False] * len(folders)
    assert [path.exists() for path in live_files] == [True] * len(folders)
    assert store.count_snapshots() == 1


def test_a_receiver_cleans_its_folders_at_start(tmp_path) -> None:
    gone = dead_pid()
    left = [
        tmp_path / f"status/.EMC.json.{gone}.ff.tmp",
        tmp_path / f"streamers/.abc.rootstri.bin.{gone}.ff.tmp",
        tmp_path / f".heartbeat.EMCReceiver.{gone}.ff.tmp",
        tmp_path / f"snapshots/subsystem=EMC/run=1/.EMC_1_x.parquet.{gone}.ff.tmp",
    ]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{")
    receiver = Receiver("tcp://127.0.0.1:9", "EMC", tmp_path)
    receiver.close()
    assert [path.exists() for path in left] == [False] * len(left)


def test_status_and_json_state_files_are_written_through_the_one_helper(tmp_path, monkeypatch) -> None:
    """No second copy of "temp + rename": the status, QC state and streamer writers all go through it."""
    written = []
    real = atomic_files.write_file

    def recorded(path, *args, **kwargs):
        written.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(atomic_files, "write_file", recorded)
    write_status(tmp_path, ReceiverStatus("EMC"))
    write_json_atomically(tmp_path / "qc/mutes.json", {"a": 1})
    save_streamer_block(tmp_path / "streamers", b"block")
    assert [path.name for path in written] == [
        "EMC.json",
        "heartbeat.EMCReceiver",
        "mutes.json",
        f"{hashlib.sha1(b'block').hexdigest()}{STREAMER_FILE_SUFFIX}",
    ]
    assert json.loads((tmp_path / "status/EMC.json").read_text())["subsystem"] == "EMC"


def test_a_temp_name_tells_the_final_name_it_stands_for():
    final_name_of_temp = atomic_files.final_name_of_temp
    assert final_name_of_temp(".EMC_1_x.parquet.123.0af3.tmp") == "EMC_1_x.parquet"
    assert final_name_of_temp(".status.json.9.ff.tmp") == "status.json"
    assert final_name_of_temp("EMC_1_x.parquet") is None
    assert final_name_of_temp(".old-style.tmp") is None
