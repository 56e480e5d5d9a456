"""Receivers' status files kept fresh during a browser test, as running receivers keep them.

A loaded machine can take a minute over one browser test; status files written once would turn stale
on their own (a merger looks silent 20 s after its last reply), and the test would check the clock
instead of the page. `LiveReceivers` rewrites each status every 0.5 s from a factory, with the times a
test wants kept at a fixed age ("heartbeat 120 s old") and other fields overridden.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.status import ReceiverStatus, write_status

StatusFactory = Callable[[str, float], ReceiverStatus]  # (subsystem, now) -> a fresh, flowing status


def flowing_status(subsystem: str, now: float, run: int, **fields: Any) -> ReceiverStatus:
    """A receiver on `run` asking every 5 s with a 10 s timeout, started 15 minutes ago, everything fresh
    at `now` (a heartbeat, a reply and a snapshot 1 s ago); `fields` override."""
    defaults: dict[str, Any] = dict(
        subsystem=subsystem,
        endpoint="tcp://127.0.0.1:60321",
        started_utc=now - 900,
        heartbeat_utc=now - 1,
        period_s=5.0,
        timeout_s=10.0,
        last_reply_utc=now - 1,
        last_snapshot_utc=now - 1,
        last_run=run,
    )
    return ReceiverStatus(**{**defaults, **fields})


class LiveReceivers:
    def __init__(self, data_dir: Path, subsystems: Sequence[str], fresh: StatusFactory) -> None:
        self.data_dir = data_dir
        self.subsystems = tuple(subsystems)
        self.fresh = fresh
        self._ages: dict[str, dict[str, float]] = {}
        self._fields: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.write()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def set(self, subsystem: str, ages: dict[str, float] | None = None, **fields: Any) -> None:
        """From now on, `subsystem`'s status has these `*_utc` fields always `ages` seconds old and these
        other fields; anything not named is fresh. Written at once."""
        with self._lock:
            self._ages[subsystem] = dict(ages or {})
            self._fields[subsystem] = fields
        self.write()

    def reset(self, subsystem: str) -> None:
        self.set(subsystem)

    def write(self) -> None:
        now = time.time()
        with self._lock:
            for subsystem in self.subsystems:
                ages = {name: now - age for name, age in self._ages.get(subsystem, {}).items()}
                status = self.fresh(subsystem, now)
                for name, value in {**ages, **self._fields.get(subsystem, {})}.items():
                    setattr(status, name, value)
                write_status(self.data_dir, status)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.write()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
