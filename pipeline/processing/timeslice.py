"""Time slices: the histograms of any minute range inside a run, built from stored snapshots.

The edge rule: a window [min, max] is cut at the stored moments nearest to its edges. The upper edge
is the snapshot nearest to `max`; the lower edge is the moment nearest to `min` among the start of
run and the snapshots before the upper one. If both edges would fall on the same snapshot (a window
shorter than the spacing of the snapshots), the edge whose move costs less is moved to the neighbouring
snapshot, so a window always holds at least one snapshot's worth of data. A request that the
nearest moments do not even overlap (a window after a subsystem's last snapshot) gets nothing.
Then:
- cumulative mode (mergers accumulate; the default): `snapshot(upper) - snapshot(lower)`, or the upper
  snapshot alone when the lower edge is the start of run. What was recorded between the two snapshots
  is counted exactly once (the original subtracted the first snapshot *inside* the window, losing what
  was recorded before it);
- reset mode (mergers reset on request): the sum of the snapshots after the lower edge up to and
  including the upper one (each holds what arrived since the previous one).
The answer says what it returned ("requested 1-2 min, returned 1.0-2.1 min due to data").

Minutes count from the start of the run (its earliest snapshot of any subsystem), so "minute 3" is the
same moment for every subsystem.

Histograms are combined only when asked for, one row group's worth of names at a time (what the store
decodes anyway to read one histogram), so a page that shows a few histograms of a 500-histogram
snapshot reads a few row groups, and a reset-mode sum holds one snapshot's part at a time.
"""

from __future__ import annotations

import bisect
import enum
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from pipeline.histogram import Histogram
from pipeline.processing.options import OptionsError
from pipeline.processing.sizes import HeldBuffers
from pipeline.store import ROW_GROUP_MIN_ROWS, SnapshotStore
from pipeline.store_schema import parse_snapshot_id

log = logging.getLogger(__name__)

