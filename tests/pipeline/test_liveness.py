"""The one liveness rule, state by state, with made-up times (no clock, no sleep)."""

from datetime import UTC, datetime

import pytest

from pipeline.liveness import (
    GRACE_S,
    QCState,
    ReceiverState,
    heartbeat_verdict,
    qc_liveness,
    receiver_liveness,
    snapshots_per_min,
)
from pipeline.receiver import Receiver
from pipeline.status import HEARTBEAT_EVERY_S, ReceiverStatus, read_status, write_status

NOW = 1_900_000_000.0
# A receiver that missed its heartbeat by more than the grace is not responding (`heartbeat_verdict`).
NOT_RESPONDING_AFTER_S = HEARTBEAT_EVERY_S + GRACE_S
DEAD_AFTER_S = 30.0


def status(**fields) -> ReceiverStatus:
    """A receiver asking every 5 s with a 10 s timeout, started 10 minutes ago, all fresh."""
    defaults = dict(
        subsystem="EMC",
        endpoint="tcp://merger:60320",
        started_utc=NOW - 600,
        heartbeat_utc=NOW - 1,
        period_s=5.0,
        timeout_s=10.0,
        last_reply_utc=NOW - 2,
        last_snapshot_utc=NOW - 2,
        last_run=300001,
    )
    return ReceiverStatus(**{**defaults, **fields})


def state_of(**fields) -> ReceiverState:
    return receiver_liveness(status(**fields), NOW, DEAD_AFTER_S).state


def test_flowing_with_every_age():
    live = receiver_liveness(status(), NOW, DEAD_AFTER_S)
    assert live.state is ReceiverState.FLOWING and live.state.healthy
    assert (live.heartbeat_age_s, live.reply_age_s, live.snapshot_age_s) == (1, 2, 2)
    assert "run 300001" in live.reason


def test_no_status_file():
    live = receiver_liveness(None, NOW, DEAD_AFTER_S, subsystem="TPC")
    assert (live.subsystem, live.state) == ("TPC", ReceiverState.NO_STATUS) and not live.state.healthy


@pytest.mark.parametrize(
    "heartbeat_age_s,state",
    [
        (NOT_RESPONDING_AFTER_S - 0.5, "flowing"),
        (NOT_RESPONDING_AFTER_S + 0.5, "receiver not responding"),
        (DEAD_AFTER_S - 1, "receiver not responding"),
        (DEAD_AFTER_S + 1, "receiver dead"),
    ],
)
def test_not_responding_then_dead_when_the_heartbeat_is_old_whatever_else_says(heartbeat_age_s, state):
    assert state_of(heartbeat_utc=NOW - heartbeat_age_s) == state
    assert state_of(heartbeat_utc=0.0) == ReceiverState.RECEIVER_DEAD  # never beat


def test_a_frozen_receiver_is_not_blamed_on_its_merger():
    # kill -STOP 24 s ago, right after a reply: every time in the file is 24 s old. The merger was never
    # asked, so it cannot be called silent (the audit saw "merger silent (... 0 requests unanswered)").
    assert NOT_RESPONDING_AFTER_S == 7.0
    frozen = receiver_liveness(
        status(heartbeat_utc=NOW - 24, last_reply_utc=NOW - 24, last_snapshot_utc=NOW - 24), NOW, DEAD_AFTER_S
    )
    assert frozen.state is ReceiverState.RECEIVER_NOT_RESPONDING and not frozen.state.healthy
    assert frozen.reason == "no heartbeat for 24 s (a running receiver writes one every 2 s; dead after 30 s)"
    assert (frozen.heartbeat_age_s, frozen.reply_age_s, frozen.snapshot_age_s) == (24, 24, 24)


def test_a_late_reply_with_no_request_unanswered_does_not_count_zero_requests():
    late = receiver_liveness(status(last_reply_utc=NOW - 25), NOW, DEAD_AFTER_S)
    assert late.state is ReceiverState.MERGER_SILENT
    assert late.reason == "no reply from tcp://merger:60320 for 25 s"
    three = receiver_liveness(status(last_reply_utc=NOW - 45, consecutive_timeouts=3), NOW, DEAD_AFTER_S)
    assert three.reason == "no reply from tcp://merger:60320 for 45 s (3 requests unanswered)"


