"""The emulator's run clock: steps accumulate into runs like a real merger, and every fill is on record.

Time is cut into cycles of `run_length_s` of data taking followed by `run_gap_s` with no run. During a
run, each detector fills one step every `step_s` (fills at run start + step_s, + 2 step_s, ... strictly
before the end of the run); contents accumulate (cumulative mode, as the HLT mergers ran). At the end
of the run everything is cleared and the INFO string says `run=0` until the next run starts.

Each step's increments are a pure function of (seed, run number, step index, subsystem), so the state at
a given time does not depend on how often the clock was looked at, and `filled_between` can give the
exact truth for any window: recent steps come from a bounded cache, older ones are regenerated
bit-identically. The clock is injected (`now`), so tests step time without sleeping.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from pipeline.emulator.detectors import Detector, HistogramSpec, Increment, make_detector
from pipeline.emulator.faults import FaultPlan, apply_faults, fault_rng, rate_factor
from pipeline.histogram import Histogram

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TimeLike = float | datetime


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator's runs unfold. Times are POSIX seconds (UTC)."""

    step_s: float = 2.0
    run_length_s: float = 600.0
    run_gap_s: float = 20.0
    first_run: int = 300000
    seed: int = 7
    hlt_mode: str = "B"
    beam_type: str = "pp"
    # Origin of the run timeline (start of the first run); None means "the clock at construction".
    start_time_utc: float | None = None
    # Full increment arrays are kept for this many recent steps; older steps are regenerated on demand.
    cached_steps: int = 32
    # Step records (run, step, fill time) kept for `history()`.
    history_records: int = 100_000
    # Injected faults (`pipeline.emulator.faults`): "none", "demo" (one per run) or a spec string.
    faults: str = "none"

    def __post_init__(self) -> None:
        if not self.step_s > 0:
            raise ValueError(f"step_s must be > 0, got {self.step_s}")
        if not self.run_length_s > 0:
            raise ValueError(f"run_length_s must be > 0, got {self.run_length_s}")
        if self.run_gap_s < 0:
            raise ValueError(f"run_gap_s must be >= 0, got {self.run_gap_s}")
        if self.first_run <= 0:
            raise ValueError(f"first_run must be > 0 (run 0 means 'no run'), got {self.first_run}")
        if self.cached_steps < 0 or self.history_records < 0:
            raise ValueError("cached_steps and history_records must be >= 0")
        FaultPlan.parse(self.faults)  # a FaultSpecError (a ValueError) names what is wrong

    @property
    def fault_plan(self) -> FaultPlan:
        return FaultPlan.parse(self.faults)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> EmulatorConfig:
        """Config from `pipeline.settings.Settings` (its `emulator_*` fields), plus overrides."""
        values = {
            "step_s": settings.emulator_step_s,
            "run_length_s": settings.emulator_run_length_s,
            "run_gap_s": settings.emulator_run_gap_s,
            "first_run": settings.emulator_first_run,
            "seed": settings.emulator_seed,
        }
        for field_name in ("hlt_mode", "beam_type", "faults"):
            value = getattr(settings, f"emulator_{field_name}", None)
            if value is not None:
                values[field_name] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class StepRecord:
    """One fill: which run and step, and when (POSIX seconds, UTC)."""

    run_number: int
    step_index: int
    fill_time_utc: float


