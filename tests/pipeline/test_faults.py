"""Fault tests (short CI versions; the soaks: `python -m benchmarks.faults crash|outages`).

Real receiver and emulator processes are killed and restarted; a merger answers late, with garbage,
or not at all; the data folder fills up or turns read-only. Every time: nothing committed is damaged,
nothing partial is visible, the receiver recovers by itself and says what went wrong.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.faults import (
    ask_merger,
    crash_soak,
    digest,
    outage_soak,
    snapshot_files,
    start_emulator,
    stop,
    wait_for,
)
from dashboard.app import create_app
from pipeline.emulator.merger import MergerEmulator
from pipeline.emulator.runs import EmulatorConfig
from pipeline.histogram import Histogram
from pipeline.receiver import Outcome, Receiver
from pipeline.settings import Settings
from pipeline.status import read_all_status
from pipeline.store import SnapshotStore
from pipeline.wire.messages import build_reply, decode_reply
from pipeline.wire.tmessage import StreamerContext, encode_tmessage
from tests.pipeline.test_receiver_bad_input import INFO, ScriptedMerger, histogram
from tests.ports import free_tcp_port

pytestmark = pytest.mark.network


def test_receiver_killed_mid_ingest_keeps_every_committed_snapshot_intact(tmp_path):
    report = crash_soak(kills=2, data_dir=tmp_path / "data", seed=7, log=lambda _: None)
    assert report.problems == []
    assert report.kills == 2 and report.snapshots >= 2 and report.reader_reads > 0
    # Counters continue across restarts: every stored snapshot counted, bar one per kill that landed
    # between publishing a file and writing the status.
    stored, files = report.counters
    assert files - report.kills <= stored <= files


def test_merger_outages_recover_without_restarting_the_receiver(tmp_path):
    report = outage_soak(cycles=2, data_dir=tmp_path / "data", down_s=1.5, seed=3, log=lambda _: None)
    assert report.problems == []
    assert report.cycles == 2 and len(report.recovery_s) == 2
    assert not report.receiver_pid_changed
    assert report.timeouts >= 2
    assert report.runs_seen == [400000, 400001]  # the second return was a merger on a new run


def test_slow_and_garbage_replies_cost_nothing_and_store_no_duplicate(tmp_path):
    timeout_s = 0.5

    def slow(frames: list[bytes]) -> list[bytes]:
        time.sleep(timeout_s * 1.2)  # answered after the receiver gave up: must never be stored
        return build_reply(INFO, [("late", encode_tmessage(histogram("late")))])

    def good(scale: float) -> list[bytes]:
        return build_reply(INFO, [("h", encode_tmessage(histogram("h", scale)))])

    script = [slow, [b"garbage", b"\x00" * 3], good(1.0), slow, slow, good(2.0)]
    with ScriptedMerger(script) as merger:
        receiver = Receiver(merger.endpoint, "EMC", tmp_path, timeout_s=timeout_s)
        try:
            outcomes = []
            for _ in script:
                outcomes.append(receiver.request_once())
                if outcomes[-1] is Outcome.TIMEOUT:
                    time.sleep(receiver.backoff_s)  # as `Receiver.run` waits
            backoff_after_two = receiver.backoff_s
        finally:
            receiver.close()
    assert outcomes == [
        Outcome.TIMEOUT,
        Outcome.SKIPPED,
        Outcome.STORED,
        Outcome.TIMEOUT,
        Outcome.TIMEOUT,
        Outcome.STORED,
    ]
    assert backoff_after_two == 0  # reset by the reply that followed
    store = SnapshotStore(tmp_path)
    stored = [store.read_snapshot(key.snapshot_id)[1] for key in store.snapshot_keys(500, "EMC")]
    assert [sorted(snapshot) for snapshot in stored] == [["h"], ["h"]]  # no late reply stored
    np.testing.assert_array_equal(stored[1]["h"].values_flow, 2 * stored[0]["h"].values_flow)
    [status] = read_all_status(tmp_path)
    assert (status.timeouts, status.socket_recreations, status.snapshots_stored) == (3, 3, 2)


def test_emulator_restarts_its_merger_on_sigusr1(tmp_path):
    port = free_tcp_port()
    emulator = start_emulator(port, tmp_path / "emulator.log")

    def events() -> float | None:
        frames = ask_merger(port, select="^fHist", timeout_s=5.0)
        reply = decode_reply(frames, StreamerContext()) if frames else None
        return sum(h.entries for h in reply.histograms) if reply and reply.histograms else None

    try:
        assert wait_for(lambda: (entries := events()) and entries > 0, 60), "the emulator never filled"
        # Fills go on after the restart at the same pace: let the run grow well past what a few
        # seconds of probing (on a loaded machine) can refill.
        time.sleep(5.0)
        before = events()
        emulator.send_signal(signal.SIGUSR1)
        after = wait_for(lambda: (entries := events()) is not None and entries < before and entries + 1, 10)
        assert after, "entries did not go down after SIGUSR1"
        assert emulator.poll() is None  # restarted its merger, not itself
    finally:
        stop(emulator)


# ---- disk full and read-only data folder --------------------------------------------------------


@pytest.fixture
def small_data_folder(tmp_path):
    """A 16 MB tmpfs as the data folder (as root); skipped where mounting is not permitted."""
    folder = tmp_path / "data"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) for a small tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_up(folder: Path, leave_bytes: int) -> Path:
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave_bytes
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free))
    return filler


def test_a_full_or_read_only_data_folder_is_reported_and_ingest_resumes(small_data_folder, caplog):
    config = EmulatorConfig(step_s=0.1, run_length_s=3600, first_run=600000)
    with MergerEmulator("tcp://127.0.0.1:*", ("HLT",), config) as emulator:
        receiver = Receiver(emulator.endpoint, "HLT", small_data_folder, timeout_s=30.0)
        try:
            # A reply that comes before the emulator's first fill holds nothing: ask until two are stored.
            stored, deadline = 0, time.monotonic() + 30
            while stored < 2 and time.monotonic() < deadline:
                stored += receiver.request_once() is Outcome.STORED
                time.sleep(0.2)
            committed = {path: digest(path) for path in snapshot_files(small_data_folder)}
            assert len(committed) == stored == 2
            asked = receiver.status.requests

            # Full: a snapshot (70-90 kB here) no longer fits, the small status file still does.
            filler = fill_up(small_data_folder, leave_bytes=24 * 1024)
            caplog.set_level(logging.ERROR, logger="pipeline.receiver")
            assert [receiver.request_once() for _ in range(2)] == [Outcome.FAILED] * 2  # keeps trying
            [status] = read_all_status(small_data_folder)
            assert "No space left on device" in status.last_error and status.last_error.startswith(
                "store failed"
            )
            assert any("No space left on device" in record.getMessage() for record in caplog.records)
            assert not list(small_data_folder.rglob(".*.parquet.*.tmp"))  # the failed write cleaned up

            # Read-only (e.g. remounted after errors): the same, and the status write fails quietly.
            subprocess.run(["mount", "-o", "remount,ro", str(small_data_folder)], check=True)
            assert receiver.request_once() is Outcome.FAILED
            assert "Read-only file system" in receiver.status.last_error
            assert receiver.status.requests == asked + 3  # still running, still counting

            # Space and write access return: ingest resumes by itself, nothing committed was touched.
            subprocess.run(["mount", "-o", "remount,rw", str(small_data_folder)], check=True)
            filler.unlink()
            assert receiver.request_once() is Outcome.STORED
        finally:
            receiver.close()
    assert {path: digest(path) for path in committed} == committed
    store = SnapshotStore(small_data_folder)
    assert store.count_snapshots() == 3
    for key in store.snapshot_keys(600000, "HLT"):
        assert len(store.read_snapshot(key.snapshot_id)[1]) > 10
    [status] = read_all_status(small_data_folder)
    assert (status.snapshots_stored, status.requests) == (3, asked + 4)


def test_a_completely_full_disk_still_reaches_the_status_page(small_data_folder, tmp_path, caplog):
    """No byte left at all: the status file is rewritten in place, so /api/status and the status reader
    show the error while the disk is full, and it is cleared once space returns."""
    settings = Settings(
        data_dir=small_data_folder, cache_dir=tmp_path / "cache", users_file=tmp_path / "no-users.toml"
    )
    client = create_app(settings).server.test_client()  # local mode: loopback, no users file
    config = EmulatorConfig(step_s=0.1, run_length_s=3600, first_run=600000)
    with MergerEmulator("tcp://127.0.0.1:*", ("HLT",), config) as emulator:
        receiver = Receiver(emulator.endpoint, "HLT", small_data_folder, timeout_s=30.0)
        try:
            deadline = time.monotonic() + 30
            while receiver.request_once() is not Outcome.STORED and time.monotonic() < deadline:
                time.sleep(0.2)
            assert receiver.status.snapshots_stored == 1
            status_file = small_data_folder / "status/HLT.json"
            inode = status_file.stat().st_ino

            filler = fill_up(small_data_folder, leave_bytes=0)
            with pytest.raises(OSError) as no_room:  # not even one more page fits
                (small_data_folder / "probe").write_bytes(b"x" * 4096)
            assert no_room.value.errno == errno.ENOSPC
            caplog.set_level(logging.ERROR, logger="pipeline.receiver")
            assert [receiver.request_once() for _ in range(2)] == [Outcome.FAILED] * 2
            assert status_file.stat().st_ino == inode  # rewritten in place: no new file could be made
            [status] = read_all_status(small_data_folder)
            assert (
                status.last_error.startswith("store failed")
                and "No space left on device" in status.last_error
            )
            assert (status.requests, status.snapshots_stored) == (receiver.status.requests, 1)
            page = client.get("/api/status")
            assert page.status_code == 200 and "No space left on device" in page.get_data(as_text=True)
            assert any("No space left on device" in record.getMessage() for record in caplog.records)

            filler.unlink()
            assert receiver.request_once() is Outcome.STORED
        finally:
            receiver.close()
    [status] = read_all_status(small_data_folder)
    assert status.snapshots_stored == 2 and status.last_error_cleared_utc is not None
    assert SnapshotStore(small_data_folder).count_snapshots() == 2


def test_enospc_is_what_a_full_tmpfs_gives(small_data_folder):
    """The premise of the test above: writing past the mount's size fails with ENOSPC, not silently."""
    fill_up(small_data_folder, leave_bytes=0)
    with pytest.raises(OSError) as raised:
        (small_data_folder / "more").write_bytes(b"x" * 65536)
    assert raised.value.errno == errno.ENOSPC