def test_merger_silent_while_the_heartbeat_is_fresh():
    # The bug this rule fixes: a fresh heartbeat with a merger that stopped answering looked alive.
    deadline = 5.0 + 10.0 + GRACE_S
    assert state_of(last_reply_utc=NOW - deadline + 1, last_snapshot_utc=NOW - deadline + 1) == "flowing"
    silent = receiver_liveness(status(last_reply_utc=NOW - deadline - 1), NOW, DEAD_AFTER_S)
    assert silent.state is ReceiverState.MERGER_SILENT and not silent.state.healthy
    assert "tcp://merger:60320" in silent.reason and silent.heartbeat_age_s == 1
    # One unanswered request is enough, however recent the last reply.
    assert state_of(consecutive_timeouts=1) == ReceiverState.MERGER_SILENT


def test_starting_then_silent_if_the_first_reply_never_comes():
    fresh = dict(started_utc=NOW - 3, last_reply_utc=None, last_snapshot_utc=None, last_run=None)
    assert state_of(**fresh) == ReceiverState.STARTING
    assert state_of(**{**fresh, "started_utc": NOW - 10 - GRACE_S - 1}) == ReceiverState.MERGER_SILENT
    assert state_of(**{**fresh, "consecutive_timeouts": 1}) == ReceiverState.MERGER_SILENT


def test_between_runs_when_the_merger_answers_run_zero():
    live = receiver_liveness(status(last_run=0, last_snapshot_utc=NOW - 900), NOW, DEAD_AFTER_S)
    assert live.state is ReceiverState.BETWEEN_RUNS and live.state.healthy
    assert live.snapshot_age_s == 900


def test_not_storing_when_the_merger_answers_a_run_but_nothing_is_kept():
    assert state_of(last_snapshot_utc=NOW - 120) == ReceiverState.NOT_STORING
    assert state_of(last_snapshot_utc=None) == ReceiverState.NOT_STORING


def test_a_new_run_is_not_storing_only_a_reply_deadline_after_it_was_first_heard():
    # The audit: run 300006 had just started, its first reply held no histograms, the last snapshot
    # (the previous run's) was 26 s old, and GET /status answered 500 "not storing".
    deadline = 5.0 + 10.0 + GRACE_S
    new_run = dict(last_run=300006, run_since_utc=NOW - 2, last_snapshot_utc=NOW - 26)
    live = receiver_liveness(status(**new_run), NOW, DEAD_AFTER_S)
    assert live.state is ReceiverState.FLOWING and live.state.healthy
    assert live.reason == "run 300006 first heard 2 s ago: waiting for its first histograms"
    # The previous run's snapshot 3 s ago is not this run's data either.
    assert (
        "waiting for its first"
        in receiver_liveness(status(**{**new_run, "last_snapshot_utc": NOW - 3}), NOW, DEAD_AFTER_S).reason
    )
    late = receiver_liveness(status(**{**new_run, "run_since_utc": NOW - deadline - 1}), NOW, DEAD_AFTER_S)
    assert late.state is ReceiverState.NOT_STORING
    assert late.reason == (
        "the merger answers for run 300006 (first heard 21 s ago) but nothing is stored"
        " (last snapshot: 26 s ago)"
    )
    # A snapshot of this run, stored after it was first heard: flowing as before.
    stored = receiver_liveness(status(**{**new_run, "last_snapshot_utc": NOW - 1}), NOW, DEAD_AFTER_S)
    assert stored.reason == "run 300006: data stored 1 s ago"
    # A file written before `run_since_utc` existed: the last snapshot alone decides, as it did.
    assert state_of(last_snapshot_utc=NOW - 26, run_since_utc=None) == ReceiverState.NOT_STORING
    assert state_of(last_snapshot_utc=NOW - 2, run_since_utc=None) == ReceiverState.FLOWING


def test_record_run_remembers_when_a_run_was_first_heard():
    receiver = status(last_run=None, run_since_utc=None)
    receiver.record_run(300005, NOW - 100)
    receiver.record_run(300005, NOW - 95)
    assert (receiver.last_run, receiver.run_since_utc) == (300005, NOW - 100)
    receiver.record_run(0, NOW - 50)
    receiver.record_run(300006, NOW - 2)
    assert (receiver.last_run, receiver.run_since_utc) == (300006, NOW - 2)


