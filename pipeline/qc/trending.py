"""Trend values: numbers computed from every snapshot, stored with real time and run.

The detector plug-ins declare what is trended (`DetectorPlugin.trends`: a name pattern and quantity
names); `QUANTITIES` says what each quantity computes. Every snapshot gives each quantity twice: for
the cumulative content (everything since the start of run) and for the interval since the previous
snapshot, made with the time-slice subtraction (`processing.timeslice.SliceHistograms`), so a trend
and a time slice over the same snapshots always agree. Unlike the original (a rolling window of 100
points against an entry index) nothing is dropped and the x axis is the snapshot's time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

import numpy as np
import pandas as pd

from pipeline.detectors.base import (
    DetectorPlugin,
    count_events,
    scale_by_events_if_requested,
)
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.timeslice import MergerMode, SliceHistograms, SnapshotPart

CUMULATIVE = "cumulative"
INTERVAL = "interval"
CONTENTS = (CUMULATIVE, INTERVAL)
DEFAULT_OPTIONS = ProcessingOptions()


@dataclass(frozen=True)
class TrendContext:
    """What a quantity may need besides the histogram: the content's own event count and, for the
    interval content, how many minutes it covers (None for the cumulative content: its data began
    before the first snapshot, at a moment nobody recorded)."""

    n_events: float | None
    minutes: float | None
    plugin: DetectorPlugin


# A quantity: (histogram, context) -> (value, error), or None when it is undefined (e.g. the mean of an
# empty histogram), in which case no row is stored.
QuantityFunction = Callable[[Histogram, TrendContext], tuple[float, float] | None]


@dataclass(frozen=True)
class Quantity:
    description: str
    compute: QuantityFunction


@lru_cache(maxsize=4)  # mean and std dev of one histogram share them (histograms hash by identity)
def _x_moments(histogram: Histogram) -> tuple[float, float, float] | None:
    """(sum of weights, mean, standard deviation) along x over the regular bins, from bin centres, as
    ROOT's GetMean(1)/GetStdDev(1) give them for a histogram without stored statistics, plus the
    effective number of entries (sum w)^2 / sum w^2."""
    values = histogram.values()
    if histogram.dimension > 1:
        values = values.sum(axis=tuple(range(1, histogram.dimension)))
    edges = histogram.edges[0]
    centres = 0.5 * (edges[:-1] + edges[1:])
    total = float(values.sum())
    if not total > 0:
        return None
    mean = float(np.dot(values, centres) / total)
    variance = float(np.dot(values, (centres - mean) ** 2) / total)
    return total, mean, math.sqrt(max(variance, 0.0))


def _effective_entries(histogram: Histogram, total: float) -> float:
    sum_w2 = float(histogram.variances().sum())
    return total * total / sum_w2 if sum_w2 > 0 else total


def _mean(histogram: Histogram, context: TrendContext) -> tuple[float, float] | None:
    moments = _x_moments(histogram)
    if moments is None:
        return None
    total, mean, std = moments
    # ROOT's GetMeanError: sigma / sqrt(effective entries).
    return mean, std / math.sqrt(_effective_entries(histogram, total))


def _std_dev(histogram: Histogram, context: TrendContext) -> tuple[float, float] | None:
    moments = _x_moments(histogram)
    if moments is None:
        return None
    total, _, std = moments
    # ROOT's GetStdDevError: sigma / sqrt(2 * effective entries).
    return std, std / math.sqrt(2.0 * _effective_entries(histogram, total))


def _shown(histogram: Histogram, context: TrendContext) -> Histogram:
    """The histogram as the run page shows it by default: per event when the plug-in scales it."""
    if context.plugin.scales_by_events(histogram.name):
        return scale_by_events_if_requested(histogram, DEFAULT_OPTIONS, context.n_events)[0]
    return histogram


def _maximum(histogram: Histogram, context: TrendContext) -> tuple[float, float] | None:
    shown = _shown(histogram, context)
    values = shown.values()
    if values.size == 0:
        return None
    index = int(np.argmax(values))
    return float(values.flat[index]), float(np.sqrt(max(shown.variances().flat[index], 0.0)))


def _entries(histogram: Histogram, context: TrendContext) -> tuple[float, float] | None:
    return float(histogram.values().sum()), math.sqrt(max(float(histogram.variances().sum()), 0.0))


# Below this many events per-event thresholds flag Poisson noise: in the emulator 270 of 5000 FastORs
# are "hot" after 185 events, the true 4 from ~1,500 events on. A count that means something, or none.
MIN_EVENTS_FOR_HOT_CHANNELS = 2000.0


def _hot_channels(histogram: Histogram, context: TrendContext) -> tuple[float, float] | None:
    if context.n_events is None or context.n_events < MIN_EVENTS_FOR_HOT_CHANNELS:
        return None
    checked = context.plugin.checks(histogram, DEFAULT_OPTIONS, context.n_events)
    results = [result for result in checked if result.flags_above]
    if not results or all(result.quality == "Null" for result in results):
        return None
    return float(len({i for result in results for i in result.flagged_ids})), 0.0


def _events_per_minute(histogram: Histogram, context: TrendContext) -> tuple[float, float] | None:
    if context.minutes is None or not context.minutes > 0:
        return None
    values = histogram.values()
    variances = histogram.variances()
    if values.size == 0:
        return None
    return float(values.flat[0]) / context.minutes, math.sqrt(max(variances.flat[0], 0.0)) / context.minutes


QUANTITIES: dict[str, Quantity] = {
    "mean": Quantity("mean along x from bin centres (ROOT GetMean(1)); error sigma/sqrt(N_eff)", _mean),
    "std_dev": Quantity(
        "standard deviation along x (ROOT GetStdDev(1)); error sigma/sqrt(2 N_eff)", _std_dev
    ),
    "maximum": Quantity(
        "highest bin content, per event where the plug-in scales by events; error: that bin's", _maximum
    ),
    "entries": Quantity("sum of the regular bins' contents; error sqrt(sum of variances)", _entries),
    "hot_channels": Quantity(
        "number of channel ids the plug-in's checks flag (default thresholds); from 2,000 events on",
        _hot_channels,
    ),
    "events_per_minute": Quantity(
        "events in the interval (first bin of the events histogram) per minute; interval only",
        _events_per_minute,
    ),
}


def validate_trend_specs(plugin: DetectorPlugin) -> None:
    """Raise ValueError naming the plug-in and field for an unknown quantity or a bad pattern."""
    for index, spec in enumerate(plugin.trends):
        try:
            re.compile(spec.pattern)
        except re.error as error:
            raise ValueError(
                f"{plugin.subsystem}: trends[{index}].pattern {spec.pattern!r}: {error}"
            ) from None
        unknown = [q for q in spec.quantities if q not in QUANTITIES]
        if unknown:
            raise ValueError(
                f"{plugin.subsystem}: trends[{index}].quantities: unknown {unknown}; "
                f"known {sorted(QUANTITIES)}"
            )


@cache
def _compiled(plugin: DetectorPlugin) -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    validate_trend_specs(plugin)
    return tuple((re.compile(spec.pattern), spec.quantities) for spec in plugin.trends)


def trended_quantities(plugin: DetectorPlugin, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Histogram name -> the quantities trended for it (in declaration order, without repeats)."""
    compiled = _compiled(plugin)
    result: dict[str, tuple[str, ...]] = {}
    for name in names:
        quantities: dict[str, None] = {}
        for pattern, declared in compiled:
            if pattern.search(name):
                quantities.update(dict.fromkeys(declared))
        if quantities:
            result[name] = tuple(quantities)
    return result


