"""Receiver against the merger emulator over tcp://127.0.0.1: the lazy-pirate loop end to end."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import uproot

from pipeline.emulator.merger import MergerEmulator
from pipeline.emulator.runs import EmulatorConfig
from pipeline.liveness import ReceiverState, receiver_liveness
from pipeline.processing.runs import merger_reports, reported_runs
from pipeline.receiver import Outcome, Receiver
from pipeline.status import read_all_status
from pipeline.store import SnapshotStore
from tests.ports import free_tcp_port

pytestmark = pytest.mark.network

T0 = 1_800_000_000.0
CONFIG = EmulatorConfig(step_s=1.0, run_length_s=10.0, run_gap_s=5.0, first_run=1000, start_time_utc=T0)


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return FakeClock(T0 + 3.5)  # three steps into run 1000


@pytest.fixture
def emulator(clock):
    with MergerEmulator("tcp://127.0.0.1:*", ("EMC", "TPC", "HLT"), CONFIG, now=clock) as server:
        yield server


def make_receiver(endpoint, tmp_path, **kwargs) -> Receiver:
    kwargs.setdefault("select", "^EMC")
    # A generous timeout: a first (schema) reply can take seconds on a loaded machine.
    return Receiver(endpoint, "EMC", tmp_path, timeout_s=15.0, period_s=0.01, **kwargs)


def test_select_stores_one_snapshot_with_the_emulators_run(emulator, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path)
    assert receiver.request_once() is Outcome.STORED
    receiver.close()
    store = SnapshotStore(tmp_path)
    runs = store.runs()
    assert runs["run"].tolist() == [1000] and runs["subsystem"].tolist() == ["EMC"]
    names = store.histogram_names(store.latest_snapshot_id(1000, "EMC"))
    assert names and all(name.startswith("EMC") for name in names)
    assert names == sorted(n for n in emulator.runs.names() if n.startswith("EMC"))
    events = store.read_histogram(store.latest_snapshot_id(1000, "EMC"), "EMCTRQA_histEvents")
    truth = emulator.runs.snapshot(["EMCTRQA_histEvents"])["EMCTRQA_histEvents"]
    np.testing.assert_array_equal(events.values_flow, truth.values_flow)


def test_schema_is_asked_first_then_only_after_failures(emulator, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path)
    receiver.request_once()
    receiver.request_once()
    receiver.close()
    assert emulator.counters.schema_replies == 1
    assert list((tmp_path / "streamers").glob("*.rootstri.bin")), "schema block persisted on disk"


def test_reset_mode_snapshots_hold_only_what_arrived_since_the_last_reply(emulator, clock, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path, reset=True)
    receiver.request_once()
    first_time = clock.t
    clock.t += 4.0  # four more steps
    receiver.request_once()
    receiver.close()
    store = SnapshotStore(tmp_path)
    second = store.snapshots(1000, "EMC")["snapshot_id"].iloc[-1]
    got = store.read_histogram(second, "EMCTRQA_histEvents")
    truth = emulator.runs.filled_between("EMCTRQA_histEvents", first_time, clock.t)
    np.testing.assert_array_equal(got.values_flow, truth.values_flow)
    assert emulator.counters.resets == 2
    # The store says how the data were taken, so processing sums them without being told.
    assert [store.snapshot_meta(i).merger_reset for i in store.snapshots(1000, "EMC")["snapshot_id"]] == [
        True,
        True,
    ]


def test_a_receiver_without_reset_stores_cumulative_snapshots(emulator, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path)
    receiver.request_once()
    receiver.close()
    store = SnapshotStore(tmp_path)
    assert store.snapshot_meta(store.latest_snapshot_id(1000, "EMC")).merger_reset is False
    assert emulator.counters.resets == 0


def test_run_zero_between_runs_is_not_stored(emulator, clock, tmp_path):
    clock.t = T0 + 12.0  # in the gap after run 1000
    receiver = make_receiver(emulator.endpoint, tmp_path)
    assert receiver.request_once() is Outcome.SKIPPED
    receiver.close()
    assert SnapshotStore(tmp_path).count_snapshots() == 0
    [status] = read_all_status(tmp_path)
    assert status.skipped_replies == 1 and status.snapshots_stored == 0


def test_run_change_starts_a_new_run_in_the_store(emulator, clock, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path)
    receiver.request_once()
    clock.t = T0 + 15.0 + 2.5  # next cycle: run 1001
    receiver.request_once()
    receiver.close()
    assert SnapshotStore(tmp_path).runs()["run"].tolist() == [1001, 1000]


def test_timeout_recreates_the_socket_and_recovers_when_the_merger_returns(clock, tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    receiver = Receiver(endpoint, "EMC", tmp_path, select="^EMC", timeout_s=0.3)
    assert receiver.request_once() is Outcome.TIMEOUT  # nobody is listening yet
    assert receiver.request_once() is Outcome.TIMEOUT
    assert receiver.status.timeouts == 2 and receiver.status.socket_recreations == 2
    assert receiver.backoff_s > 0  # a dead merger is not hammered
    with MergerEmulator(endpoint, ("EMC",), CONFIG, now=clock):
        receiver.timeout_s = 10.0  # a live merger's first (schema) reply may take a while on a busy machine
        assert receiver.request_once() is Outcome.STORED
    # Stopped again: the next request times out, and a restarted merger is reached once more.
    receiver.timeout_s = 0.3
    assert receiver.request_once() is Outcome.TIMEOUT
    with MergerEmulator(endpoint, ("EMC",), CONFIG, now=clock):
        receiver.timeout_s = 10.0
        assert receiver.request_once() is Outcome.STORED
    receiver.close()
    [status] = read_all_status(tmp_path)
    assert (status.timeouts, status.snapshots_stored, status.requests) == (3, 2, 5)
    assert status.heartbeat_utc > 0 and (tmp_path / "heartbeat.EMCReceiver").read_text().strip().isdigit()


def test_undecodable_objects_are_rejected_counted_and_trigger_a_schema_request(fixtures_dir, tmp_path):
    # A Run-2 file replayed without its streamers: TH1F v2 cannot be decoded, so nothing is stored.
    source = fixtures_dir / "run2_root608_th1f.root"
    with MergerEmulator.from_root_file(source, run_number=42, schema_from_file=False) as server:
        receiver = Receiver(server.endpoint, "EMC", tmp_path, timeout_s=2.0)
        assert receiver.request_once() is Outcome.SKIPPED
        assert receiver.status.rejected_objects == 1
        assert "Unknown_TH1F_v2" in receiver.status.last_error
        receiver.request_once()
        receiver.close()
        assert server.counters.schema_replies == 2  # asked again after the failure
    assert SnapshotStore(tmp_path).count_snapshots() == 0


def test_run2_replay_with_schema_decodes_exactly(fixtures_dir, tmp_path):
    source = fixtures_dir / "run2_root608_th1f.root"
    with MergerEmulator.from_root_file(source, run_number=42) as server:
        receiver = Receiver(server.endpoint, "EMC", tmp_path, timeout_s=2.0)
        assert receiver.request_once() is Outcome.STORED
        receiver.close()
    store = SnapshotStore(tmp_path)
    histogram = store.read_histogram(store.latest_snapshot_id(42, "EMC"), "test")
    assert histogram.class_name == "TH1F" and histogram.title == "testHist"
    assert histogram.values_flow.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=timeout
    )


def test_cli_once_exits_zero_only_when_a_snapshot_was_stored(emulator, tmp_path):
    common = ["receiver", "--subsystem", "TPC", "--data-dir", str(tmp_path), "--select", "^TPCQA/", "--once"]
    stored = run_cli(*common, "--endpoint", emulator.endpoint)
    assert stored.returncode == 0, stored.stderr
    assert SnapshotStore(tmp_path).count_snapshots("TPC") == 1
    nobody = run_cli(*common, "--endpoint", f"tcp://127.0.0.1:{free_tcp_port()}", "--timeout", "0.3")
    assert nobody.returncode == 1
    assert "no reply" in nobody.stderr


def test_cli_rejects_bad_arguments(tmp_path):
    result = run_cli("receiver", "--endpoint", "tcp://127.0.0.1:1", "--subsystem", "EMC", "--period", "-1")
    assert result.returncode == 2 and "--period" in result.stderr


def test_cli_export_writes_the_newest_snapshot(emulator, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path)
    receiver.request_once()
    receiver.close()
    out = tmp_path / "out.root"
    result = run_cli(
        "export", "--data-dir", str(tmp_path), "--run", "1000", "--subsystem", "EMC", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    with uproot.open(out) as root_file:
        events = root_file["EMCTRQA_histEvents"].values(flow=True)
    truth = emulator.runs.snapshot(["EMCTRQA_histEvents"])["EMCTRQA_histEvents"]
    np.testing.assert_array_equal(events, truth.values_flow)
    missing = run_cli("export", "--data-dir", str(tmp_path), "--run", "5", "--subsystem", "EMC")
    assert missing.returncode == 1


def test_last_run_follows_every_reply_so_a_finished_run_is_not_ongoing(emulator, clock, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path)
    assert receiver.request_once() is Outcome.STORED
    assert read_all_status(tmp_path)[0].last_run == 1000
    assert reported_runs(merger_reports(tmp_path)) == {1000}
    clock.t = T0 + 12.0  # run 1000 ended: the merger answers run=0
    assert receiver.request_once() is Outcome.SKIPPED
    receiver.close()
    [status] = read_all_status(tmp_path)
    assert status.last_run == 0 and status.snapshots_stored == 1
    assert reported_runs(merger_reports(tmp_path)) == set()


def test_a_run_without_matching_objects_is_skipped_not_stored(emulator, tmp_path):
    receiver = make_receiver(emulator.endpoint, tmp_path, select="^NoSuchObject$")
    assert receiver.request_once() is Outcome.SKIPPED
    receiver.close()
    assert SnapshotStore(tmp_path).count_snapshots() == 0
    [status] = read_all_status(tmp_path)
    assert (status.skipped_replies, status.rejected_objects, status.last_run) == (1, 0, 1000)


def test_a_streamer_folder_that_cannot_be_written_does_not_stop_the_receiver(emulator, tmp_path):
    (tmp_path / "streamers").write_text("a file where the folder should be")
    receiver = make_receiver(emulator.endpoint, tmp_path)
    assert receiver.request_once() is Outcome.STORED  # the schema reply is still used
    assert "cannot save streamers" in receiver.status.last_error
    assert receiver.request_once() is Outcome.STORED
    receiver.close()
    assert SnapshotStore(tmp_path).count_snapshots("EMC") == 2


def wait_until(condition, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def liveness_now(data_dir):
    statuses = read_all_status(data_dir)
    return receiver_liveness(statuses[0] if statuses else None, time.time(), dead_after_s=30.0)


def test_a_merger_that_stops_answering_is_silent_not_alive_and_recovers(clock, tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    receiver = Receiver(endpoint, "EMC", tmp_path, select="^EMC", period_s=0.05, timeout_s=1.0)
    stop = threading.Event()
    loop = threading.Thread(target=receiver.run, args=(stop,), daemon=True)
    try:
        with MergerEmulator(endpoint, ("EMC",), CONFIG, now=clock):
            loop.start()
            wait_until(lambda: liveness_now(tmp_path).state is ReceiverState.FLOWING, "flowing")
        # The merger is gone; the receiver process is not: its heartbeat stays fresh, the state says so.
        silent = wait_until(
            lambda: (live := liveness_now(tmp_path)).state is ReceiverState.MERGER_SILENT and live, "silent"
        )
        assert silent.heartbeat_age_s < 30.0 and endpoint in silent.reason
        [status] = read_all_status(tmp_path)
        assert status.last_error.startswith("no reply within 1 s") and status.last_error_cleared_utc is None
        stored_before = status.snapshots_stored
        with MergerEmulator(endpoint, ("EMC",), CONFIG, now=clock):
            wait_until(
                lambda: (
                    liveness_now(tmp_path).state is ReceiverState.FLOWING
                    and read_all_status(tmp_path)[0].snapshots_stored > stored_before
                ),
                "flowing again",
            )
            [status] = read_all_status(tmp_path)
        # The timeout is still told, as history: when it happened, and that replies flow since.
        assert (
            status.last_error.startswith("no reply")
            and status.last_error_cleared_utc >= status.last_error_utc
        )
        assert status.consecutive_timeouts == 0 and status.timeouts >= 1
    finally:
        stop.set()
        loop.join(timeout=10)


def test_the_heartbeat_is_written_while_waiting_for_a_reply(monkeypatch, tmp_path):
    monkeypatch.setattr("pipeline.receiver.HEARTBEAT_EVERY_S", 0.1)
    receiver = Receiver(f"tcp://127.0.0.1:{free_tcp_port()}", "EMC", tmp_path, timeout_s=1.0)
    beats = []
    real_beat = receiver.beat
    monkeypatch.setattr(receiver, "beat", lambda: (beats.append(time.time()), real_beat()))
    assert receiver.request_once() is Outcome.TIMEOUT
    receiver.close()
    assert len(beats) >= 2  # the one before the request, and at least one during the wait
    [status] = read_all_status(tmp_path)
    assert status.heartbeat_utc >= beats[-1] - 1e-3 and status.consecutive_timeouts == 1