def test_snapshots_per_minute_over_the_last_five_minutes_not_the_lifetime():
    # 1000 snapshots in the receiver's first hours, then 10 in the last 5 minutes.
    recent = [NOW - 30 * i for i in range(10)]
    busy = status(started_utc=NOW - 36000, snapshots_stored=1010, recent_snapshots_utc=recent[::-1])
    assert snapshots_per_min(busy, NOW) == pytest.approx(2.0)
    # A receiver up for one minute with 12 snapshots: 12 per minute, not 12 / 5.
    young = status(started_utc=NOW - 60, recent_snapshots_utc=[NOW - 5 * i for i in range(12)][::-1])
    assert snapshots_per_min(young, NOW) == pytest.approx(12.0)
    assert snapshots_per_min(status(started_utc=NOW), NOW) is None


def test_record_snapshot_keeps_only_the_rate_window():
    receiver = status(recent_snapshots_utc=[], snapshots_stored=0)
    for i in range(100):
        receiver.record_snapshot(NOW - 600 + 6 * i)  # one every 6 s for 10 minutes
    assert receiver.snapshots_stored == 100
    assert len(receiver.recent_snapshots_utc) == 50  # the last 300 s only
    # Read between two snapshots (the window (now - 300 s, now] holds 50 whole periods).
    assert snapshots_per_min(receiver, NOW - 3) == pytest.approx(10.0)


def test_a_restarted_receiver_counts_its_predecessors_snapshots_over_their_own_window(tmp_path):
    # A receiver stored one snapshot every 5 s for a minute, was killed (kill -9) and restarted 1 s ago;
    # the new process has just stored its first. 12 snapshots over the last 60 s: 12 per minute. The
    # audit read 92.9, 18.1, 13.7 per minute where 12 is the most a 5 s period can store.
    predecessor = status(
        started_utc=NOW - 55.5,
        pid=1,
        snapshots_stored=11,
        recent_snapshots_utc=[NOW - 55 + 5 * i for i in range(11)],  # NOW-55 ... NOW-5
        last_run=300006,
        run_since_utc=NOW - 55,
    )
    write_status(tmp_path, predecessor)
    receiver = Receiver("tcp://127.0.0.1:1", "EMC", tmp_path, period_s=5.0, timeout_s=10.0)
    restarted = receiver.status
    receiver.close()
    assert restarted.pid != 1 and restarted.started_utc != NOW - 55.5  # its own process and start
    restarted.started_utc = NOW - 1
    assert restarted.recent_snapshots_utc == predecessor.recent_snapshots_utc
    assert restarted.recent_since_utc == NOW - 55.5 and restarted.snapshots_stored == 11
    assert (restarted.last_run, restarted.run_since_utc) == (300006, NOW - 55)
    restarted.record_snapshot(NOW)
    assert snapshots_per_min(restarted, NOW) == pytest.approx(12.0)
    # Its status written and read back keeps the window's start (and a file without it reads).
    write_status(tmp_path, restarted)
    assert read_status(tmp_path, "EMC").rate_since_utc == NOW - 55.5
    assert status(recent_since_utc=None).rate_since_utc == NOW - 600


