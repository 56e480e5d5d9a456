"""The one liveness rule, state by state, with made-up times (no clock, no sleep)."""

import pytest

from pipeline.liveness import GRACE_S, ReceiverState, receiver_liveness, snapshots_per_min
from pipeline.status import ReceiverStatus

NOW = 1_900_000_000.0
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
    "heartbeat_age_s,state", [(DEAD_AFTER_S - 1, "flowing"), (DEAD_AFTER_S + 1, "receiver dead")]
)
def test_dead_when_the_heartbeat_is_old_whatever_else_says(heartbeat_age_s, state):
    assert state_of(heartbeat_utc=NOW - heartbeat_age_s) == state
    assert state_of(heartbeat_utc=0.0) == ReceiverState.RECEIVER_DEAD  # never beat


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
    assert snapshots_per_min(receiver, NOW) == pytest.approx(10.0)