@dataclass(frozen=True)
class SnapshotTrendInput:
    """One snapshot to trend: who and when, and the content it covers."""

    run: int
    subsystem: str
    snapshot_id: str
    snapshot_time_utc: datetime
    run_start_utc: datetime  # the subsystem's first snapshot of the run
    previous_time_utc: datetime | None  # None: first snapshot of the run, the interval is the content


TREND_COLUMNS = (
    "run",
    "subsystem",
    "snapshot_id",
    "snapshot_time_utc",
    "interval_start_utc",
    "content",
    "histogram",
    "quantity",
    "value",
    "error",
)


def trend_rows(
    plugin: DetectorPlugin,
    snapshot: SnapshotTrendInput,
    cumulative: Mapping[str, Histogram],
    interval: Mapping[str, Histogram],
) -> pd.DataFrame:
    """Every declared quantity of every trended histogram, for both contents, as rows of the trends
    table (columns `TREND_COLUMNS`). `cumulative` and `interval` may hold more than the trended
    histograms; the events histogram is read from each for its own event count."""
    rows: list[tuple] = []
    starts = {
        CUMULATIVE: snapshot.run_start_utc,
        INTERVAL: snapshot.previous_time_utc or snapshot.run_start_utc,
    }
    for content, histograms in ((CUMULATIVE, cumulative), (INTERVAL, interval)):
        minutes = (snapshot.snapshot_time_utc - starts[content]).total_seconds() / 60.0
        context = TrendContext(
            n_events=count_events(plugin, histograms),
            minutes=minutes if content == INTERVAL and snapshot.previous_time_utc is not None else None,
            plugin=plugin,
        )
        for name, quantities in trended_quantities(plugin, histograms.keys()).items():
            histogram = histograms[name]
            for quantity in quantities:
                result = QUANTITIES[quantity].compute(histogram, context)
                if result is None or not all(math.isfinite(x) for x in result):
                    continue
                rows.append((content, name, quantity, result[0], result[1], starts[content]))
    frame = pd.DataFrame(
        rows, columns=["content", "histogram", "quantity", "value", "error", "interval_start_utc"]
    )
    frame.insert(0, "run", snapshot.run)
    frame.insert(1, "subsystem", snapshot.subsystem)
    frame.insert(2, "snapshot_id", snapshot.snapshot_id)
    frame.insert(3, "snapshot_time_utc", snapshot.snapshot_time_utc)
    return frame[list(TREND_COLUMNS)]


