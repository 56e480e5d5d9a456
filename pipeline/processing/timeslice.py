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
from dataclasses import dataclass, field

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


def minutes_into_run(snapshot_times: pd.Series) -> np.ndarray:
    """Minutes since the run's first snapshot for each snapshot time (sorted ascending)."""
    seconds = (snapshot_times - snapshot_times.iloc[0]).dt.total_seconds().to_numpy()
    return seconds / 60.0


def plan_slice(
    snapshots: pd.DataFrame,
    run: int,
    subsystem: str,
    window: Window,
    mode: MergerMode = MergerMode.CUMULATIVE,
) -> SlicePlan:
    """Choose the snapshots for `window` from a run's snapshot list (snapshot_id, snapshot_time_utc)."""
    plan = SlicePlan(run=run, subsystem=subsystem, mode=mode, requested=window)
    if snapshots.empty:
        return plan
    snapshots = snapshots.sort_values("snapshot_time_utc", kind="stable").reset_index(drop=True)
    minutes = minutes_into_run(snapshots["snapshot_time_utc"])
    window.validate(run_length_minutes=float(minutes[-1]))
    # Matched to the minute: a snapshot counts at its own time and at its minute (half up), whichever
    # is more generous, so receiver jitter around a minute boundary does not move it out of a window.
    minute = np.floor(minutes + 0.5)
    at_or_before_max = (minutes <= window.max_minutes) | (minute <= window.max_minutes)
    before_min = (minutes < window.min_minutes) & (minute < window.min_minutes)
    ids = snapshots["snapshot_id"].tolist()
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


@dataclass
class SliceContent:
    """The histograms of one window, plus what was done to get them."""

    plan: SlicePlan
    histograms: dict[str, Histogram] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def subtract_snapshots(later: dict[str, Histogram], earlier: dict[str, Histogram]) -> tuple[dict, list[str]]:
    """later - earlier per name; a histogram absent from `earlier` appeared in the window: kept whole."""
    result: dict[str, Histogram] = {}
    warnings: list[str] = []
    for name, histogram in later.items():
        previous = earlier.get(name)
        if previous is None:
            result[name] = histogram
        elif not histogram.same_binning(previous):
            warnings.append(f"{name}: binning changed inside the run; showing the later snapshot whole")
            result[name] = histogram
        else:
            result[name] = histogram - previous
    return result, warnings


def sum_snapshots(snapshots: list[dict[str, Histogram]]) -> tuple[dict, list[str]]:
    """Reset mode: the window is the sum of its snapshots, name by name."""
    result: dict[str, Histogram] = {}
    warnings: list[str] = []
    for snapshot in snapshots:
        for name, histogram in snapshot.items():
            total = result.get(name)
            if total is None:
                result[name] = histogram
            elif total.same_binning(histogram):
                result[name] = total + histogram
            else:
                warnings.append(f"{name}: binning changed inside the run; later part skipped")
    return result, warnings


def load_slice(store, plan: SlicePlan, names: list[str] | None = None) -> SliceContent:
    """Read the planned snapshots (only `names`, if given) and combine them into the window's content."""
    content = SliceContent(plan=plan)
    if plan.is_empty:
        return content
    if plan.mode is MergerMode.RESET:
        parts = [store.read_snapshot(s, names)[1] for s in plan.summed_snapshot_ids]
        content.histograms, content.warnings = sum_snapshots(parts)
        return content
    later = store.read_snapshot(plan.later_snapshot_id, names)[1]
    if plan.earlier_snapshot_id is None:
        content.histograms = later
        return content
    earlier = store.read_snapshot(plan.earlier_snapshot_id, names)[1]
    content.histograms, content.warnings = subtract_snapshots(later, earlier)
    return content
