"""The one rule that says what state a receiver is in, from its status file and the clock.

Three separate signals, each with its age:
- the heartbeat: the receiver process is alive (it rewrites its status every few seconds, also while
  it waits for a silent merger);
- the last reply: the merger answers;
- the last snapshot stored: data flow.

State, first match wins:
  no status      the receiver never reported;
  receiver dead  no heartbeat for `dead_after_s`;
  receiver not responding
                 no heartbeat for HEARTBEAT_EVERY_S + GRACE_S: the process exists (or did lately) but
                 does not run (stopped, swapped out, stuck in a store). Its merger is not blamed: a
                 reply is only expected from a receiver that asks;
  starting       alive, has not had its first reply yet, and has not waited a full timeout for it;
  merger silent  its last request(s) got no reply, or no reply for longer than a request period plus
                 a timeout (plus GRACE_S for a loaded machine): the reply deadline;
  between runs   the merger answers with run 0 (nothing to store; a run has ended);
  flowing        the merger answers with a run and a snapshot was stored within the reply deadline,
                 or the receiver first heard that run within it (a new run's first replies hold no
                 histograms yet: the previous run's last snapshot says nothing about this one);
  not storing    the merger answers with a run but nothing was stored (every object rejected, or the
                 store failed: see last error).
An HTTP push receiver (`kind` "push") has no merger to ask: its heartbeat is its last push, so it is
flowing within `dead_after_s` of one and idle after that (its clients decide when data come).
Every page, `GET /status` and the run list use this function; nothing else decides it. The heartbeat
part of the rule (`heartbeat_verdict`) also judges the QC service (`qc_liveness`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from pipeline.status import HEARTBEAT_EVERY_S, PUSH, RATE_WINDOW_S, ZMQ, ReceiverStatus
from pipeline.wording import counted

# Slack on top of a receiver's own period + timeout before its merger counts as silent, and on top of
# its heartbeat interval before the receiver counts as not responding.
GRACE_S = 5.0


class ReceiverState(enum.StrEnum):
    NO_STATUS = "no status"
    RECEIVER_DEAD = "receiver dead"
    RECEIVER_NOT_RESPONDING = "receiver not responding"
    STARTING = "starting"
    MERGER_SILENT = "merger silent"
    BETWEEN_RUNS = "between runs"
    FLOWING = "flowing"
    NOT_STORING = "not storing"
    IDLE = "idle"  # a push receiver nobody pushed to lately

    @property
    def healthy(self) -> bool:
        """What `GET /status` accepts: the receiver lives and its merger answers (or, for a push
        receiver, it simply waits)."""
        return self in (ReceiverState.FLOWING, ReceiverState.BETWEEN_RUNS, ReceiverState.IDLE)


@dataclass(frozen=True)
class Liveness:
    subsystem: str
    state: ReceiverState
    reason: str  # one sentence a person can act on
    heartbeat_age_s: float | None
    reply_age_s: float | None
    snapshot_age_s: float | None
    snapshots_per_min: float | None  # over the last RATE_WINDOW_S (see `snapshots_per_min`)


@dataclass(frozen=True)
class MissedHeartbeat:
    dead: bool  # True: gone (no heartbeat for `dead_after_s`); False: not responding
    reason: str


def heartbeat_verdict(
    heartbeat_age_s: float | None,
    dead_after_s: float,
    who: str,
    every_s: float = HEARTBEAT_EVERY_S,
) -> MissedHeartbeat | None:
    """The heartbeat rule, for any process that rewrites a status file every `every_s` while it runs
    (the receivers, the QC service): None while it beats; not responding after `every_s` + GRACE_S
    without a beat (the process exists, or did lately, but does not run: stopped, swapped out, stuck);
    dead after `dead_after_s` (or when it never beat)."""
    if heartbeat_age_s is None or heartbeat_age_s > dead_after_s:
        when = "never" if heartbeat_age_s is None else f"{heartbeat_age_s:.0f} s ago"
        return MissedHeartbeat(True, f"no heartbeat for {dead_after_s:g} s (last: {when})")
    if heartbeat_age_s > every_s + GRACE_S:
        return MissedHeartbeat(
            False,
            f"no heartbeat for {heartbeat_age_s:.0f} s (a running {who} writes one every"
            f" {every_s:g} s; dead after {dead_after_s:g} s)",
        )
    return None


def _age(now: float, epoch: float | None) -> float | None:
    return None if not epoch else max(0.0, now - epoch)


def reply_deadline_s(status: ReceiverStatus) -> float:
    """How long a live merger can take between two replies: a period, a timeout, and some slack."""
    return status.period_s + status.timeout_s + GRACE_S


def snapshots_per_min(status: ReceiverStatus, now: float) -> float | None:
    """Snapshots stored per minute over the last RATE_WINDOW_S, or since `status.rate_since_utc` if that
    is shorter (the start of the first of the receivers restarted in a row whose list this one
    continues: the counted snapshots cannot be older).

    A receiver that asks on a period stores at most one snapshot a period, so n snapshots stand for at
    least n periods and the window is never shorter. Without that, a young receiver's first snapshot, a
    second after it started, reads as 60 a minute, and a receiver restarted within a period of its
    predecessor's last request (or a slow reply followed by a quick one) reads above its cadence. A push
    receiver has no period: its clients decide."""
    counted = sum(1 for t in status.recent_snapshots_utc if 0 <= now - t < RATE_WINDOW_S)
    period_s = status.period_s if status.kind == ZMQ else 0.0
    window_s = max(min(RATE_WINDOW_S, now - status.rate_since_utc), counted * period_s)
    if window_s <= 0:
        return None
    return counted * 60.0 / window_s


def receiver_liveness(
    status: ReceiverStatus | None, now: float, dead_after_s: float, subsystem: str = ""
) -> Liveness:
    """The state of one receiver at `now` (see the module docstring for the rule)."""
    if status is None:
        return Liveness(
            subsystem, ReceiverState.NO_STATUS, "the receiver has never reported", None, None, None, None
        )
    heartbeat_age = _age(now, status.heartbeat_utc)
    reply_age = _age(now, status.last_reply_utc)
    snapshot_age = _age(now, status.last_snapshot_utc)
    deadline = reply_deadline_s(status)

    def verdict(state: ReceiverState, reason: str) -> Liveness:
        return Liveness(
            status.key,
            state,
            reason,
            heartbeat_age,
            reply_age,
            snapshot_age,
            snapshots_per_min(status, now),
        )

    if status.kind == PUSH:
        if heartbeat_age is not None and heartbeat_age <= dead_after_s:
            return verdict(ReceiverState.FLOWING, f"last push {heartbeat_age:.0f} s ago")
        return verdict(ReceiverState.IDLE, "waiting for pushes (none lately)")
    beat = heartbeat_verdict(heartbeat_age, dead_after_s, "receiver")
    if beat is not None:
        state = ReceiverState.RECEIVER_DEAD if beat.dead else ReceiverState.RECEIVER_NOT_RESPONDING
        return verdict(state, beat.reason)
    if reply_age is None:
        waited = now - status.started_utc
        if status.consecutive_timeouts == 0 and waited <= status.timeout_s + GRACE_S:
            return verdict(ReceiverState.STARTING, "waiting for the merger's first reply")
        return verdict(
            ReceiverState.MERGER_SILENT,
            f"no reply from {status.endpoint or 'the merger'} since the receiver started {waited:.0f} s ago",
        )
    if status.consecutive_timeouts > 0 or reply_age > deadline:
        unanswered = status.consecutive_timeouts
        count = f" ({counted(unanswered, 'request')} unanswered)" if unanswered else ""
        return verdict(
            ReceiverState.MERGER_SILENT,
            f"no reply from {status.endpoint or 'the merger'} for {reply_age:.0f} s{count}",
        )
    if (status.last_run or 0) <= 0:
        return verdict(ReceiverState.BETWEEN_RUNS, "the merger answers with run 0 (between runs)")
    run_age = _age(now, status.run_since_utc)
    of_this_run = snapshot_age is not None and (run_age is None or snapshot_age <= run_age)
    if of_this_run and snapshot_age <= deadline:
        return verdict(ReceiverState.FLOWING, f"run {status.last_run}: data stored {snapshot_age:.0f} s ago")
    if run_age is not None and run_age <= deadline:
        return verdict(
            ReceiverState.FLOWING,
            f"run {status.last_run} first heard {run_age:.0f} s ago: waiting for its first histograms",
        )
    stored = "never" if snapshot_age is None else f"{snapshot_age:.0f} s ago"
    heard = "" if run_age is None else f" (first heard {run_age:.0f} s ago)"
    return verdict(
        ReceiverState.NOT_STORING,
        f"the merger answers for run {status.last_run}{heard} but nothing is stored"
        f" (last snapshot: {stored})",
    )


class QCState(enum.StrEnum):
    NO_STATUS = "QC never reported"
    DEAD = "QC service dead"
    NOT_RESPONDING = "QC service not responding"
    RUNNING = "QC running"

    @property
    def healthy(self) -> bool:
        """What `GET /status` accepts. A QC service that never reported is not counted (a dashboard
        may run without one); one that reported and stopped beating is: its verdicts are no longer
        current, and the supervisor restarts only a child that exits, never a hung one."""
        return self in (QCState.RUNNING, QCState.NO_STATUS)


@dataclass(frozen=True)
class QCLiveness:
    state: QCState
    reason: str
    heartbeat_age_s: float | None
    pending: int  # snapshots stored but not yet checked at the service's last look
    lag_s: float  # how old the oldest of them was then
    pid: int | None = None  # of the process that wrote the record


def qc_liveness(record: dict | None, now: float, dead_after_s: float) -> QCLiveness:
    """The QC service's state at `now` from its status record (`pipeline.qc.status_file`), by the
    receivers' heartbeat rule (`heartbeat_verdict`)."""
    if record is None:
        never = "the QC service has never written DIR/qc/status.json"
        return QCLiveness(QCState.NO_STATUS, never, None, 0, 0.0)
    try:
        beat_epoch = datetime.fromisoformat(str(record["heartbeat_utc"])).timestamp()
        every_s = float(record.get("heartbeat_every_s", HEARTBEAT_EVERY_S))
        pending, lag_s = int(record.get("pending", 0)), float(record.get("lag_s", 0.0))
        pid = int(record["pid"]) if record.get("pid") else None
    except (KeyError, TypeError, ValueError):
        return QCLiveness(QCState.DEAD, "its status file holds no readable heartbeat", None, 0, 0.0)
    age = _age(now, beat_epoch)
    beat = heartbeat_verdict(age, dead_after_s, "QC service", every_s)
    if beat is not None:
        state = QCState.DEAD if beat.dead else QCState.NOT_RESPONDING
        return QCLiveness(state, f"{beat.reason}: its verdicts are not current", age, pending, lag_s, pid)
    behind = f"{counted(pending, 'snapshot')} to check, oldest {lag_s:.0f} s old" if pending else "up to date"
    return QCLiveness(
        QCState.RUNNING, f"checking snapshots as they land ({behind})", age, pending, lag_s, pid
    )
