"""The status page shows the HTTP push receiver in its own row, beside the subsystem's ZMQ receiver."""

import pytest

from dashboard.status_panel import receiver_health, status_panel
from pipeline.settings import Settings
from pipeline.status import PUSH, ReceiverStatus, read_all_status, write_status

NOW = 1_700_000_000.0


def _push_status(**fields) -> ReceiverStatus:
    defaults = {"subsystem": "EMC", "endpoint": "http push", "kind": PUSH, "started_utc": NOW - 600}
    return ReceiverStatus(**{**defaults, **fields})


@pytest.mark.parametrize(("age_s", "state"), [(2.0, "alive"), (299.0, "alive"), (301.0, "idle")])
def test_a_silent_push_receiver_is_idle_not_dead(age_s, state):
    settings = Settings(receiver_period_s=5.0, receiver_dead_after_s=300.0)
    health = receiver_health(_push_status(heartbeat_utc=NOW - age_s), settings, NOW)
    assert (health.subsystem, health.state) == ("EMC-push", state)
    assert receiver_health(_push_status(heartbeat_utc=0.0), settings, NOW).state == "idle"


def test_push_and_zmq_receivers_of_one_subsystem_have_their_own_files_and_rows(tmp_path):
    write_status(tmp_path, ReceiverStatus("EMC", endpoint="tcp://x:1", heartbeat_utc=NOW, snapshots_stored=7))
    write_status(tmp_path, _push_status(heartbeat_utc=NOW - 10, snapshots_stored=3, rejected_objects=2))
    assert sorted(p.name for p in (tmp_path / "status").iterdir()) == ["EMC-push.json", "EMC.json"]
    assert (tmp_path / "heartbeat.EMC-pushReceiver").read_text() == f"{int(NOW - 10)}\n"
    statuses = read_all_status(tmp_path)
    assert sorted((s.key, s.snapshots_stored) for s in statuses) == [("EMC", 7), ("EMC-push", 3)]
    table = status_panel(statuses, Settings(subsystems=("EMC",)), NOW)
    rows = table.children[1].children
    assert len(rows) == 2
    push_row = repr(rows[1])
    assert "'EMC-push'" in push_row and "http push" in push_row and "state-EMC-push" in push_row
    assert "'3'" in push_row and "'2'" in push_row
