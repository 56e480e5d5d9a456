"""The processing service: what the dashboard asks for, computed from snapshots and cached.

A view is one run and subsystem, over the whole run or a minute window, with processing options. It is
built from the snapshots the window really uses, passed through the detector plug-in (derived
histograms, scaling by the window's own nEvents, draw hints, checks), and cached on disk (diskcache,
bounded) and in memory (bounded by count and by the bytes of the histograms held, `Settings.
processing_memory_bytes`) under (run, subsystem, source, mode, snapshot ids used, options). Two requests
that differ in any option never share a result (the original's issue #25), and clearing the cache loses
nothing: every view can be rebuilt from the stored snapshots.

Building a view reads no histogram but the events one: names come from the store's name column, and
each histogram is read, combined, scaled and checked when a page first asks for it.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import diskcache
import numpy as np
import pandas as pd

from pipeline.detectors import plugin_for
from pipeline.detectors.base import (
    DetectorPlugin,
    Group,
    ProcessedHistogram,
    Stack,
    count_events,
    group_histograms,
    process_histogram,
)
from pipeline.histogram import Histogram
from pipeline.liveness import QCLiveness
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.restarts import merger_restarted
from pipeline.processing.runs import (
    HLT,
    RunInfo,
    RunSummary,
    RunTimeline,
    RunTimelines,
    list_runs,
    summarize_runs,
)
from pipeline.processing.sizes import HeldBuffers, owning_its_arrays
from pipeline.processing.timeslice import (
    MergerMode,
    SliceHistograms,
    SlicePlan,
    Window,
    load_slice,
    plan_window,
)
from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.alarm_config import (
    AlarmConfig,
    ThresholdChange,
    load_alarm_config,
    load_changes,
    set_threshold,
    threshold_changes,
)
from pipeline.qc.alarm_parameters import AlarmParameter, alarm_parameters
from pipeline.qc.alarms import limits_for
from pipeline.qc.evaluate import WithDerived
from pipeline.qc.history import channel_history
from pipeline.qc.quality_reads import latest_checks, latest_quality, subsystem_quality
from pipeline.qc.references import ReferenceRun, get_reference, set_reference
from pipeline.qc.trend_store import TrendStore
from pipeline.settings import Settings
from pipeline.store import BoundedCache, SnapshotStore
from pipeline.system_status import ReceiverReport, SystemMonitor, SystemStatus

log = logging.getLogger(__name__)

# Bump when the cached value's meaning changes, so old entries are never read as new ones.
CACHE_FORMAT = 4
VIEW_ENTRY = "<view>"  # disk-cache key suffix of a view's skeleton; histogram names never look like it
DEFAULT_CACHE_BYTES = 2 * 1024**3
# SQLite's page cache of the disk cache, per connection (diskcache opens one per thread), in 4 KB pages.
# diskcache's default (8,192 pages, 32 MB) filled at ~1 MB a minute in a control-room soak and was most of
# a worker's steady growth, times ~5 threads; reads go through SQLite's mmap of the file anyway.
DISK_CACHE_SQLITE_PAGES = 1024
# Views and slices kept in memory, each (least recently used dropped); their bytes are bounded too, by
# Settings.processing_memory_bytes: a count alone let a few slices of big runs take hundreds of MB.
MEMORY_ENTRIES = 16
# Restart answers (one per pair of consecutive snapshots, ~0.1-0.2 KB each): bounded, since a dashboard runs
# for days while snapshots keep arriving; 32768 covers a 45-hour run of one subsystem at one per 5 s.
RESTART_ANSWERS_KEPT = 32768


@dataclass(frozen=True)
class ViewSkeleton:
    """What a page needs before any histogram: small, so it is what the disk cache keeps per view."""

    n_events: float | None
    groups: list[tuple[Group, list[str]]]
    stacks: list[Stack]


class ViewContent(Mapping[str, Histogram]):
    """The histograms a view shows before processing, each made when first asked for: the slice's own
    (only this subsystem's when read from HLT files, the original's scenario 1) and the plug-in's
    derived ones, which read only their sources."""

    def __init__(self, plugin: DetectorPlugin, histograms: SliceHistograms, own_only: bool) -> None:
        self._plugin = plugin
        self._histograms = histograms
        stored = [name for name in histograms if not own_only or plugin.is_own_histogram(name)]
        self._stored = frozenset(stored)
        self._derived_names = frozenset(plugin.derived_names(stored)) - self._stored
        self._names = sorted(self._stored | self._derived_names)
        self._derived: dict[str, Histogram] = {}
        self._derived_held = HeldBuffers()
        # Dash serves callbacks from several threads; a slice's caches are not thread-safe.
        self._lock = threading.RLock()

    @property
    def warnings(self) -> list[str]:
        return list(self._histograms.warnings)

    @property
    def live_warnings(self) -> list[str]:
        """The slice's list of warnings itself, which grows as histograms are read (a view keeps it
        rather than the whole slice)."""
        return self._histograms.warnings

    @property
    def nbytes(self) -> int:
        """Bytes of the histograms this slice holds now (read, combined, derived): its cache weight."""
        with self._lock:
            return self._histograms.held.nbytes + self._derived_held.nbytes

    def __getitem__(self, name: str) -> Histogram:
        with self._lock:
            if name in self._derived_names:
                if name not in self._derived:
                    self._derived[name] = self._plugin.derive(name, self._stored_only())
                    self._derived_held.add([self._derived[name]])
                return self._derived[name]
            if name not in self._stored:
                raise KeyError(name)
            return self._histograms[name]

    def _stored_only(self) -> Mapping[str, Histogram]:
        return _Subset(self._histograms, self._stored)

    def __contains__(self, name: object) -> bool:
        return name in self._stored or name in self._derived_names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Subset(Mapping[str, Histogram]):
    """Some names of a lazy mapping, still lazy."""

    def __init__(self, source: Mapping[str, Histogram], names: frozenset[str]) -> None:
        self._source = source
        self._names = names

    def __getitem__(self, name: str) -> Histogram:
        if name not in self._names:
            raise KeyError(name)
        return self._source[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)


ContentLoader = Callable[[], ViewContent]


class _WrittenWhenIdle:
    """The disk cache, with processed histograms written by a background thread once requests pause.

    Storing one (pickle, and a SQLite commit or a file) takes a fraction of a millisecond to a
    millisecond; it serves later requests, not this one, so it must not slow this one down, nor the
    next one a user makes right after it. Writes wait until no new one came for QUIET_S and then go
    in one transaction. A write lost (the process ends first) only costs a recomputation.
    """

    QUIET_S = 0.25

    def __init__(self, cache: diskcache.Cache) -> None:
        self.cache = cache
        self._pending: list[tuple[tuple, Any]] = []
        self._writing = 0
        self._last_set = 0.0
        self._flushing = False
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def get(self, key: tuple) -> Any:
        return self.cache.get(key)

    def set(self, key: tuple, value: Any) -> None:
        with self._condition:
            self._pending.append((key, value))
            self._last_set = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cache-write", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def flush(self) -> None:
        """Write everything asked for so far now, and wait until it is written."""
        with self._condition:
            self._flushing = True
            self._condition.notify_all()
            self._condition.wait_for(lambda: not self._pending and not self._writing)
            self._flushing = False

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending)
                while not self._flushing:
                    quiet_for = time.monotonic() - self._last_set
                    if quiet_for >= self.QUIET_S:
                        break
                    self._condition.wait(self.QUIET_S - quiet_for)
                batch, self._pending = self._pending, []
                self._writing = len(batch)
            self._write(batch)
            with self._condition:
                self._writing = 0
                self._condition.notify_all()

    def _write(self, batch: list[tuple[tuple, Any]]) -> None:
        try:
            with self.cache.transact():
                for key, value in batch:
                    self.cache.set(key, value)
        except Exception:  # a full disk must not break a page; these values are only a cache
            log.warning(
                "could not store %d processed histograms in the disk cache", len(batch), exc_info=True
            )


def mode_mismatch_warning(run: RunInfo, mode: MergerMode) -> str | None:
    """The warning for combining `run`'s snapshots in `mode` when they were recorded in another one."""
    if mode is run.merger_mode:
        return None
    if mode is MergerMode.RESET:
        return (
            f"Not recorded this way: run {run.run} {run.source_subsystem} was recorded in cumulative mode "
            "(each snapshot holds everything since the start of run); summing its snapshots counts the "
            "same data many times, so these numbers are far too high."
        )
    return (
        f"Not recorded this way: run {run.run} {run.source_subsystem} was recorded in reset mode (each "
        "snapshot holds only what arrived since the previous one); subtracting its snapshots gives "
        "meaningless numbers."
    )


