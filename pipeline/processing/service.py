"""The processing service: what the dashboard asks for, computed from snapshots and cached.

A view is one run and subsystem, over the whole run or a minute window, with processing options. It is
built from the snapshots the window really uses, passed through the detector plug-in (derived
histograms, scaling by the window's own nEvents, draw hints, checks), and cached on disk (diskcache,
bounded) and in memory under (run, subsystem, source, mode, snapshot ids used, options). Two requests
that differ in any option never share a result (the original's issue #25), and clearing the cache loses
nothing: every view can be rebuilt from the stored snapshots.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import ChainMap, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import diskcache
import numpy as np

from pipeline.detectors import plugin_for
from pipeline.detectors.base import (
    Group,
    ProcessedHistogram,
    Stack,
    count_events,
    group_histograms,
    process_histogram,
)
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.runs import RunInfo, find_run, list_runs
from pipeline.processing.timeslice import MergerMode, SlicePlan, Window, load_slice, plan_window
from pipeline.store import SnapshotStore

log = logging.getLogger(__name__)

# Bump when the cached value's meaning changes, so old entries are never read as new ones.
CACHE_FORMAT = 2
VIEW_ENTRY = "<view>"  # disk-cache key suffix of a view's skeleton; histogram names never look like it
DEFAULT_CACHE_BYTES = 2 * 1024**3
MEMORY_ENTRIES = 16


@dataclass(frozen=True)
class ViewSkeleton:
    """What a page needs before any histogram: small, so it is what the disk cache keeps per view."""

    n_events: float | None
    groups: list[tuple[Group, list[str]]]
    stacks: list[Stack]


ContentLoader = Callable[[], tuple[Mapping[str, Histogram], dict[str, Histogram]]]


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
        disk: diskcache.Cache | None = None,
        disk_key: tuple = (),
    ) -> None:
        self.run = run
        self.plan = plan
        self.options = options
        self._plugin = plugin_for(run.subsystem)
        self._load_content = load_content
        self._content: tuple[Mapping[str, Histogram], dict[str, Histogram]] | None = None
        self._disk = disk
        self._disk_key = disk_key
        self._processed: dict[str, ProcessedHistogram] = {}
        self._lock = threading.Lock()
        if skeleton is None:
            content, derived = self._loaded()
            merged = ChainMap(derived, content)
            names = sorted(merged)
            skeleton = ViewSkeleton(
                n_events=count_events(self._plugin, merged),
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
    def warnings(self) -> list[str]:
        return list(getattr(self._content[0], "warnings", [])) if self._content else []

    def _loaded(self) -> tuple[Mapping[str, Histogram], dict[str, Histogram]]:
        with self._lock:
            if self._content is None:
                self._content = self._load_content()
            return self._content

    def histogram(self, name: str) -> ProcessedHistogram:
        """One histogram of the window, scaled and checked with this view's options; KeyError if absent."""
        processed = self._processed.get(name)
        if processed is None and self._disk is not None:
            processed = self._disk.get((*self._disk_key, name))
        if processed is None:
            content, derived = self._loaded()
            source = derived[name] if name in derived else content[name]
            processed = process_histogram(self._plugin, source, self.options, self.n_events)
            if self._disk is not None:
                self._disk.set((*self._disk_key, name), processed)
        self._processed[name] = processed
        return processed

    @property
    def histograms(self) -> dict[str, ProcessedHistogram]:
        return {name: self.histogram(name) for name in self.names}

    def with_run(self, run: RunInfo) -> ProcessedView:
        """The same window with the run's current state (ongoing, end) rather than the one when cached."""
        if run == self.run:
            return self
        refreshed = copy.copy(self)
        refreshed.run = run
        return refreshed


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
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshot-read")
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
        keys = self.store.snapshot_keys(run, info.source_subsystem)
        epochs = np.fromiter((key.snapshot_time_utc.timestamp() for key in keys), np.float64, len(keys))
        window = window or Window(0.0, info.length_minutes)
        return info, plan_window(
            [k.snapshot_id for k in keys], epochs, run, info.source_subsystem, window, mode
        )

    def view(
        self,
        run: int,
        subsystem: str,
        window: Window | None = None,
        options: ProcessingOptions | None = None,
        mode: MergerMode = MergerMode.CUMULATIVE,
    ) -> ProcessedView:
        """The view of one window with `options`; raises OptionsError (bad input) or LookupError (no data)."""
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
                return cached.with_run(info)
        skeleton = self.cache.get((*key, VIEW_ENTRY))
        if skeleton is None:
            self.computed += 1
        view = ProcessedView(info, plan, options, self._content_loader(info, plan), skeleton, self.cache, key)
        if skeleton is None:
            self.cache.set((*key, VIEW_ENTRY), view.skeleton)
        self._remember(key, view)
        return view

    def _content_loader(self, info: RunInfo, plan: SlicePlan) -> ContentLoader:
        def load() -> tuple[Mapping[str, Histogram], dict[str, Histogram]]:
            plugin = plugin_for(info.subsystem)
            content: Mapping[str, Histogram] = load_slice(self.store, plan, executor=self._readers)
            if info.uses_hlt_files:
                # Shown from HLT files: only what this subsystem's groups claim (the original's scenario 1).
                groups = plugin.groups_for(has_own_receiver=False)
                content = _Subset(content, [n for n in content if any(g.selector in n for g in groups)])
            return content, plugin.derived_histograms(content)

        return load

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


class _Subset(Mapping[str, Histogram]):
    """Some names of a lazy mapping, still lazy."""

    def __init__(self, source: Mapping[str, Histogram], names: list[str]) -> None:
        self._source = source
        self._names = names
        self.warnings = getattr(source, "warnings", [])

    def __getitem__(self, name: str) -> Histogram:
        if name not in self._names:
            raise KeyError(name)
        return self._source[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
