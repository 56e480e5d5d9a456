"""Time slices: the histograms of any minute range inside a run, built from stored snapshots.

Cumulative mode (mergers accumulate; the default): the content of [min, max] is
`snapshot(last at or before max) - snapshot(last strictly before min)`, or the later snapshot alone when
none precedes min. The original subtracted the first snapshot *inside* the window and so lost what was
recorded between the previous snapshot and that one; here the window's content is exact.
Reset mode (mergers reset on request): the window is the sum of the snapshots inside it.

Snapshot times are matched to the minute (minutes since the run's first snapshot, rounded), which absorbs
receiver jitter, and the result says what it really used ("requested 3-10 min, returned 2.9-10.1 min").
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.histogram import Histogram
from pipeline.processing.options import OptionsError

log = logging.getLogger(__name__)


class MergerMode(enum.StrEnum):
    CUMULATIVE = "cumulative"
    RESET = "reset"


@dataclass(frozen=True)
class Window:
    """Minutes since the start of run, as a user asks for them."""

    min_minutes: float
    max_minutes: float

    def validate(self, run_length_minutes: float) -> None:
        for name, value in (("min_minutes", self.min_minutes), ("max_minutes", self.max_minutes)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise OptionsError(name, f"must be a number of minutes, got {value!r}")
            if value < 0:
                raise OptionsError(name, f"must be >= 0, got {value:g}")
        if self.min_minutes > self.max_minutes:
            raise OptionsError(
                "min_minutes", f"must be <= max_minutes ({self.min_minutes:g} > {self.max_minutes:g})"
            )
        # Half a minute of slack: the run length itself is rounded to the minute for the sliders.
        if self.max_minutes > run_length_minutes + 0.5:
            raise OptionsError(
                "max_minutes",
                f"must be <= the run length ({run_length_minutes:g} min), got {self.max_minutes:g}",
            )


@dataclass(frozen=True)
class SlicePlan:
    """Which stored snapshots make up a window, decided from the snapshot list alone (no data read)."""

    run: int
    subsystem: str
    mode: MergerMode
    requested: Window
    later_snapshot_id: str | None = None
    earlier_snapshot_id: str | None = None  # cumulative: subtracted; None = nothing precedes the window
    summed_snapshot_ids: tuple[str, ...] = ()  # reset mode
    returned: Window | None = None

    @property
    def used_snapshot_ids(self) -> tuple[str, ...]:
        if self.mode is MergerMode.RESET:
            return self.summed_snapshot_ids
        return tuple(s for s in (self.earlier_snapshot_id, self.later_snapshot_id) if s)

    @property
    def is_empty(self) -> bool:
        return not self.used_snapshot_ids

    def describe(self) -> str:
        requested = (
            f"requested {_minutes(self.requested.min_minutes)}-{_minutes(self.requested.max_minutes)} min"
        )
        if self.returned is None:
            return f"{requested}: no snapshot in that range"
        returned = f"returned {self.returned.min_minutes:.1f}-{self.returned.max_minutes:.1f} min"
        exact = math.isclose(
            self.returned.min_minutes, self.requested.min_minutes, abs_tol=0.05
        ) and math.isclose(self.returned.max_minutes, self.requested.max_minutes, abs_tol=0.05)
        return f"{requested}, {returned}" + ("" if exact else " due to data")


def _minutes(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def plan_slice(
    snapshots: pd.DataFrame,
    run: int,
    subsystem: str,
    window: Window,
    mode: MergerMode = MergerMode.CUMULATIVE,
) -> SlicePlan:
    """Choose the snapshots for `window` from a run's snapshot list (snapshot_id, snapshot_time_utc)."""
    snapshots = snapshots.sort_values("snapshot_time_utc", kind="stable")
    epochs = np.array([t.timestamp() for t in snapshots["snapshot_time_utc"]], dtype=np.float64)
    return plan_window(snapshots["snapshot_id"].tolist(), epochs, run, subsystem, window, mode)