class ProcessedView:
    """Everything a page needs to show one run/subsystem over one window with one set of options.

    Histograms are combined, scaled and checked when first asked for (`histogram(name)`): a page shows
    a handful of a snapshot's hundreds. Each one processed is also kept in the disk cache, so a view
    asked for again (by another process, after a restart) reads no snapshot for what was seen before.
    """

    def __init__(
        self,
        run: RunInfo,
        plan: SlicePlan,
        options: ProcessingOptions,
        load_content: ContentLoader,
        skeleton: ViewSkeleton | None = None,
        disk: diskcache.Cache | _WrittenWhenIdle | None = None,
        disk_key: tuple = (),
        on_growth: Callable[[], None] | None = None,
    ) -> None:
        self.run = run
        self.plan = plan
        self.options = options
        self._plugin = plugin_for(run.subsystem)
        # The slice is not held here but asked of the loader each time (the service's bounded cache,
        # rebuilt from the snapshots if it was dropped): a view kept in memory must not keep its slice.
        self._load_content = load_content
        self._content_warnings: list[str] | None = None
        self._on_growth = on_growth  # told when this view (or its slice) holds more histograms
        self._disk = disk
        self._disk_key = disk_key
        self._processed: dict[str, ProcessedHistogram] = {}
        self._processed_held = HeldBuffers()  # the bytes `_processed` keeps alive
        self._lock = threading.Lock()
        # Processed histograms can be on disk only if this view was built before (its skeleton was
        # cached); a view built now need not ask the disk for each of them.
        self._disk_may_hold = skeleton is not None
        if skeleton is None:
            content = self._loaded()
            names = list(content)
            skeleton = ViewSkeleton(
                # Reads the events histogram alone (with its row group), nothing else.
                n_events=count_events(self._plugin, content),
                groups=group_histograms(self._plugin, names, has_own_receiver=not run.uses_hlt_files),
                stacks=self._plugin.stacks(names),
            )
        self.skeleton = skeleton

    @property
    def n_events(self) -> float | None:
        return self.skeleton.n_events

    @property
    def groups(self) -> list[tuple[Group, list[str]]]:
        return self.skeleton.groups

    @property
    def stacks(self) -> list[Stack]:
        return self.skeleton.stacks

    @property
    def description(self) -> str:
        return self.plan.describe()

    @property
    def names(self) -> list[str]:
        """Every histogram a page can show, in group order."""
        return [name for _, names in self.groups for name in names]

    @property
    def mode_mismatch(self) -> str | None:
        """Said prominently when the view combines the snapshots in a mode they were not recorded in
        (e.g. cumulative snapshots summed as if the merger reset on each request), else None."""
        return mode_mismatch_warning(self.run, self.plan.mode)

    @property
    def warnings(self) -> list[str]:
        """The mode mismatch first, then the run's (e.g. mixed merger modes), the plan's (a merger restart
        inside the window) and, once histograms were read, the slice's."""
        content = list(self._content_warnings) if self._content_warnings is not None else []
        mismatch = [self.mode_mismatch] if self.mode_mismatch else []
        restart = [self.plan.restart_warning] if self.plan.restart_warning else []
        return [*mismatch, *self.run.warnings, *restart, *content]

    @property
    def merger_restarts(self) -> int:
        """How many merger restarts the window spans (its segments were summed, never subtracted)."""
        return len(self.plan.restart_minutes)

    def _loaded(self) -> ViewContent:
        content = self._load_content()
        with self._lock:
            self._content_warnings = content.live_warnings
        return content

    @property
    def nbytes(self) -> int:
        """Bytes of the processed histograms this view holds: its cache weight."""
        with self._lock:
            return self._processed_held.nbytes

    def is_processed(self, name: str) -> bool:
        """Whether `histogram(name)` is ready (in memory or the disk cache) rather than to be computed.

        Another process (a background job) may have processed it since this view was built: then this
        view reads the disk cache from now on."""
        if name in self._processed:
            return True
        if self._disk is None or self._disk.get((*self._disk_key, name)) is None:
            return False
        self._disk_may_hold = True
        return True

    def histogram(self, name: str) -> ProcessedHistogram:
        """One histogram of the window, scaled and checked with this view's options; KeyError if absent."""
        processed = self._processed.get(name)
        if processed is None and self._disk is not None and self._disk_may_hold:
            processed = self._disk.get((*self._disk_key, name))
        if processed is None:
            source = self._loaded()[name]
            processed = process_histogram(self._plugin, source, self.options, self.n_events)
            if self._disk is not None:
                self._disk.set((*self._disk_key, name), processed)
        with self._lock:
            grew = name not in self._processed
            self._processed[name] = processed
            if grew:
                self._processed_held.add([processed.histogram])
        if grew and self._on_growth is not None:
            self._on_growth()
        return processed

    @property
    def histograms(self) -> dict[str, ProcessedHistogram]:
        return {name: self.histogram(name) for name in self.names}

    def with_run(self, run: RunInfo, plan: SlicePlan | None = None) -> ProcessedView:
        """The same content with the run's current state (ongoing, end) and, if given, the plan of the
        request being answered: two windows can use the same snapshots, and each answer must say what
        was asked of it."""
        plan = plan or self.plan
        if run == self.run and plan == self.plan:
            return self
        refreshed = copy.copy(self)
        refreshed.run = run
        refreshed.plan = plan
        return refreshed


