"""An emulated EMC run stored as a receiver would store it, for the browser tests and benchmarks: the
emulator says exactly what it filled, so what a page plots can be checked against the truth."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.clocks import ManualClock
from tests.display_names import FASTOR_L0_LABEL as FASTOR_L0_LABEL  # re-exported for the page tests

RUN = 5000
FASTOR_L0 = "EMCTRQA_histFastORL0"
# What the run page calls it (its ROOT title: `pipeline.detectors.names`), in the list and over the plot
# (plotly's title text, HTML-escaped).
FASTOR_L0_PLOT_TITLE = "FastOR L0 (hits with ADC &gt; 0)"
FASTOR_L0_AMP_LABEL = "FastOR L0 amplitude (hits weighted with ADC value)"


class EmulatedRun:
    """An EMC run from the emulator, stored as a receiver would: one cumulative snapshot a minute."""

    def __init__(self, data_dir: Path, start_utc: float, merger_reset: bool = False) -> None:
        self.merger_reset = merger_reset
        self.clock = ManualClock(start_utc)
        config = EmulatorConfig(step_s=20.0, run_length_s=600.0, first_run=RUN, start_time_utc=start_utc)
        self.runs = SyntheticRuns(("EMC",), config, now=self.clock)
        self.store = SnapshotStore(data_dir)
        self.start_utc = start_utc
        self.n_snapshots = 0

    @classmethod
    def live(cls, data_dir: Path, n_snapshots: int, merger_reset: bool = False) -> EmulatedRun:
        """A run of `n_snapshots` stored snapshots that started so that its newest one is seconds old:
        the run is live."""
        newest_age_s = 5.0
        start_utc = time.time() - cls.snapshot_offset_s(n_snapshots - 1) - newest_age_s
        run = cls(data_dir, start_utc, merger_reset=merger_reset)
        for _ in range(n_snapshots):
            run.store_snapshot()
        return run

    @staticmethod
    def snapshot_offset_s(index: int) -> float:
        """When snapshot `index` is taken, in seconds from the start of run: the first 50 s into the
        run, then one a minute (minutes 0, 1, 2, ... of the run)."""
        return 50.0 + 60.0 * index

    def store_snapshot(self) -> None:
        self.clock.time_utc = self.start_utc + self.snapshot_offset_s(self.n_snapshots)
        self.runs.advance(self.clock.time_utc)
        held = self.runs.snapshot()
        when = datetime.fromtimestamp(self.clock.time_utc, UTC)
        meta = SnapshotMeta(RUN, "EMC", when, "B", "pp", merger_reset=self.merger_reset)
        self.store.write_snapshot(meta, list(held.values()))
        self.n_snapshots += 1
        if self.merger_reset:
            self.runs.erase(list(held))  # as -ResetOnRequest does: the next snapshot is an increment