def plan_window(
    ids: list[str],
    epochs: np.ndarray,
    run: int,
    subsystem: str,
    window: Window,
    mode: MergerMode = MergerMode.CUMULATIVE,
) -> SlicePlan:
    """`plan_slice` on plain arrays: snapshot ids and their unix times, oldest first."""
    plan = SlicePlan(run=run, subsystem=subsystem, mode=mode, requested=window)
    if not ids:
        return plan
    minutes = (epochs - epochs[0]) / 60.0
    window.validate(run_length_minutes=float(minutes[-1]))
    # Matched to the minute: a snapshot counts at its own time and at its minute (half up), whichever
    # is more generous, so receiver jitter around a minute boundary does not move it out of a window.
    minute = np.floor(minutes + 0.5)
    at_or_before_max = (minutes <= window.max_minutes) | (minute <= window.max_minutes)
    before_min = (minutes < window.min_minutes) & (minute < window.min_minutes)
    if mode is MergerMode.RESET:
        inside = np.flatnonzero(at_or_before_max & ~before_min)
        if inside.size == 0:
            return plan
        first, last = int(inside[0]), int(inside[-1])
        # A reset snapshot holds what arrived since the previous one: its data start there.
        start = float(minutes[first - 1]) if first > 0 else 0.0
        return _with(plan, summed=tuple(ids[i] for i in inside), returned=(start, float(minutes[last])))
    candidates = np.flatnonzero(at_or_before_max)
    if candidates.size == 0:
        return plan
    later = int(candidates[-1])
    preceding = np.flatnonzero(before_min)
    earlier = int(preceding[-1]) if preceding.size else None
    if earlier is not None and earlier >= later:
        return plan  # the window holds no snapshot of its own
    start = float(minutes[earlier]) if earlier is not None else 0.0
    return _with(
        plan,
        later=ids[later],
        earlier=ids[earlier] if earlier is not None else None,
        returned=(start, float(minutes[later])),
    )


def _with(
    plan: SlicePlan,
    returned: tuple[float, float],
    later: str | None = None,
    earlier: str | None = None,
    summed: tuple[str, ...] = (),
) -> SlicePlan:
    return SlicePlan(
        run=plan.run,
        subsystem=plan.subsystem,
        mode=plan.mode,
        requested=plan.requested,
        later_snapshot_id=later,
        earlier_snapshot_id=earlier,
        summed_snapshot_ids=summed,
        returned=Window(*returned),
    )


class SliceHistograms(Mapping[str, Histogram]):
    """The histograms of one window, each combined from the planned snapshots when first asked for.

    Cumulative mode: `later - earlier` per name; a histogram absent from `earlier` first appeared in
    the window and is kept whole (the original dropped it). Reset mode: the sum of the parts. A page
    shows a few histograms of a 500-histogram snapshot, so only those are ever computed.
    """

    def __init__(self, mode: MergerMode, parts: list[Mapping[str, Histogram]]) -> None:
        self.mode = mode
        self._parts = parts
        if mode is MergerMode.RESET:
            self._names = sorted(set().union(*parts)) if parts else []
        else:
            self._names = sorted(parts[0]) if parts else []
        self._combined: dict[str, Histogram] = {}
        self.warnings: list[str] = []

    def __getitem__(self, name: str) -> Histogram:
        combined = self._combined.get(name)
        if combined is None:
            combined = self._combine(name)
            self._combined[name] = combined
        return combined

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return (
            any(name in part for part in self._parts)
            if self.mode is MergerMode.RESET
            else (bool(self._parts) and name in self._parts[0])
        )

    def materialized(self) -> dict[str, Histogram]:
        return {name: self[name] for name in self._names}

    def _combine(self, name: str) -> Histogram:
        if self.mode is MergerMode.RESET:
            present = [part[name] for part in self._parts if name in part]
            total = present[0]
            for histogram in present[1:]:
                if total.same_binning(histogram):
                    total = total + histogram
                else:
                    self.warnings.append(f"{name}: binning changed inside the run; later part skipped")
            return total
        later = self._parts[0][name]
        earlier = self._parts[1].get(name) if len(self._parts) > 1 else None
        if earlier is None:
            return later
        if not later.same_binning(earlier):
            self.warnings.append(f"{name}: binning changed inside the run; showing the later snapshot whole")
            return later
        return later - earlier


def load_slice(
    store, plan: SlicePlan, names: list[str] | None = None, executor: Executor | None = None
) -> SliceHistograms:
    """Read the planned snapshots (only `names`, if given), in parallel when an executor is given."""
    if plan.is_empty:
        return SliceHistograms(plan.mode, [])
    if plan.mode is MergerMode.RESET:
        snapshot_ids = list(plan.summed_snapshot_ids)
    else:
        snapshot_ids = [
            plan.later_snapshot_id,
            *([plan.earlier_snapshot_id] if plan.earlier_snapshot_id else []),
        ]

    def read(snapshot_id: str) -> Mapping[str, Histogram]:
        return store.read_snapshot(snapshot_id, names)[1]

    # Parquet decoding releases the GIL: two snapshots read side by side take the time of one.
    parts = list(executor.map(read, snapshot_ids)) if executor else [read(s) for s in snapshot_ids]
    return SliceHistograms(plan.mode, parts)