class ProcessingService:
    """Turns stored snapshots into processed views; safe to share between Dash callback threads."""

    def __init__(
        self,
        store: SnapshotStore,
        cache_dir: Path,
        subsystems: tuple[str, ...] = ("EMC", "TPC", "HLT"),
        cache_size_bytes: int = DEFAULT_CACHE_BYTES,
        alarms_config: Path | str | None = None,
        monitor: SystemMonitor | None = None,
        memory_bytes: int = Settings.processing_memory_bytes,
    ) -> None:
        self.store = store
        self.alarms_config = alarms_config or None  # None: the shipped alarm file
        self.subsystems = subsystems
        self.monitor = monitor or SystemMonitor(store.data_dir, subsystems)
        self.cache = diskcache.Cache(
            str(cache_dir),
            size_limit=cache_size_bytes,
            eviction_policy="least-recently-used",
            sqlite_cache_size=DISK_CACHE_SQLITE_PAGES,
        )
        # Views (key "view", ...) and the slices they read (key "slice", ...: shared by views that differ
        # only in options), least recently used dropped beyond MEMORY_ENTRIES of each or `memory_bytes`
        # of histograms held in all; both fill as pages ask for histograms, and are re-weighed then.
        self._held: BoundedCache[tuple, ProcessedView | ViewContent] = BoundedCache(
            2 * MEMORY_ENTRIES, max_weight=memory_bytes, weight=lambda value: value.nbytes
        )
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshot-read")
        self._disk = _WrittenWhenIdle(self.cache)
        self._timelines = RunTimelines(store)
        self._restart_answers: BoundedCache[tuple[str, str], bool] = BoundedCache(RESTART_ANSWERS_KEPT)
        self.trends = TrendStore(store.data_dir)
        self.computed = 0  # views built from snapshots (not served from a cache), for tests and stats

    @classmethod
    def from_settings(cls, settings: Settings, store: SnapshotStore | None = None) -> ProcessingService:
        """The service every process builds from the settings (store, cache, subsystems, liveness and
        other sites' status)."""
        store = store if store is not None else SnapshotStore(settings.data_dir)
        monitor = SystemMonitor(
            store.data_dir,
            settings.subsystems,
            dead_after_s=settings.receiver_dead_after_s,
            sites=settings.status_sites,
            site_timeout_s=settings.status_site_timeout_s,
            poll_s=settings.status_site_poll_s,
        )
        return cls(
            store,
            settings.cache_dir,
            settings.subsystems,
            alarms_config=settings.alarms_config,
            monitor=monitor,
            memory_bytes=settings.processing_memory_bytes,
        )

    def system_status(self) -> SystemStatus:
        """Receivers (state by the one liveness rule, ages, counters), the ongoing run, the data folder
        and other sites: what /system, GET /status and GET /api/status show."""
        return self.monitor.status(self.current_run())

    def current_run(self) -> RunSummary | None:
        """The newest run a receiver's merger names (ongoing), else the newest run stored; read from
        cached run timelines (no scan of the whole store), for pages that refresh every few seconds."""
        return self._timelines.current(self.subsystems)

    def receivers(self) -> list[ReceiverReport]:
        """Each configured receiver's state and counters alone (no run list, no disk): cheap enough
        for a health probe polled every few seconds."""
        return self.monitor.receivers()

    def qc_liveness(self) -> QCLiveness:
        """The QC service's state by the heartbeat rule of the receivers (`pipeline.liveness`)."""
        return self.monitor.qc()

    def problems(self) -> list[str]:
        """What is not alive (receivers, QC service), one line each: `GET /status`'s answer."""
        return self.monitor.problems()

    def run_receiver(self, run: int, subsystem: str) -> ReceiverReport | None:
        """The receiver that feeds `subsystem`'s view of `run` (its own, else the HLT's), if that receiver
        is still on the run (its merger last named it): its state is the run's news, e.g. a silent merger
        behind a run that still counts as ongoing. None for a run its receiver has left."""
        source = self._timelines.timeline(run).source_for(subsystem)
        for report in self.receivers():
            if report.subsystem == source and report.status is not None and report.status.last_run == run:
                return report
        return None

    def runs(self) -> list[RunInfo]:
        return list_runs(self.store, self.subsystems)

    def run_summaries(self) -> list[RunSummary]:
        """One entry per run, newest first (start in UTC and CERN time, length, HLT mode, beam type,
        ongoing, subsystems with data)."""
        return summarize_runs(self.runs())

    def run_subsystems(self, run: int) -> list[str]:
        """The configured subsystems `runs()` lists for one run (their own snapshots or the HLT's), from
        the run's cached timeline: a run page needs them without listing the whole store."""
        timeline = self._timelines.timeline(run)
        return [subsystem for subsystem in self.subsystems if timeline.source_for(subsystem) is not None]

    def snapshot_epochs(self, run: int, subsystem: str) -> np.ndarray:
        """Unix times of `subsystem`'s own stored snapshots of `run`, oldest first (empty when none), from
        the run's cached timeline: what a verdict's freshness is judged against."""
        own = self._timelines.timeline(run).subsystems.get(subsystem)
        return np.empty(0) if own is None else own.epochs

    def run_info(self, run: int, subsystem: str) -> RunInfo:
        """One run and subsystem as `runs()` describes it (length, ongoing, source), from the run's
        folders alone and reused while they are unchanged: cheap enough for every refresh.
        LookupError if there is no data."""
        return self._timelines.find(run, subsystem)[0]

    def plan(
        self,
        run: int,
        subsystem: str,
        window: Window | None = None,
        mode: MergerMode | None = None,
    ) -> tuple[RunInfo, SlicePlan]:
        """Which snapshots a view uses and whose they are. `window=None` is the whole run, from the
        subsystem's own snapshots when it has any; `mode=None` is the merger mode the snapshots were
        recorded in (`RunInfo.merger_mode`). Raises OptionsError (bad window), LookupError.

        Minutes count from the start of the run, and edges go to the nearest snapshots (the rule is
        in `pipeline.processing.timeslice`). For minutes before a subsystem's own snapshots began (its
        receiver started mid-run, scenario 1a), the HLT's snapshots stand in when they hold its
        histograms and answer closer to what was asked; the description says so.
        """
        info, timeline = self._timelines.find(run, subsystem)
        requested = window or Window(0.0, info.length_minutes)
        plan = self._plan_from(timeline, info, info.source_subsystem, requested, mode)
        if window is None or info.uses_hlt_files or subsystem == HLT or HLT not in timeline.subsystems:
            return info, plan
        own_start = info.minute_of(info.source_start_utc) if info.source_start_utc else 0.0
        if own_start > requested.min_minutes:
            hlt_plan = self._plan_from(timeline, info, HLT, requested, mode)
            closer = hlt_plan.edge_error_minutes < plan.edge_error_minutes
            if closer and self._hlt_holds(subsystem, hlt_plan):
                note = f"from HLT snapshots: {subsystem}'s own begin at minute {own_start:.1f}"
                return timeline.info(subsystem, HLT, info.ongoing), hlt_plan.with_note(note)
        if own_start > requested.max_minutes:
            plan = plan.with_note(f"{subsystem}'s own snapshots begin at minute {own_start:.1f}")
        return info, plan

    def _plan_from(
        self, timeline: RunTimeline, info: RunInfo, source: str, window: Window, mode: MergerMode | None
    ) -> SlicePlan:
        snapshots = timeline.subsystems[source]
        return plan_window(
            snapshots.snapshot_ids,
            snapshots.epochs,
            info.run,
            source,
            window,
            snapshots.merger_mode if mode is None else mode,
            run_start_epoch=info.start_utc.timestamp(),
            run_length_minutes=info.length_minutes,
            # Only snapshots recorded cumulative can show a restart: increments (reset mode) read as
            # cumulative go up and down by nature.
            restarted=self._merger_restarted if snapshots.merger_mode is MergerMode.CUMULATIVE else None,
        )

    def _merger_restarted(self, before_id: str, after_id: str) -> bool:
        """Whether the merger restarted between two consecutive snapshots.

        The first answer reads both files' entries (two small columns, ~1 ms a file); answers are kept
        (snapshots never change; the most recent RESTART_ANSWERS_KEPT), so planning a window over a whole run
        reads each file once per process.
        """
        pair = (before_id, after_id)
        known = self._restart_answers.get(pair)
        if known is None:
            entries = self.store.histogram_entries
            known = merger_restarted(entries(before_id), entries(after_id))
            self._restart_answers[pair] = known
        return known

    def _hlt_holds(self, subsystem: str, plan: SlicePlan) -> bool:
        """Whether the HLT snapshots of `plan` hold histograms of `subsystem` (names only are read)."""
        plugin = plugin_for(subsystem)
        newest = plan.used_snapshot_ids[-1]
        return any(plugin.is_own_histogram(name) for name in self.store.histogram_names(newest))

    def view(
        self,
        run: int,
        subsystem: str,
        window: Window | None = None,
        options: ProcessingOptions | Mapping[str, Any] | None = None,
        mode: MergerMode | None = None,
    ) -> ProcessedView:
        """The view of one window with `options` (an object, or form values validated here), in `mode`
        (None: as the snapshots were recorded); raises OptionsError (bad input, naming the field) or
        LookupError (no data)."""
        if options is None:
            options = ProcessingOptions()
        elif not isinstance(options, ProcessingOptions):
            options = ProcessingOptions.from_mapping(options)
        info, plan = self.plan(run, subsystem, window, mode)
        key = self._view_key(info, plan, options)
        cached = self._held.get(("view", *key))
        if cached is not None:
            return cached.with_run(info, plan)
        skeleton = self.cache.get((*key, VIEW_ENTRY))
        if skeleton is None:
            self.computed += 1
        content_key = self._content_key(info, plan)
        view = ProcessedView(
            info,
            plan,
            options,
            self._content_loader(info, plan, content_key),
            skeleton,
            self._disk,
            key,
            on_growth=lambda: self._reweigh(("view", *key), content_key),
        )
        if skeleton is None:
            self._disk.set((*key, VIEW_ENTRY), view.skeleton)
        self._held[("view", *key)] = view
        self._reweigh(content_key)  # the view's skeleton read its events histogram through the slice
        return view

    def is_cached(
        self,
        run: int,
        subsystem: str,
        window: Window | None = None,
        options: ProcessingOptions | None = None,
        mode: MergerMode | None = None,
    ) -> bool:
        """Whether `view` with these arguments would be served from a cache (memory or disk) rather than
        built from snapshots: a page uses it to hand slow builds to a background job."""
        info, plan = self.plan(run, subsystem, window, mode)
        key = self._view_key(info, plan, options or ProcessingOptions())
        if ("view", *key) in self._held:
            return True
        return (*key, VIEW_ENTRY) in self.cache

    @staticmethod
    def _view_key(info: RunInfo, plan: SlicePlan, options: ProcessingOptions) -> tuple:
        return (
            CACHE_FORMAT,
            info.run,
            info.subsystem,
            info.source_subsystem,
            plan.mode.value,
            plan.used_snapshot_ids,
            options.cache_key(),
        )

    @staticmethod
    def _content_key(info: RunInfo, plan: SlicePlan) -> tuple:
        return (
            "slice",
            info.run,
            info.subsystem,
            info.source_subsystem,
            plan.mode.value,
            plan.used_snapshot_ids,
        )

    def _content_loader(self, info: RunInfo, plan: SlicePlan, content_key: tuple) -> ContentLoader:
        """The slice's histograms, shared by the views of one window that differ only in options (a
        new threshold must not read the snapshots again), and read again if the cache dropped them."""

        def load() -> ViewContent:
            content = self._held.get(content_key)
            if content is None:
                histograms = load_slice(self.store, plan, executor=self._readers)
                content = ViewContent(plugin_for(info.subsystem), histograms, own_only=info.uses_hlt_files)
                self._held[content_key] = content
            return content

        return load

    def _reweigh(self, *keys: tuple) -> None:
        """A view or slice holds more histograms than when it was weighed: weigh it again (which may drop
        the least recently used entries, or this one when alone it is over the limit)."""
        for key in keys:
            self._held.reweigh(key)

    def memory_held(self) -> tuple[int, int]:
        """(entries, bytes of histograms) the in-memory cache of views and slices holds now."""
        return len(self._held), self._held.total_weight

    def trend_series(
        self, run: int, subsystem: str, histogram: str, quantity: str, content: str = "cumulative"
    ) -> pd.DataFrame:
        """One trended quantity against time within a run (snapshot_time_utc, interval_start_utc, value,
        error), for the `cumulative` or the `interval` content; empty if nothing is trended."""
        return self.trends.series(run, subsystem, histogram, quantity, content)

    def trend_per_run(self, subsystem: str, histogram: str, quantity: str) -> pd.DataFrame:
        """One value per run (run, snapshot_time_utc, value, error): each run's last cumulative value."""
        return self.trends.per_run(subsystem, histogram, quantity)

    def trend_quantities(self, run: int, subsystem: str) -> pd.DataFrame:
        """What is trended in a run: (histogram, quantity) rows."""
        return self.trends.quantities(run, subsystem)

    # ---- alarms (states written by the QC service; people acknowledge, mute and tune them here) ----

    def alarms(self) -> pd.DataFrame:
        """Every alarm, newest first: alarm_id, state (active, acknowledged, muted, cleared), links (run,
        subsystem, histogram, quantity, content), message, severity, fired/cleared times, who
        acknowledged, muted until (`pipeline.qc.alarm_book.ALARMS_SCHEMA`)."""
        return AlarmBook(self.store.data_dir).alarms()

    def acknowledge_alarm(self, alarm_id: str, who: str) -> None:
        """Stop the alarm's re-sends; KeyError/ValueError naming `alarm_id` or `who`."""
        AlarmBook(self.store.data_dir).acknowledge(alarm_id, who)

    def mute_alarm(self, alarm_id: str, until_utc: datetime, who: str) -> None:
        """Send nothing for this alarm (and its key's next firings) until `until_utc`."""
        AlarmBook(self.store.data_dir).mute(alarm_id, until_utc, who)

    def alarm_limits(
        self, subsystem: str, histogram: str, quantity: str, content: str = "cumulative", beam_type: str = ""
    ) -> list[dict[str, Any]]:
        """The ranges alarms accept for one trend series (bands on its plot), thresholds as in force."""
        definitions = self._alarm_config().definitions(
            subsystem, beam_type, load_changes(self.store.data_dir)
        )
        return limits_for(definitions, histogram, quantity, content)

    def set_alarm_threshold(
        self, subsystem: str, alarm: str, parameter: str, value: float, who: str, beam_type: str = ""
    ) -> ThresholdChange:
        """Change one alarm parameter (recorded with who, when, old, new); AlarmConfigError naming the
        field for a bad value. The QC service uses it from its next snapshot."""
        return set_threshold(
            self.store.data_dir, self._alarm_config(), subsystem, alarm, parameter, value, who, beam_type
        )

    def _alarm_config(self) -> AlarmConfig:
        return load_alarm_config(self.alarms_config)

    # ---- quality control results (written by the QC service, `pipeline.qc`) ----------------------

    def hot_channel_history(self, subsystem: str, run: int | None = None) -> pd.DataFrame:
        """Per channel and run, when the subsystem's channel checks flagged it, and whether it was new
        (`pipeline.qc.history.channel_history`); `run` keeps that run's rows."""
        return channel_history(self.store.data_dir, subsystem, run=run)

    def reference_run(self, subsystem: str, beam_type: str) -> ReferenceRun | None:
        """The run an expert set as the reference of this subsystem and beam type, or None."""
        return get_reference(self.store.data_dir, subsystem, beam_type)

    def set_reference_run(
        self, subsystem: str, beam_type: str, run: int, set_by: str, note: str = ""
    ) -> ReferenceRun:
        """Mark `run` as the reference (recording who and when); LookupError if it has no data for
        the subsystem, ValueError for bad input."""
        if self.store.latest_snapshot_id(run, subsystem) is None:
            raise LookupError(f"run {run} has no {subsystem} snapshots to be a reference")
        return set_reference(self.store.data_dir, subsystem, beam_type, run, set_by, note)

    def reference_histogram(
        self, subsystem: str, beam_type: str, name: str
    ) -> tuple[Histogram, float | None]:
        """The reference run's histogram `name` (its newest snapshot, derived ones included) and its
        number of events, for an overlay normalised with `pipeline.compare.normalised_to_events`
        and a ratio with `pipeline.compare.ratio`. LookupError when there is no reference or no such
        histogram."""
        reference = self.reference_run(subsystem, beam_type)
        if reference is None:
            raise LookupError(f"no reference run set for {subsystem} ({beam_type or 'no beam type'})")
        snapshot_id = self.store.latest_snapshot_id(reference.run, subsystem)
        if snapshot_id is None:
            raise LookupError(f"reference run {reference.run} has no {subsystem} snapshots")
        plugin = plugin_for(subsystem)
        _, stored = self.store.read_snapshot(snapshot_id)
        content = WithDerived(plugin, stored)
        if name not in content:
            raise LookupError(f"reference run {reference.run} has no {name!r}")
        # Pages keep references for long (dashboard.components.qc_panel): read with the whole snapshot,
        # it would keep the snapshot's buffers alive (MBs) for its few bins.
        return owning_its_arrays(content[name]), count_events(plugin, content)

    # ---- QC reads for pages (quality now, alarm parameters and their change log) -----------------

    def latest_quality(self, run: int, subsystem: str) -> pd.DataFrame:
        """Aggregated quality rows (subsystem and per group) of the run's newest checked snapshot."""
        return latest_quality(self.store.data_dir, subsystem, run)

    def latest_checks(self, run: int, subsystem: str) -> pd.DataFrame:
        """Check rows of the run's newest checked snapshot, worst first."""
        return latest_checks(self.store.data_dir, subsystem, run)

    def subsystem_quality(self, run: int, subsystem: str) -> str | None:
        """Good/Medium/Bad/Null of a subsystem in a run now; None when QC has not checked it."""
        return subsystem_quality(self.store.data_dir, subsystem, run)

    def alarm_parameters(self, subsystem: str | None = None, beam_type: str = "") -> list[AlarmParameter]:
        """Every alarm parameter an expert may change, with the value in force for `beam_type`."""
        return alarm_parameters(self._alarm_config(), load_changes(self.store.data_dir), beam_type, subsystem)

    def alarm_threshold_changes(self) -> list[ThresholdChange]:
        """Every recorded threshold change (who, when, old, new), oldest first."""
        return threshold_changes(self.store.data_dir)

    def flush(self) -> None:
        """Wait until every processed histogram is in the disk cache (they are written in the background)."""
        self._disk.flush()

    def clear_cache(self) -> None:
        """Forget every derived result; the next request rebuilds it from the snapshots."""
        self.flush()
        self._held.clear()
        self.cache.clear()