# Histograms combined per read: the fewest rows a store's row group holds, so one read of large maps
# decodes what it must decode anyway (groups of small ones hold more rows, within their bins' bound).
READ_CHUNK = ROW_GROUP_MIN_ROWS
# Combined histograms a slice keeps (least recently used dropped): a few pages' worth.
COMBINED_KEPT = 4 * READ_CHUNK
# Row groups read (cumulative mode) whose histograms are kept to combine when asked for: each holds
# the decoded row group of both snapshots (a few MB) alive.
RAW_CHUNKS_KEPT = 2


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
        # A window that starts after the run's last snapshot holds nothing: say so, not "no histogram".
        if self.min_minutes > run_length_minutes:
            raise OptionsError(
                "min_minutes",
                f"must be <= the run length ({run_length_minutes:g} min), got {self.min_minutes:g}",
            )
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
    """Which stored snapshots make up a window, decided from the snapshot list alone (no data read).

    `returned` is in minutes since the start of run. Its start is the time of the snapshot the window
    follows (subtracted in cumulative mode) when `after_snapshot` is set, else the start of run: no
    snapshot precedes the window, so its data are counted from the beginning.
    """

    run: int
    subsystem: str
    mode: MergerMode
    requested: Window
    later_snapshot_id: str | None = None
    earlier_snapshot_id: str | None = None  # cumulative: subtracted; None = nothing precedes the window
    summed_snapshot_ids: tuple[str, ...] = ()  # reset mode
    returned: Window | None = None
    after_snapshot: bool = False
    note: str = ""  # said after the description, e.g. where the data came from
    # Cumulative: the snapshots before `earlier_snapshot_id`, newest first (at most GAP_LOOKBACK), to
    # subtract instead for a histogram `earlier` lacks although the run had it (a rejected object).
    preceding_snapshot_ids: tuple[str, ...] = ()
    # Cumulative: the merger restarted inside the window (its histograms started again from zero). Each
    # id is the last snapshot before a restart, oldest first; `restart_minutes` the first one after.
    segment_end_snapshot_ids: tuple[str, ...] = ()
    restart_minutes: tuple[float, ...] = ()

    @property
    def used_snapshot_ids(self) -> tuple[str, ...]:
        if self.mode is MergerMode.RESET:
            return self.summed_snapshot_ids
        ids = (self.earlier_snapshot_id, *self.segment_end_snapshot_ids, self.later_snapshot_id)
        return tuple(s for s in ids if s)

    @property
    def restart_warning(self) -> str | None:
        """What a view says when the window spans merger restarts, else None."""
        if not self.restart_minutes:
            return None
        at = ", ".join(f"{minute:.1f}" for minute in self.restart_minutes)
        return (
            f"merger restarted inside the window (first snapshot after it at minute {at}): its histograms "
            "started again from zero, so the slice sums the segments; what was filled just before a "
            "restart and not yet sent is lost"
        )

    @property
    def is_empty(self) -> bool:
        return not self.used_snapshot_ids

    def describe(self) -> str:
        requested = (
            f"requested {_minutes(self.requested.min_minutes)}-{_minutes(self.requested.max_minutes)} min"
        )
        note = f" ({self.note})" if self.note else ""
        if self.returned is None:
            return f"{requested}: no snapshot in that range{note}"
        returned = f"returned {self.returned.min_minutes:.1f}-{self.returned.max_minutes:.1f} min"
        exact = math.isclose(
            self.returned.min_minutes, self.requested.min_minutes, abs_tol=0.05
        ) and math.isclose(self.returned.max_minutes, self.requested.max_minutes, abs_tol=0.05)
        return f"{requested}, {returned}" + ("" if exact else " due to data") + note

    @property
    def edge_error_minutes(self) -> float:
        """How far the returned edges are from the requested ones, together (inf: nothing returned)."""
        if self.returned is None:
            return math.inf
        return abs(self.returned.min_minutes - self.requested.min_minutes) + abs(
            self.returned.max_minutes - self.requested.max_minutes
        )

    def with_note(self, note: str) -> SlicePlan:
        return replace(self, note=note)