def test_a_frame_over_the_size_limit_is_dropped_before_it_is_held(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.receiver.MAX_FRAME_BYTES", 20_000)
    big = Histogram("big", "TH1D", "", (np.linspace(0, 1, 5001),), np.ones(5002), np.ones(5002))  # 80 kB
    with ScriptedMerger([build_reply(INFO, [("big", encode_tmessage(big))]), good_reply()]) as merger:
        receiver = Receiver(merger.endpoint, "EMC", tmp_path, timeout_s=1.0)
        try:
            assert receiver.request_once() is Outcome.TIMEOUT  # ZMQ dropped the connection
            assert receiver.request_once() is Outcome.STORED
        finally:
            receiver.close()
    assert SnapshotStore(tmp_path).count_snapshots() == 1


def good_reply() -> list[bytes]:
    return build_reply(INFO, [("h", encode_tmessage(histogram("h")))])


def test_a_restarted_receiver_continues_the_counters(tmp_path):
    with ScriptedMerger([good_reply()]) as merger:
        for _ in range(2):
            receiver = Receiver(merger.endpoint, "EMC", tmp_path, timeout_s=5.0)
            try:
                assert receiver.request_once() is Outcome.STORED
            finally:
                receiver.close()
    [status] = read_all_status(tmp_path)
    assert (status.requests, status.replies, status.snapshots_stored, status.histograms_stored) == (
        2,
        2,
        2,
        2,
    )
    assert status.pid == os.getpid()


def test_an_unexpected_failure_costs_one_request_not_the_loop(tmp_path, monkeypatch):
    with ScriptedMerger([good_reply()]) as merger:
        receiver = Receiver(merger.endpoint, "EMC", tmp_path, timeout_s=5.0, period_s=0.01)
        real_handle = receiver._handle_reply
        calls = []

        def fails_once(reply, schema_requested, **th1_version):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("a bug met by odd data")
            return real_handle(reply, schema_requested, **th1_version)

        monkeypatch.setattr(receiver, "_handle_reply", fails_once)
        receiver.run(threading.Event(), max_requests=3)
    [status] = read_all_status(tmp_path)
    assert (status.requests, status.snapshots_stored) == (3, 2)
    assert SnapshotStore(tmp_path).count_snapshots() == 2
