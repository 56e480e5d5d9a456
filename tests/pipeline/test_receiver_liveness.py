"""The liveness rule against real receivers and the merger emulator over tcp://127.0.0.1: a new run's
first replies, a receiver killed and restarted (its 5-minute rate). A receiver stopped with SIGSTOP is
in tests/dashboard/test_status_routes.py, seen through GET /status."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pipeline.emulator.merger import MergerEmulator
from pipeline.emulator.runs import EmulatorConfig
from pipeline.liveness import Liveness, ReceiverState, receiver_liveness
from pipeline.receiver import Receiver
from pipeline.status import read_status
from tests.ports import free_tcp_port
from tests.receiver_process import end_receiver, start_receiver

pytestmark = pytest.mark.network

T0 = 1_800_000_000.0
# Run 1000 takes data from T0 to T0 + 10 (a fill every second), run 1001 from T0 + 15.
CONFIG = EmulatorConfig(step_s=1.0, run_length_s=10.0, run_gap_s=5.0, first_run=1000, start_time_utc=T0)
DEAD_AFTER_S = 30.0


class SetClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def liveness_now(data_dir: Path) -> Liveness:
    return receiver_liveness(read_status(data_dir, "EMC"), time.time(), DEAD_AFTER_S, subsystem="EMC")


def wait_for(condition, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def test_a_new_runs_first_replies_without_histograms_are_not_called_not_storing(tmp_path):
    clock = SetClock(T0 + 3.5)  # run 1000 taking data
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    receiver = Receiver(endpoint, "EMC", tmp_path, select="^EMC", period_s=0.05, timeout_s=2.0)
    deadline_s = 0.05 + 2.0 + 5.0  # the reply deadline: period + timeout + GRACE_S
    stop = threading.Event()
    loop = threading.Thread(target=receiver.run, args=(stop,), daemon=True)
    try:
        with MergerEmulator(endpoint, ("EMC",), CONFIG, now=clock):
            loop.start()
            wait_for(lambda: liveness_now(tmp_path).state is ReceiverState.FLOWING, "flowing in run 1000")
            clock.t = T0 + 12.0  # between runs: the merger answers run 0
            wait_for(lambda: liveness_now(tmp_path).state is ReceiverState.BETWEEN_RUNS, "between runs")
            # Long enough between runs that run 1000's last snapshot is older than the reply deadline.
            last_snapshot = read_status(tmp_path, "EMC").last_snapshot_utc
            wait_for(lambda: time.time() - last_snapshot > deadline_s + 1, "an old last snapshot", 20)
            # Run 1001 has started, its first step is not filled: its replies hold no histograms.
            clock.t = T0 + 15.2
            wait_for(lambda: read_status(tmp_path, "EMC").last_run == 1001, "run 1001 heard")
            status = read_status(tmp_path, "EMC")
            heard_at = status.run_since_utc
            assert status.skipped_replies > 0 and status.last_snapshot_utc == last_snapshot
            # Healthy (GET /status 200) for a reply deadline after it was first heard ...
            seen = []
            while time.time() - heard_at < deadline_s - 0.5:
                live = liveness_now(tmp_path)
                seen.append(live.state)
                assert live.state is ReceiverState.FLOWING and live.state.healthy, live.reason
                assert (
                    "run 1001 first heard" in live.reason
                    and "waiting for its first histograms" in live.reason
                )
                time.sleep(0.1)
            assert len(seen) >= 20
            # ... and not storing after that, if the histograms still do not come.
            not_storing = wait_for(
                lambda: (live := liveness_now(tmp_path)).state is ReceiverState.NOT_STORING and live,
                "not storing",
            )
            assert "run 1001 (first heard" in not_storing.reason
            assert read_status(tmp_path, "EMC").run_since_utc == heard_at  # later replies do not move it
            clock.t = T0 + 17.5  # two steps filled: stored
            flowing = wait_for(
                lambda: (live := liveness_now(tmp_path)).state is ReceiverState.FLOWING and live, "flowing"
            )
            assert flowing.reason.startswith("run 1001: data stored")
    finally:
        stop.set()
        loop.join(timeout=10)


@pytest.fixture
def live_merger():
    """The emulator on the real clock, three steps into a long run."""
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    config = EmulatorConfig(
        step_s=1.0, run_length_s=3600.0, run_gap_s=5.0, first_run=1000, start_time_utc=time.time() - 3
    )
    with MergerEmulator(endpoint, ("EMC",), config):
        yield endpoint


def test_a_receiver_killed_and_restarted_never_reads_faster_than_its_period(live_merger, tmp_path):
    period_s = 2.0
    most_per_min = 60.0 / period_s
    first = start_receiver(live_merger, tmp_path, period_s, timeout_s=10.0)
    second = None
    try:
        wait_for(lambda: (s := read_status(tmp_path, "EMC")) and s.snapshots_stored >= 3, "3 snapshots", 60)
        first.kill()  # kill -9: no goodbye, the status file stays as the process last wrote it
        first.wait(timeout=10)
        before = read_status(tmp_path, "EMC")
        time.sleep(1.0)
        second = start_receiver(live_merger, tmp_path, period_s, timeout_s=10.0)
        wait_for(
            lambda: (s := read_status(tmp_path, "EMC")) and s.pid == second.pid, "the new process writes"
        )
        rates = []
        while (status := read_status(tmp_path, "EMC")).snapshots_stored < before.snapshots_stored + 3:
            live = receiver_liveness(status, time.time(), DEAD_AFTER_S)
            rates.append(live.snapshots_per_min)
            time.sleep(0.05)
            assert second.poll() is None, second.stderr.read().decode()
        # The new process continues its predecessor's list and the time it counts from.
        assert status.recent_snapshots_utc[: len(before.recent_snapshots_utc)] == before.recent_snapshots_utc
        assert status.rate_since_utc == before.rate_since_utc and status.started_utc > before.started_utc
        # The audit's reading was 92.9 per minute with a 5 s period (at most 12): a second's window.
        assert max(rates) <= most_per_min + 1e-9, (most_per_min, rates)
        assert min(rates) > 0, rates  # the predecessor's snapshots count from the start
    finally:
        end_receiver(first)
        if second is not None:
            end_receiver(second)