def _minutes(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def plan_slice(
    snapshots: pd.DataFrame,
    run: int,
    subsystem: str,
    window: Window,
    mode: MergerMode = MergerMode.CUMULATIVE,
) -> SlicePlan:
    """Choose the snapshots for `window` from a run's snapshot list (snapshot_id, snapshot_time_utc),
    counting minutes from its first snapshot."""
    snapshots = snapshots.sort_values("snapshot_time_utc", kind="stable")
    epochs = np.array([t.timestamp() for t in snapshots["snapshot_time_utc"]], dtype=np.float64)
    return plan_window(snapshots["snapshot_id"].tolist(), epochs, run, subsystem, window, mode)


# How many snapshots before a window's start a histogram missing there is looked for: a receiver
# rejects an object for a reply or two (a corrupt payload), not for many in a row.
GAP_LOOKBACK = 5
# Index standing for "the start of run" among the lower-edge candidates.
_RUN_START = -1


def plan_window(
    ids: list[str],
    epochs: np.ndarray,
    run: int,
    subsystem: str,
    window: Window,
    mode: MergerMode = MergerMode.CUMULATIVE,
    run_start_epoch: float | None = None,
    run_length_minutes: float | None = None,
    restarted: Callable[[str, str], bool] | None = None,
) -> SlicePlan:
    """`plan_slice` on plain arrays: snapshot ids and their unix times, oldest first.

    Minutes count from `run_start_epoch` (default: the first of these snapshots), and the window may
    reach to `run_length_minutes` (default: the last of them), so every subsystem of a run shares
    one clock even when its own snapshots began later than the run.

    `restarted(before_id, after_id)` says whether the merger restarted between two consecutive
    snapshots (cumulative mode; see `restarts.merger_restarted`): a window that spans restarts is
    never subtracted across one, its segments are summed (`SlicePlan.segment_end_snapshot_ids`).
    """
    plan = SlicePlan(run=run, subsystem=subsystem, mode=mode, requested=window)
    if run_start_epoch is None:
        run_start_epoch = float(epochs[0]) if len(ids) else 0.0
    minutes = (np.asarray(epochs, dtype=np.float64) - run_start_epoch) / 60.0
    if run_length_minutes is None:
        run_length_minutes = float(minutes[-1]) if len(ids) else 0.0
    window.validate(run_length_minutes=run_length_minutes)
    if not ids:
        return plan
    lower, upper = _nearest_edges(minutes, window)
    start = float(minutes[lower]) if lower != _RUN_START else 0.0
    returned = Window(start, float(minutes[upper]))
    if returned.max_minutes < window.min_minutes or returned.min_minutes > window.max_minutes:
        return plan  # the nearest data do not even overlap the request
    after_snapshot = lower != _RUN_START
    if mode is MergerMode.RESET:
        return replace(
            plan,
            summed_snapshot_ids=tuple(ids[lower + 1 : upper + 1]),
            returned=returned,
            after_snapshot=after_snapshot,
        )
    earlier = lower if after_snapshot else None
    preceding = list(range(lower - 1, max(0, lower - GAP_LOOKBACK) - 1, -1)) if after_snapshot else []
    segment_ends: list[int] = []
    if restarted is not None:
        first = 0 if earlier is None else earlier
        segment_ends = [i - 1 for i in range(first + 1, upper + 1) if restarted(ids[i - 1], ids[i])]
        # A histogram missing at the window's start is never counted from before a restart either.
        for position, index in enumerate(preceding):
            if restarted(ids[index], ids[index + 1]):
                preceding = preceding[:position]
                break
    return replace(
        plan,
        later_snapshot_id=ids[upper],
        earlier_snapshot_id=ids[earlier] if earlier is not None else None,
        returned=returned,
        after_snapshot=after_snapshot,
        preceding_snapshot_ids=tuple(ids[i] for i in preceding),
        segment_end_snapshot_ids=tuple(ids[i] for i in segment_ends),
        restart_minutes=tuple(float(minutes[i + 1]) for i in segment_ends),
    )


_RawChunk = tuple[Mapping[str, Histogram], Mapping[str, Histogram], list[Mapping[str, Histogram]]]


def _chunk_histograms(chunk: _RawChunk) -> list[Histogram]:
    later, earlier, segments = chunk
    return [*later.values(), *earlier.values(), *(h for segment in segments for h in segment.values())]


def _nearest_edges(minutes: np.ndarray, window: Window) -> tuple[int, int]:
    """(lower, upper): indices of the snapshots nearest to the window's edges (lower may be
    _RUN_START), lower < upper; see the module docstring."""
    # Lower-edge candidates: the start of run (minute 0), then every snapshot.
    moments = np.concatenate(([0.0], minutes))

    def nearest(values: np.ndarray, target: float) -> int:
        # Ties go to the earlier moment: the start of run over a first snapshot taken at that moment.
        return int(np.argmin(np.abs(values - target)))

    def error(lower: int, upper: int) -> float:
        return abs(moments[lower + 1] - window.min_minutes) + abs(minutes[upper] - window.max_minutes)

    upper = nearest(minutes, window.max_minutes)
    lower = nearest(moments, window.min_minutes) - 1
    if lower < upper:
        return lower, upper
    # Both edges on one snapshot: move the lower edge back, or the upper one forward, whichever is closer.
    options = [(nearest(moments[: upper + 1], window.min_minutes) - 1, upper)]
    if lower + 1 < len(minutes):
        options.append((lower, lower + 1 + nearest(minutes[lower + 1 :], window.max_minutes)))
    return min(options, key=lambda edges: error(*edges))


class SnapshotPart:
    """One snapshot as a slice reads it: its names, and histograms read a few at a time.

    `read(names)` returns the named histograms; `read(None)` returns them all (one scan of the file).
    """

    def __init__(
        self, names: Iterable[str], read: Callable[[list[str] | None], Mapping[str, Histogram]]
    ) -> None:
        self.names = frozenset(names)
        self._read = read

    @classmethod
    def stored(
        cls, store: SnapshotStore, snapshot_id: str, names: Iterable[str] | None = None
    ) -> SnapshotPart:
        """A stored snapshot; its names (given, or from the store's name column) but no histogram read."""
        if names is None:
            names = store.histogram_names(snapshot_id)
        return cls(names, lambda wanted: store.read_snapshot(snapshot_id, wanted)[1])

    @classmethod
    def in_memory(cls, histograms: Mapping[str, Histogram]) -> SnapshotPart:
        return cls(
            histograms,
            lambda names: {name: histograms[name] for name in (histograms if names is None else names)},
        )

    def only(self, names: Iterable[str]) -> SnapshotPart:
        """The same snapshot restricted to `names`."""
        restricted = self.names & set(names)
        return SnapshotPart(
            restricted, lambda wanted: self._read(sorted(restricted) if wanted is None else wanted)
        )

    def read(self, names: Iterable[str] | None) -> Mapping[str, Histogram]:
        """The histograms of `names` this snapshot holds (others are skipped); None: all of them."""
        if names is None:
            return self._read(None) if self.names else {}
        present = [name for name in names if name in self.names]
        return self._read(present) if present else {}


class SliceHistograms(Mapping[str, Histogram]):
    """The histograms of one window, each combined from the planned snapshots when first asked for.

    Cumulative mode (`parts` = [later, earlier] or [later]): `later - earlier` per name; a histogram
    absent from `earlier` first appeared in the window and is kept whole (the original dropped it).
    Reset mode: the sum of the parts, added one part at a time. Asking for one name reads the names
    of its row group too (at no extra decoding cost): in cumulative mode they are kept as read and
    subtracted when asked for, in reset mode summed with it. Bounded numbers of both are kept.
    """

    def __init__(
        self,
        mode: MergerMode,
        parts: list[SnapshotPart | Mapping[str, Histogram]],
        executor: Executor | None = None,
        preceding: Sequence[tuple[str, Callable[[], SnapshotPart]]] = (),
        segments: Sequence[SnapshotPart] = (),
    ) -> None:
        self.mode = mode
        # Cumulative, across merger restarts: the last snapshot before each restart, oldest first.
        self._segments = list(segments)
        # Cumulative: (label, opener) of the snapshots before `earlier`, newest first, opened (names
        # listed) only when a histogram is missing from `earlier`.
        self._preceding = list(preceding)
        self._opened: dict[int, SnapshotPart] = {}
        self._parts = [p if isinstance(p, SnapshotPart) else SnapshotPart.in_memory(p) for p in parts]
        self._executor = executor
        if not self._parts:
            names: set[str] = set()
        elif mode is MergerMode.RESET:
            names = set().union(*(part.names for part in self._parts))
        else:
            names = set(self._parts[0].names)
        self._names = sorted(names)
        self._name_set = frozenset(names)
        self._combined: OrderedDict[str, Histogram] = OrderedDict()
        self._raw: OrderedDict[int, _RawChunk] = OrderedDict()
        # The bytes of what the two above hold now (a cache weighs the slice by it).
        self.held = HeldBuffers()
        self.warnings: list[str] = []

    def __getitem__(self, name: str) -> Histogram:
        combined = self._combined.get(name)
        if combined is not None:
            self._combined.move_to_end(name)
            return combined
        if name not in self._name_set:
            raise KeyError(name)
        if self.mode is MergerMode.RESET:
            chunk = self._chunk_of(name)
            results = self._sum(chunk)
            for chunk_name in chunk:
                self._keep(chunk_name, results[chunk_name])
            return results[name]
        later, earlier, segments = self._raw_chunk(name)
        combined = self._difference(name, later[name], earlier.get(name), segments)
        self._keep(name, combined)
        return combined

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._name_set

    def materialized(self) -> dict[str, Histogram]:
        """Every histogram of the slice (for export and benchmarks): each snapshot read in one scan,
        a reset-mode sum still one snapshot at a time."""
        return self._combine(None)

    def _chunk_of(self, name: str) -> list[str]:
        index = bisect.bisect_left(self._names, name)
        start = index - index % READ_CHUNK
        chunk = self._names[start : start + READ_CHUNK]
        return [n for n in chunk if n == name or n not in self._combined]

    def _raw_chunk(self, name: str) -> _RawChunk:
        """The later, earlier (and segment-end) snapshots' histograms of the row group holding `name`."""
        index = bisect.bisect_left(self._names, name)
        start = index - index % READ_CHUNK
        raw = self._raw.get(start)
        if raw is None:
            raw = self._read_pair(self._names[start : start + READ_CHUNK])
            self._raw[start] = raw
            self.held.add(_chunk_histograms(raw))
            while len(self._raw) > RAW_CHUNKS_KEPT:
                self.held.remove(_chunk_histograms(self._raw.popitem(last=False)[1]))
        self._raw.move_to_end(start)
        return raw

    def _keep(self, name: str, histogram: Histogram) -> None:
        replaced = self._combined.pop(name, None)
        if replaced is not None:
            self.held.remove([replaced])
        self._combined[name] = histogram
        self.held.add([histogram])
        while len(self._combined) > COMBINED_KEPT:
            self.held.remove([self._combined.popitem(last=False)[1]])

    def _combine(self, names: list[str] | None) -> dict[str, Histogram]:
        """The combined histograms of `names` (None: all)."""
        if self.mode is MergerMode.RESET:
            return self._sum(names)
        return self._subtract(names)

    def _subtract(self, names: list[str] | None) -> dict[str, Histogram]:
        if not self._parts:
            return {}
        later, earlier, segments = self._read_pair(names)
        return {
            name: self._difference(name, later[name], earlier.get(name), segments)
            for name in (self._names if names is None else names)
        }

    def _read_pair(self, names: list[str] | None) -> _RawChunk:
        """`names` (None: all) as the later and the earlier snapshot (and the segment ends) hold them."""
        later_part = self._parts[0]
        earlier_part = self._parts[1] if len(self._parts) > 1 else None
        earlier: Mapping[str, Histogram] = {}
        if earlier_part is not None and self._executor is not None:
            # Parquet decoding releases the GIL: the two snapshots read side by side.
            pending = self._executor.submit(earlier_part.read, names)
            later = later_part.read(names)
            earlier = pending.result()
        else:
            later = later_part.read(names)
            earlier = earlier_part.read(names) if earlier_part is not None else {}
        return later, earlier, [segment.read(names) for segment in self._segments]

    def _difference(
        self,
        name: str,
        later: Histogram,
        earlier: Histogram | None,
        segments: Sequence[Mapping[str, Histogram]] = (),
    ) -> Histogram:
        if segments:
            return self._across_restarts(name, later, earlier, segments)
        if earlier is None:
            earlier = self._from_preceding(name)
        if earlier is None:
            return later
        if not later.same_binning(earlier):
            self._warn(f"{name}: binning changed inside the run; showing the later snapshot whole")
            return later
        return later - earlier

    def _across_restarts(
        self,
        name: str,
        later: Histogram,
        earlier: Histogram | None,
        segments: Sequence[Mapping[str, Histogram]],
    ) -> Histogram:
        """The sum of the segments between restarts: the first from `earlier` to its end, every later
        one whole (it counts from zero), never one snapshot subtracted from another across a restart."""
        total = later
        first = segments[0].get(name)
        if first is not None:
            total = self._added(name, total, self._difference(name, first, earlier))
        for segment in segments[1:]:
            if name in segment:
                total = self._added(name, total, segment[name])
        return total

    def _added(self, name: str, total: Histogram, part: Histogram) -> Histogram:
        if total.same_binning(part):
            return total + part
        self._warn(f"{name}: binning changed inside the run; a segment before a merger restart skipped")
        return total

    def _warn(self, message: str) -> None:
        # A histogram is combined again after the bounded caches dropped it: say things once.
        if message not in self.warnings:
            self.warnings.append(message)

    def _from_preceding(self, name: str) -> Histogram | None:
        """`name` from the newest snapshot before the window's start that holds it, when the one at the
        start lacks it: without that, a histogram the receiver once failed to store would count from
        the start of run. A histogram new in the window is in none of them and stays whole."""
        for index, (label, open_part) in enumerate(self._preceding):
            part = self._opened.get(index)
            if part is None:
                part = self._opened[index] = open_part()
            if name in part.names:
                self._warn(f"{name}: missing from the snapshot at the window's start; counted from {label}")
                return part.read([name])[name]
        return None

    def _sum(self, names: list[str] | None) -> dict[str, Histogram]:
        totals: dict[str, Histogram] = {}
        for part in _read_in_order(self._executor, lambda part: part.read(names), self._parts):
            for name, histogram in part.items():
                total = totals.get(name)
                if total is None:
                    totals[name] = histogram
                elif total.same_binning(histogram):
                    totals[name] = total + histogram
                else:
                    self._warn(f"{name}: binning changed inside the run; later part skipped")
        return totals


def _read_in_order(
    executor: Executor | None,
    read: Callable[[SnapshotPart], Mapping[str, Histogram]],
    parts: list[SnapshotPart],
    ahead: int = 2,
) -> Iterator[Mapping[str, Histogram]]:
    """`map(read, parts)`, with at most `ahead` reads running ahead of the consumer, so a sum over
    many snapshots holds a few parts at a time, not all of them."""
    if executor is None:
        yield from map(read, parts)
        return
    pending: deque = deque()
    for part in parts:
        pending.append(executor.submit(read, part))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def load_slice(
    store: SnapshotStore, plan: SlicePlan, names: list[str] | None = None, executor: Executor | None = None
) -> SliceHistograms:
    """The planned window's histograms, read lazily from the store (only `names`, if given)."""
    if plan.is_empty:
        return SliceHistograms(plan.mode, [])
    if plan.mode is MergerMode.RESET:
        snapshot_ids = list(plan.summed_snapshot_ids)
    else:
        snapshot_ids = [
            plan.later_snapshot_id,
            *([plan.earlier_snapshot_id] if plan.earlier_snapshot_id else []),
        ]
    # Names only (the store reads the name column); read side by side, they cost the time of one.
    mapper = executor.map if executor else map
    listed = mapper(store.histogram_names, snapshot_ids)
    parts = [
        SnapshotPart.stored(store, snapshot_id, snapshot_names)
        for snapshot_id, snapshot_names in zip(snapshot_ids, listed, strict=True)
    ]
    if names is not None:
        parts = [part.only(names) for part in parts]
    preceding = [
        (_time_label(snapshot_id), partial(SnapshotPart.stored, store, snapshot_id))
        for snapshot_id in plan.preceding_snapshot_ids
    ]
    segments = [SnapshotPart.stored(store, snapshot_id) for snapshot_id in plan.segment_end_snapshot_ids]
    if names is not None:
        segments = [part.only(names) for part in segments]
    return SliceHistograms(plan.mode, parts, executor, preceding, segments)


def _time_label(snapshot_id: str) -> str:
    key = parse_snapshot_id(snapshot_id)
    return f"the snapshot at {key.snapshot_time_utc:%H:%M:%S} UTC" if key else snapshot_id
