"""The HTTP push receiver is reported in its own row, beside the subsystem's ZMQ receiver, and a silent
one is idle (healthy), never dead: only its clients decide when data come."""

import pytest

from pipeline.liveness import ReceiverState, receiver_liveness
from pipeline.status import PUSH, ReceiverStatus, read_all_status, write_status
from pipeline.system_status import reports_for

NOW = 1_700_000_000.0
DEAD_AFTER_S = 30.0


def _push_status(**fields) -> ReceiverStatus:
    defaults = {"subsystem": "EMC", "endpoint": "http push", "kind": PUSH, "started_utc": NOW - 600}
    return ReceiverStatus(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("age_s", "state"),
    [(2.0, ReceiverState.FLOWING), (29.0, ReceiverState.FLOWING), (31.0, ReceiverState.IDLE)],
)
def test_a_silent_push_receiver_is_idle_not_dead(age_s, state):
    liveness = receiver_liveness(_push_status(heartbeat_utc=NOW - age_s), NOW, DEAD_AFTER_S)
    assert (liveness.subsystem, liveness.state) == ("EMC-push", state)
    assert liveness.state.healthy
    never_pushed = receiver_liveness(_push_status(heartbeat_utc=0.0), NOW, DEAD_AFTER_S)
    assert never_pushed.state is ReceiverState.IDLE


def test_push_and_zmq_receivers_of_one_subsystem_have_their_own_files_and_rows(tmp_path):
    write_status(tmp_path, ReceiverStatus("EMC", endpoint="tcp://x:1", heartbeat_utc=NOW, snapshots_stored=7))
    write_status(tmp_path, _push_status(heartbeat_utc=NOW - 10, snapshots_stored=3, rejected_objects=2))
    assert sorted(p.name for p in (tmp_path / "status").iterdir()) == ["EMC-push.json", "EMC.json"]
    assert (tmp_path / "heartbeat.EMC-pushReceiver").read_text() == f"{int(NOW - 10)}\n"
    reports = reports_for(read_all_status(tmp_path), ("EMC",), NOW, DEAD_AFTER_S)
    assert [report.subsystem for report in reports] == ["EMC", "EMC-push"]
    push = reports[1].to_dict(NOW)
    assert (push["state"], push["snapshots_stored"], push["rejected_objects"]) == ("flowing", 3, 2)
    assert push["endpoint"] == "http push"