class RunSchedule:
    """Pure time arithmetic: which run is on at a time, and when each step fills."""

    def __init__(self, config: EmulatorConfig, origin_utc: float) -> None:
        self.config = config
        self.origin_utc = float(origin_utc)
        self.cycle_s = config.run_length_s + config.run_gap_s
        # Fills strictly before the end of the run: a fill at the very end would never be seen.
        self.steps_per_run = max(math.ceil(config.run_length_s / config.step_s - 1e-9) - 1, 0)

    def run_start_utc(self, run_index: int) -> float:
        return self.origin_utc + run_index * self.cycle_s

    def run_end_utc(self, run_index: int) -> float:
        return self.run_start_utc(run_index) + self.config.run_length_s

    def run_number(self, run_index: int) -> int:
        return self.config.first_run + run_index

    def run_index(self, run_number: int) -> int:
        return run_number - self.config.first_run

    def fill_time_utc(self, run_index: int, step_index: int) -> float:
        return self.run_start_utc(run_index) + (step_index + 1) * self.config.step_s

    def locate(self, time_utc: float) -> tuple[int, bool]:
        """(run index of the latest cycle started at `time_utc`, whether that run is taking data)."""
        if time_utc < self.origin_utc:
            return -1, False
        run_index = int((time_utc - self.origin_utc) // self.cycle_s)
        # Guard the floor division against rounding at cycle boundaries.
        while self.run_start_utc(run_index + 1) <= time_utc:
            run_index += 1
        while run_index > 0 and self.run_start_utc(run_index) > time_utc:
            run_index -= 1
        return run_index, time_utc < self.run_end_utc(run_index)

    def run_number_at(self, time_utc: float) -> int:
        """The run number taking data at `time_utc`, or 0 between runs."""
        run_index, in_run = self.locate(time_utc)
        return self.run_number(run_index) if in_run else 0

    def steps_filled_by(self, run_index: int, time_utc: float) -> int:
        """How many steps of a run have filled at `time_utc` (fill time <= time_utc)."""
        step_s = self.config.step_s
        guess = int((time_utc - self.run_start_utc(run_index)) // step_s)
        count = min(max(guess, 0), self.steps_per_run)
        while count < self.steps_per_run and self.fill_time_utc(run_index, count) <= time_utc:
            count += 1
        while count > 0 and self.fill_time_utc(run_index, count - 1) > time_utc:
            count -= 1
        return count

    def fills_between(self, t0_utc: float, t1_utc: float) -> list[StepRecord]:
        """Every scheduled fill with t0 < fill time <= t1, in time order."""
        if t1_utc <= t0_utc or t1_utc < self.origin_utc:
            return []
        first_index = max(self.locate(t0_utc)[0], 0)
        last_index = self.locate(t1_utc)[0]
        records = []
        for run_index in range(first_index, last_index + 1):
            start = self.steps_filled_by(run_index, t0_utc)
            stop = self.steps_filled_by(run_index, t1_utc)
            records += [
                StepRecord(self.run_number(run_index), step, self.fill_time_utc(run_index, step))
                for step in range(start, stop)
            ]
        return records


# Arrays up to this many bins (e.g. the EMC per-supermodule maps) are cached as they are.
_KEEP_DENSE_BELOW = 1024


class _CompactArray:
    """An array stored in as few bytes as keeps it exact: sparse and/or int32 when possible."""

    __slots__ = ("data", "indices", "shape")

    def __init__(self, array: np.ndarray) -> None:
        self.shape = array.shape
        if array.size <= _KEEP_DENSE_BELOW:
            # Compacting a few hundred bins costs more time than the bytes it saves are worth.
            self.indices: np.ndarray | None = None
            self.data = np.asarray(array, dtype=np.float64)
            return
        flat = array.ravel()
        nonzero = np.flatnonzero(flat)
        data = _exact_small(flat[nonzero])
        if nonzero.size * (4 + data.itemsize) < flat.size * data.itemsize:
            self.indices = nonzero.astype(np.int32)
            self.data = data
        else:
            self.indices = None
            # The nonzero values decided the type: zeros are exact in either.
            self.data = flat.astype(data.dtype)

    def dense(self) -> np.ndarray:
        if self.indices is None:
            return self.data.astype(np.float64).reshape(self.shape)
        out = np.zeros(math.prod(self.shape))
        out[self.indices] = self.data
        return out.reshape(self.shape)


def _exact_small(values: np.ndarray) -> np.ndarray:
    """int32 when every value is an integer that fits, else float64 (so conversion back is exact)."""
    if values.size:
        # One cast and one comparison: a value that is not an integer in int32's range (or is NaN)
        # does not survive the round trip.
        with np.errstate(invalid="ignore"):
            as_int32 = values.astype(np.int32)
        if np.array_equal(as_int32, values):
            return as_int32
    return values.astype(np.float64)


class _CompactIncrement:
    __slots__ = ("entries", "values", "variances")

    def __init__(self, increment: Increment) -> None:
        self.values = _CompactArray(increment.values_flow)
        # Unweighted fills (most of them) have variances equal to values: store them once.
        same = np.array_equal(increment.values_flow, increment.variances_flow)
        self.variances = None if same else _CompactArray(increment.variances_flow)
        self.entries = increment.entries

    def expand(self) -> Increment:
        values = self.values.dense()
        variances = values.copy() if self.variances is None else self.variances.dense()
        return Increment(values, variances, self.entries)


class SyntheticRuns:
    """Detectors driven by the run clock: accumulated objects, resets, and the record of every fill.

    Thread-safe: the merger's server thread and a test (or the status panel) may call in concurrently.
    """

    def __init__(
        self,
        subsystems: Sequence[str] = ("EMC", "TPC", "HLT"),
        config: EmulatorConfig | None = None,
        now: Clock = time.time,
    ) -> None:
        self.config = config or EmulatorConfig()
        self._fault_plan = self.config.fault_plan
        self._now = now
        origin = self.config.start_time_utc if self.config.start_time_utc is not None else now()
        self.schedule = RunSchedule(self.config, origin)
        self.detectors: dict[str, Detector] = {
            subsystem: make_detector(
                subsystem,
                step_s=self.config.step_s,
                beam_type=self.config.beam_type,
                hlt_mode=self.config.hlt_mode,
            )
            for subsystem in dict.fromkeys(subsystems)
        }
        self._owner: dict[str, str] = {}
        for subsystem, detector in self.detectors.items():
            for name in detector.specs:
                if name in self._owner:
                    raise ValueError(f"{name} is declared by both {self._owner[name]} and {subsystem}")
                self._owner[name] = subsystem
        self.lock = threading.RLock()
        self._accumulated: dict[str, list[Any]] = {}  # name -> [values_flow, variances_flow, entries]
        self._object_versions: dict[str, int] = {}
        self._version_counter = 0
        self._current_run_index: int | None = None
        self._next_step = 0
        self._clock_high_water = -math.inf
        self._history: deque[StepRecord] = deque(maxlen=self.config.history_records)
        self._cache: OrderedDict[tuple[int, int], dict[str, _CompactIncrement]] = OrderedDict()
        self.steps_filled = 0
        self.runs_ended = 0

    # --- clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        return self._now()

    def advance(self, now_utc: float | None = None) -> int:
        """Bring the state up to `now_utc` (default: the clock); returns how many steps were filled.

        Only the run taking data at `now_utc` is filled (from its first step, if it has just come into
        view): a run that ended entirely unobserved would be cleared anyway. Time going backwards is
        ignored.
        """
        time_utc = self._now() if now_utc is None else float(now_utc)
        with self.lock:
            if time_utc < self._clock_high_water:
                return 0
            self._clock_high_water = time_utc
            run_index, in_run = self.schedule.locate(time_utc)
            if self._current_run_index is not None and (run_index != self._current_run_index or not in_run):
                self._end_run()
            if not in_run:
                return 0
            if self._current_run_index is None:
                self._current_run_index = run_index
                self._next_step = 0
                log.info("run %d started", self.schedule.run_number(run_index))
            target = self.schedule.steps_filled_by(run_index, time_utc)
            filled = 0
            while self._next_step < target:
                self._fill_step(run_index, self._next_step)
                self._next_step += 1
                filled += 1
            return filled

    def _fill_step(self, run_index: int, step_index: int) -> None:
        run_number = self.schedule.run_number(run_index)
        compact: dict[str, _CompactIncrement] = {}
        for subsystem in self.detectors:
            for name, increment in self._generate(run_number, step_index, subsystem).items():
                self._accumulate(name, increment)
                if self.config.cached_steps:
                    compact[name] = _CompactIncrement(increment)
        if self.config.cached_steps:
            self._cache[(run_number, step_index)] = compact
            while len(self._cache) > self.config.cached_steps:
                self._cache.popitem(last=False)
        self._history.append(
            StepRecord(run_number, step_index, self.schedule.fill_time_utc(run_index, step_index))
        )
        self.steps_filled += 1

    def _accumulate(self, name: str, increment: Increment) -> None:
        held = self._accumulated.get(name)
        if held is None:
            # A fresh object (new run or after a reset) is created by its first fill.
            self._accumulated[name] = [
                np.array(increment.values_flow, dtype=np.float64),
                np.array(increment.variances_flow, dtype=np.float64),
                float(increment.entries),
            ]
        else:
            held[0] += increment.values_flow
            held[1] += increment.variances_flow
            held[2] += increment.entries
        self._bump(name)

    def _end_run(self) -> None:
        assert self._current_run_index is not None
        log.info("run %d ended: merger cleared", self.schedule.run_number(self._current_run_index))
        for name in list(self._accumulated):
            self._bump(name)
        self._accumulated.clear()
        self._current_run_index = None
        self._next_step = 0
        self.runs_ended += 1

    def _bump(self, name: str) -> None:
        self._version_counter += 1
        self._object_versions[name] = self._version_counter

    def _generate(self, run_number: int, step_index: int, subsystem: str) -> dict[str, Increment]:
        rng = self.step_rng(run_number, step_index, subsystem)
        minute = (step_index + 1) * self.config.step_s / 60.0  # the fill's time into the run
        run_index = self.schedule.run_index(run_number)
        faults = self._fault_plan.active(run_index, run_number, minute, subsystem)
        if not faults:
            return self.detectors[subsystem].fill(step_index, rng)
        increments = self.detectors[subsystem].fill(step_index, rng, rate_factor(faults))
        return apply_faults(
            faults, increments, fault_rng(self.config.seed, run_number, step_index, subsystem)
        )

    def faults_in_run(self, run_number: int) -> list:
        """The faults injected in one run (`pipeline.emulator.faults.Fault`), started or not."""
        return self._fault_plan.in_run(self.schedule.run_index(run_number), run_number)

    def step_rng(self, run_number: int, step_index: int, subsystem: str) -> np.random.Generator:
        """The generator of one step of one detector: reproducible from the seed alone."""
        entropy = [self.config.seed, run_number, step_index, zlib.crc32(subsystem.encode())]
        return np.random.default_rng(np.random.SeedSequence(entropy))

    # --- what a merger holds ---------------------------------------------------------------------

    @property
    def run_number(self) -> int:
        """Run the objects belong to, 0 between runs (after the end-of-run reset)."""
        with self.lock:
            if self._current_run_index is None:
                return 0
            return self.schedule.run_number(self._current_run_index)

    def info(self) -> str:
        """The INFO string a merger forwards: run, HLT mode, beam type; `run=0` between runs."""
        run_number = self.run_number
        if run_number == 0:
            return "run=0"
        return f"run={run_number};HLT_MODE={self.config.hlt_mode};BEAM_TYPE={self.config.beam_type}"

    def names(self) -> list[str]:
        """Objects currently held (sorted byte-wise)."""
        with self.lock:
            return sorted(self._accumulated, key=str.encode)

    @property
    def declared_names(self) -> list[str]:
        return sorted(self._owner, key=str.encode)

    def spec(self, name: str) -> HistogramSpec:
        try:
            return self.detectors[self._owner[name]].specs[name]
        except KeyError:
            raise KeyError(f"no detector declares {name!r}") from None

    def subsystem_of(self, name: str) -> str:
        return self._owner[name]

    def object_version(self, name: str) -> int:
        """Changes whenever the object's contents change (fill, reset, end of run)."""
        with self.lock:
            return self._object_versions.get(name, 0)

    def snapshot(self, names: Iterable[str] | None = None) -> dict[str, Histogram]:
        """Copies of the accumulated objects (all held ones by default); unknown names are skipped."""
        with self.lock:
            selected = self._accumulated if names is None else [n for n in names if n in self._accumulated]
            return {name: self.spec(name).histogram(Increment(*self._accumulated[name])) for name in selected}

    def erase(self, names: Iterable[str]) -> None:
        """Drop objects, as `-ResetOnRequest` does: they reappear with the next fill only."""
        with self.lock:
            for name in names:
                if self._accumulated.pop(name, None) is not None:
                    self._bump(name)

    # --- the record ------------------------------------------------------------------------------

    def history(self) -> list[StepRecord]:
        """Fills actually performed, oldest first (bounded by `history_records`)."""
        with self.lock:
            return list(self._history)

    def fills_between(self, t0_utc: TimeLike, t1_utc: TimeLike) -> list[StepRecord]:
        """Fills with t0 < fill time <= t1 (t1 capped at the clock: nothing is filled in the future)."""
        t1 = min(_epoch(t1_utc), self._now())
        return self.schedule.fills_between(_epoch(t0_utc), t1)

    def step_increments(self, run_number: int, step_index: int, subsystem: str) -> dict[str, Increment]:
        """What one detector filled in one step: from the cache, else regenerated exactly."""
        with self.lock:
            cached = self._cache.get((run_number, step_index))
            if cached is not None:
                names = self.detectors[subsystem].specs
                return {name: cached[name].expand() for name in names}
        return self._generate(run_number, step_index, subsystem)

    def filled_between(self, name: str, t0_utc: TimeLike, t1_utc: TimeLike) -> Histogram:
        """Exact sum of what was filled into `name` with fill time in (t0, t1].

        Compare with `received_at_t1 - received_at_t0` of a cumulative merger (same run, no reset in
        between). Old steps are regenerated, so a long window costs about as much as filling it did.
        """
        histogram_spec = self.spec(name)
        subsystem = self._owner[name]
        total = histogram_spec.zero_increment()
        values, variances, entries = total.values_flow, total.variances_flow, 0.0
        for record in self.fills_between(t0_utc, t1_utc):
            increment = self.step_increments(record.run_number, record.step_index, subsystem)[name]
            values += increment.values_flow
            variances += increment.variances_flow
            entries += increment.entries
        return histogram_spec.histogram(Increment(values, variances, entries))


def _epoch(value: TimeLike) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime or POSIX seconds")
        return value.timestamp()
    return float(value)