def snapshot_contents(
    plugin: DetectorPlugin,
    mode: MergerMode,
    current: SnapshotPart,
    previous: SnapshotPart | None,
    running_total: Mapping[str, Histogram] | None = None,
) -> tuple[Mapping[str, Histogram], Mapping[str, Histogram]]:
    """(cumulative, interval) content of one snapshot, restricted to what trending reads (the trended
    histograms and the events histogram).

    Cumulative mergers: the snapshot is the cumulative content and the interval is the time slice
    `current - previous` (histograms new since `previous` kept whole). Reset mergers: the snapshot is
    the interval, and the cumulative content is `running_total` (the sum of the run's earlier
    snapshots, which the caller keeps) plus it.
    """
    wanted = trend_names(plugin, current.names)
    current = current.only(wanted)
    if mode is MergerMode.RESET:
        interval = dict(current.read(None))
        parts: list[SnapshotPart | Mapping[str, Histogram]] = [interval]
        if running_total:
            parts.insert(0, {name: h for name, h in running_total.items() if name in wanted})
        return SliceHistograms(MergerMode.RESET, parts).materialized(), interval
    cumulative = dict(current.read(None))
    parts = [SnapshotPart.in_memory(cumulative)]
    if previous is not None:
        parts.append(previous.only(wanted))
    return cumulative, SliceHistograms(MergerMode.CUMULATIVE, parts).materialized()


def trend_names(plugin: DetectorPlugin, names: Iterable[str]) -> list[str]:
    """The names of a snapshot trending reads (trended ones and the events histogram), sorted."""
    wanted = set(trended_quantities(plugin, names))
    events = plugin.events_histogram_name(names)
    if events is not None:
        wanted.add(events)
    return sorted(wanted)
