"""The main job's supervisor: a child that dies is restarted after a back-off that doubles while it keeps
dying, and nothing is restarted once the job stops."""

import sys
import time

import pytest

from app import Supervisor, _label

DIES = [sys.executable, "-c", "import sys; sys.exit(3)"]
LIVES = [sys.executable, "-c", "import time; time.sleep(30)"]


def _wait_exit(supervisor: Supervisor, index: int) -> None:
    supervisor.children[index].wait(timeout=10)


def test_a_dying_child_is_restarted_with_a_doubling_back_off():
    supervisor = Supervisor([DIES, LIVES], min_backoff_s=1.0, max_backoff_s=4.0)
    supervisor.start()
    try:
        long_lived = supervisor.children[1]
        _wait_exit(supervisor, 0)
        t0 = time.monotonic()
        supervisor.poll(now=t0)  # noticed: restart due in 1 s
        assert supervisor.children[0] is None
        supervisor.poll(now=t0 + 0.9)
        assert supervisor.children[0] is None and supervisor.restarts == [0, 0]
        supervisor.poll(now=t0 + 1.0)
        assert supervisor.children[0] is not None and supervisor.restarts == [1, 0]

        _wait_exit(supervisor, 0)
        supervisor.poll(now=t0 + 1.5)  # died again quickly: 2 s this time
        supervisor.poll(now=t0 + 3.4)
        assert supervisor.restarts[0] == 1
        supervisor.poll(now=t0 + 3.5)
        assert supervisor.restarts[0] == 2
        for delay in (4.0, 4.0):  # capped at max_backoff_s
            _wait_exit(supervisor, 0)
            now = supervisor._started_at[0] + 0.1
            supervisor.poll(now=now)
            supervisor.poll(now=now + delay - 0.01)
            restarts = supervisor.restarts[0]
            supervisor.poll(now=now + delay)
            assert supervisor.restarts[0] == restarts + 1
        assert supervisor.children[1] is long_lived and long_lived.poll() is None
    finally:
        supervisor.stop(grace_s=5)
    assert all(child is None or child.poll() is not None for child in supervisor.children)


def test_nothing_is_restarted_after_stop():
    supervisor = Supervisor([LIVES])
    supervisor.start()
    child = supervisor.children[0]
    supervisor.stop(grace_s=5)
    assert child.returncode is not None
    supervisor.poll(now=time.monotonic() + 3600)
    assert supervisor.children[0] is child and supervisor.restarts == [0]


@pytest.mark.parametrize(
    ("command", "label"),
    [
        (
            [sys.executable, "-m", "pipeline", "receiver", "--endpoint", "tcp://x:1", "--subsystem"],
            "receiver --endpoint tcp://x:1",
        ),
        (DIES, f"{sys.executable} -c import sys; sys.exit(3)"),
    ],
)
def test_log_label(command, label):
    assert _label(command) == label
