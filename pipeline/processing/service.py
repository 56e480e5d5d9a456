"""The processing service: what the dashboard asks for, computed from snapshots and cached.

A view is one run and subsystem, over the whole run or a minute window, with processing options. It is
built from the snapshots the window really uses, passed through the detector plug-in (derived
histograms, scaling by the window's own nEvents, draw hints, checks), and cached on disk (diskcache,
bounded) and in memory under (run, subsystem, source, mode, snapshot ids used, options). Two requests
that differ in any option never share a result (the original's issue #25), and clearing the cache loses
nothing: every view can be rebuilt from the stored snapshots.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import diskcache

from pipeline.detectors import plugin_for
from pipeline.detectors.base import (
    Group,
    ProcessedHistogram,
    Stack,
    count_events,
    group_histograms,
    process_histogram,
)
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.runs import RunInfo, find_run, list_runs
from pipeline.processing.timeslice import MergerMode, SlicePlan, Window, load_slice, plan_slice
from pipeline.store import SnapshotStore

log = logging.getLogger(__name__)

# Bump when the cached value's meaning changes, so old entries are never read as new ones.
CACHE_FORMAT = 1
DEFAULT_CACHE_BYTES = 2 * 1024**3
MEMORY_ENTRIES = 16


@dataclass
class ProcessedView:
    """Everything a page needs to show one run/subsystem over one window with one set of options."""

    run: RunInfo
    plan: SlicePlan
    options: ProcessingOptions
    n_events: float | None
    groups: list[tuple[Group, list[str]]] = field(default_factory=list)
    histograms: dict[str, ProcessedHistogram] = field(default_factory=dict)
    stacks: list[Stack] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return self.plan.describe()


class ProcessingService:
    """Turns stored snapshots into processed views; safe to share between Dash callback threads."""

    def __init__(
        self,
        store: SnapshotStore,
        cache_dir: Path,
        subsystems: tuple[str, ...] = ("EMC", "TPC", "HLT"),
        cache_size_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.store = store
        self.subsystems = subsystems
        self.cache = diskcache.Cache(
            str(cache_dir), size_limit=cache_size_bytes, eviction_policy="least-recently-used"
        )
        self._memory: OrderedDict[tuple, ProcessedView] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # views built from snapshots (not served from a cache), for tests and stats

    def runs(self) -> list[RunInfo]:
        return list_runs(self.store, self.subsystems)

    def plan(
        self,
        run: int,
        subsystem: str,
        window: Window | None = None,
        mode: MergerMode = MergerMode.CUMULATIVE,
    ) -> tuple[RunInfo, SlicePlan]:
        """Which snapshots a view uses. `window=None` is the whole run. Raises OptionsError, LookupError."""
        info = find_run(self.store, run, subsystem, self.subsystems)
        snapshots = self.store.snapshots(run, info.source_subsystem)
        window = window or Window(0.0, info.length_minutes)
        return info, plan_slice(snapshots, run, info.source_subsystem, window, mode)

    def view(
        self,
        run: int,
        subsystem: str,
        window: Window | None = None,
        options: ProcessingOptions | None = None,
        mode: MergerMode = MergerMode.CUMULATIVE,
    ) -> ProcessedView:
        options = options or ProcessingOptions()
        info, plan = self.plan(run, subsystem, window, mode)
        key = (
            CACHE_FORMAT,
            run,
            subsystem,
            info.source_subsystem,
            mode.value,
            plan.used_snapshot_ids,
            options.cache_key(),
        )
        with self._lock:
            cached = self._memory.get(key)
            if cached is not None:
                self._memory.move_to_end(key)
                return _with_run(cached, info)
        cached = self.cache.get(key)
        if cached is None:
            cached = self._build(info, plan, options)
            self.cache.set(key, cached)
        self._remember(key, cached)
        return _with_run(cached, info)

    def _remember(self, key: tuple, view: ProcessedView) -> None:
        with self._lock:
            self._memory[key] = view
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_ENTRIES:
                self._memory.popitem(last=False)

    def clear_cache(self) -> None:
        """Forget every derived result; the next request rebuilds it from the snapshots."""
        with self._lock:
            self._memory.clear()
        self.cache.clear()

    def _build(self, info: RunInfo, plan: SlicePlan, options: ProcessingOptions) -> ProcessedView:
        self.computed += 1
        plugin = plugin_for(info.subsystem)
        content = load_slice(self.store, plan)
        histograms = content.histograms
        if info.uses_hlt_files:
            # Shown from HLT files: only what this subsystem's groups claim (the original's scenario 1).
            groups = plugin.groups_for(has_own_receiver=False)
            histograms = {n: h for n, h in histograms.items() if any(g.selector in n for g in groups)}
        histograms = {**histograms, **plugin.derived_histograms(histograms)}
        n_events = count_events(plugin, histograms)
        processed = {name: process_histogram(plugin, h, options, n_events) for name, h in histograms.items()}
        names = sorted(processed)
        return ProcessedView(
            run=info,
            plan=plan,
            options=options,
            n_events=n_events,
            groups=group_histograms(plugin, names, has_own_receiver=not info.uses_hlt_files),
            histograms=processed,
            stacks=plugin.stacks(names),
            warnings=content.warnings,
        )


def _with_run(view: ProcessedView, info: RunInfo) -> ProcessedView:
    """A cached view with the run's current state (ongoing, end) rather than the one when it was built."""
    if view.run == info:
        return view
    return ProcessedView(
        run=info,
        plan=view.plan,
        options=view.options,
        n_events=view.n_events,
        groups=view.groups,
        histograms=view.histograms,
        stacks=view.stacks,
        warnings=view.warnings,
    )