def test_a_young_receiver_never_reads_faster_than_its_period_allows():
    # A receiver asking every 5 s from `start`: the first reply (with the schema) takes 1 s, the others
    # 0.1 s, so its second snapshot comes 4.1 s after its first. At 61 s it is killed and restarted,
    # asking again 2 s after its predecessor's last request (a slow first reply again). Read every 0.1 s
    # for 7 minutes: never above 12 per minute, and exactly 12 once 5 minutes are full.
    start = NOW - 420
    times = [start + 1.0] + [start + 5 * i + 0.1 for i in range(1, 13)]  # requests at 0, 5, ..., 60
    restart = start + 62
    times += [restart + 1.0] + [restart + 5 * i + 0.1 for i in range(1, 72)]
    for step in range(1, 4200):
        now = start + step * 0.1
        continued = status(started_utc=start, recent_snapshots_utc=[t for t in times if t <= now])
        rate = snapshots_per_min(continued, now)
        assert rate <= 12.0 + 1e-9, (now - start, rate)
        if now - restart >= 300 + 5:
            assert rate == pytest.approx(12.0), now - start
    # The first snapshot, 0.65 s after the start: 12 per minute, not 60 / 0.65 (92.3).
    first = status(started_utc=NOW - 0.65, recent_snapshots_utc=[NOW])
    assert snapshots_per_min(first, NOW) == pytest.approx(12.0)
    # Stopped after 3 snapshots: the rate falls as the window grows.
    stopped = status(started_utc=NOW - 40, recent_snapshots_utc=[NOW - 39, NOW - 34, NOW - 29])
    assert snapshots_per_min(stopped, NOW) == pytest.approx(3 * 60 / 40)


def test_a_push_receivers_rate_is_not_held_to_a_period():
    # Its clients push when they like: 10 pushes in the 20 s since it started are 30 a minute.
    pushed = status(
        kind="push", started_utc=NOW - 20, recent_snapshots_utc=[NOW - 2 * i for i in range(10)][::-1]
    )
    assert snapshots_per_min(pushed, NOW) == pytest.approx(30.0)


def qc_record(heartbeat_age_s: float, **fields) -> dict:
    """The QC service's status record (`QCService.write_status`) with a heartbeat that old."""
    beat = datetime.fromtimestamp(NOW - heartbeat_age_s, UTC).isoformat()
    return {
        "heartbeat_utc": beat,
        "heartbeat_every_s": 1.0,
        "pending": 0,
        "lag_s": 0.0,
        "pid": 4242,
        **fields,
    }


@pytest.mark.parametrize(
    ("heartbeat_age_s", "state"),
    [
        (0.5, QCState.RUNNING),
        (1.0 + GRACE_S - 0.5, QCState.RUNNING),
        (1.0 + GRACE_S + 0.5, QCState.NOT_RESPONDING),
        (DEAD_AFTER_S - 1, QCState.NOT_RESPONDING),
        (DEAD_AFTER_S + 1, QCState.DEAD),
    ],
)
def test_the_qc_service_is_judged_by_the_receivers_heartbeat_rule(heartbeat_age_s, state):
    qc = qc_liveness(qc_record(heartbeat_age_s), NOW, DEAD_AFTER_S)
    assert qc.state is state
    assert qc.heartbeat_age_s == pytest.approx(heartbeat_age_s)
    assert qc.state.healthy is (state is QCState.RUNNING)
    # One rule: the receiver's heartbeat at the same age, with the same interval, is in the same state.
    beat = heartbeat_verdict(heartbeat_age_s, DEAD_AFTER_S, "QC service", every_s=1.0)
    assert (beat is None, beat is not None and beat.dead) == (
        state is QCState.RUNNING,
        state is QCState.DEAD,
    )


def test_qc_liveness_says_how_far_behind_and_what_it_cannot_read():
    behind = qc_liveness(qc_record(1.0, pending=12, lag_s=40.0), NOW, DEAD_AFTER_S)
    assert behind.reason == "checking snapshots as they land (12 snapshots to check, oldest 40 s old)"
    stopped = qc_liveness(qc_record(240.0), NOW, DEAD_AFTER_S)
    assert stopped.reason == "no heartbeat for 30 s (last: 240 s ago): its verdicts are not current"
    assert stopped.pid == 4242
    # Never ran: shown, but not a problem (a dashboard may run without a QC service).
    never = qc_liveness(None, NOW, DEAD_AFTER_S)
    assert never.state is QCState.NO_STATUS and never.state.healthy
    for broken in ({}, {"heartbeat_utc": "yesterday"}, {"heartbeat_utc": None}):
        assert qc_liveness(broken, NOW, DEAD_AFTER_S).state is QCState.DEAD, broken
    # A record written before `heartbeat_every_s` existed: the receivers' 2 s.
    old = qc_record(2.0 + GRACE_S + 0.5)
    del old["heartbeat_every_s"]
    assert qc_liveness(old, NOW, DEAD_AFTER_S).state is QCState.NOT_RESPONDING
