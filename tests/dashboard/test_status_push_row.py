"""The status model shows the HTTP push receiver in its own row, beside the subsystem's ZMQ receiver."""

import pytest

from pipeline.liveness import ReceiverState, receiver_liveness
from pipeline.status import PUSH, ReceiverStatus, read_all_status, write_status
from pipeline.system_status import reports_for

NOW = 1_700_000_000.0


def _push_status(**fields) -> ReceiverStatus:
    defaults = {"subsystem": "EMC", "endpoint": "http push", "kind": PUSH, "started_utc": NOW - 600}
    return ReceiverStatus(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("age_s", "state"),
    [(2.0, ReceiverState.FLOWING), (299.0, ReceiverState.FLOWING), (301.0, ReceiverState.IDLE)],
)
def test_a_silent_push_receiver_is_idle_not_dead(age_s, state):
    liveness = receiver_liveness(_push_status(heartbeat_utc=NOW - age_s), NOW, dead_after_s=300.0)
    assert (liveness.subsystem, liveness.state) == ("EMC-push", state)
    assert liveness.state.healthy
    assert receiver_liveness(_push_status(heartbeat_utc=0.0), NOW, 300.0).state is ReceiverState.IDLE


def test_push_and_zmq_receivers_of_one_subsystem_have_their_own_files_and_rows(tmp_path):
    write_status(tmp_path, ReceiverStatus("EMC", endpoint="tcp://x:1", heartbeat_utc=NOW, snapshots_stored=7))
    write_status(tmp_path, _push_status(heartbeat_utc=NOW - 10, snapshots_stored=3, rejected_objects=2))
    assert sorted(p.name for p in (tmp_path / "status").iterdir()) == ["EMC-push.json", "EMC.json"]
    assert (tmp_path / "heartbeat.EMC-pushReceiver").read_text() == f"{int(NOW - 10)}\n"
    statuses = read_all_status(tmp_path)
    assert sorted((s.key, s.snapshots_stored) for s in statuses) == [("EMC", 7), ("EMC-push", 3)]
    reports = reports_for(statuses, ("EMC",), NOW, dead_after_s=30.0)
    assert [report.subsystem for report in reports] == ["EMC", "EMC-push"]
    assert reports[1].state is ReceiverState.FLOWING
    assert (reports[1].status.snapshots_stored, reports[1].status.rejected_objects) == (3, 2)
