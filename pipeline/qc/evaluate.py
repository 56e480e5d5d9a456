"""One snapshot in, its check rows and aggregated qualities out: pure, so the live service and a rebuild
give the same rows.

Every plug-in check runs on every histogram it applies to (derived ones included), on the content it
declares: the snapshot as received (`cumulative`), what was filled in the plug-in's `interval_s` before
it (`interval`: snapshot minus the newest snapshot at least that old, so a supermodule that died
mid-run shows at once), or against the reference run (`reference`, only where one is set). Qualities
are then combined per plug-in group and for the whole subsystem with the plug-in's rule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from pipeline.detectors.base import (
    CheckResult,
    CheckSpec,
    DetectorPlugin,
    applicable_specs,
    count_events,
    group_histograms,
    run_check_specs,
)
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions
from pipeline.qc.schema import CHECKS_SCHEMA


@dataclass(frozen=True)
class SnapshotInput:
    """What evaluating one snapshot needs. Mappings may be lazy (read a histogram when asked for).

    `baseline` is the snapshot `interval_s` earlier (None when there is none yet); in reset mode
    (`merger_reset`) snapshots are increments, so the interval is the snapshot itself and `baseline`
    only gives the time it starts from. `reference` holds the reference run's histograms, if one is
    set for this subsystem and beam type.
    """

    run: int
    subsystem: str
    snapshot_id: str
    snapshot_time_utc: datetime
    histograms: Mapping[str, Histogram]
    beam_type: str = ""
    merger_reset: bool = False
    baseline: Mapping[str, Histogram] | None = None
    baseline_time_utc: datetime | None = None
    reference: Mapping[str, Histogram] | None = None


@dataclass(frozen=True)
class CheckedHistogram:
    """The verdicts on one histogram, and on which content each was reached."""

    histogram: str
    results: tuple[tuple[str, CheckResult], ...]  # (content, result)


@dataclass
class Evaluation:
    """Everything QC made of one snapshot: per-histogram verdicts and the table rows.

    `check_rows` (dicts, one per verdict) are made when first asked for; the service writes
    `checks_table()`, built column by column from the verdicts (several times faster for ~800 rows).
    """

    snapshot: SnapshotInput
    checked: list[CheckedHistogram] = field(default_factory=list)
    quality_rows: list[dict[str, Any]] = field(default_factory=list)
    n_events: float | None = None

    @property
    def n_checks(self) -> int:
        return sum(len(item.results) for item in self.checked)

    @property
    def check_rows(self) -> list[dict[str, Any]]:
        return [
            _check_row(self.snapshot, item.histogram, content, result)
            for item in self.checked
            for content, result in item.results
        ]

    def checks_table(self) -> pa.Table:
        """The `checks` rows of this snapshot as a table of `CHECKS_SCHEMA`."""
        verdicts = [(item.histogram, content, r) for item in self.checked for content, r in item.results]
        count = len(verdicts)
        snapshot = self.snapshot

        def repeated(value: Any, arrow_type: pa.DataType) -> pa.Array:
            return pa.array([value] * count, arrow_type)

        def strings(values: list[str]) -> pa.Array:
            return pa.array(values, pa.string())

        columns = {
            "run": repeated(snapshot.run, pa.int64()),
            "subsystem": repeated(snapshot.subsystem, pa.string()),
            "snapshot_id": repeated(snapshot.snapshot_id, pa.string()),
            "snapshot_time_utc": repeated(snapshot.snapshot_time_utc, pa.timestamp("us", tz="UTC")),
            "histogram": strings([histogram for histogram, _, _ in verdicts]),
            "check": strings([r.check for _, _, r in verdicts]),
            "title": strings([r.title for _, _, r in verdicts]),
            "content": strings([content for _, content, _ in verdicts]),
            "quality": strings([r.quality for _, _, r in verdicts]),
            "message": strings([r.message for _, _, r in verdicts]),
            "threshold": pa.array([r.threshold for _, _, r in verdicts], pa.float64()),
            "flagged_ids": pa.array([list(r.flagged_ids) for _, _, r in verdicts], pa.list_(pa.int64())),
        }
        return pa.Table.from_arrays(list(columns.values()), schema=CHECKS_SCHEMA)

    @property
    def subsystem_quality(self) -> str:
        return next(row["quality"] for row in self.quality_rows if row["level"] == "subsystem")


class WithDerived(Mapping[str, Histogram]):
    """A snapshot's histograms plus the plug-in's derived ones, each derived when first asked for."""

    def __init__(self, plugin: DetectorPlugin, stored: Mapping[str, Histogram]) -> None:
        self._plugin = plugin
        self._stored = stored
        self._derived_names = [name for name in plugin.derived_names(stored) if name not in stored]
        self._derived: dict[str, Histogram] = {}

    def __getitem__(self, name: str) -> Histogram:
        if name in self._stored:
            return self._stored[name]
        if name not in self._derived_names:
            raise KeyError(name)
        if name not in self._derived:
            self._derived[name] = self._plugin.derive(name, self._stored)
        return self._derived[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._stored
        yield from self._derived_names

    def __len__(self) -> int:
        return len(self._stored) + len(self._derived_names)

    def __contains__(self, name: object) -> bool:
        return name in self._stored or name in self._derived_names


def evaluate_snapshot(
    plugin: DetectorPlugin, snapshot: SnapshotInput, options: ProcessingOptions | None = None
) -> Evaluation:
    """Run every declared check of `plugin` on the snapshot; rows in a stable order (histogram name,
    then declaration order), so two evaluations of the same snapshot give the same rows."""
    options = options or ProcessingOptions()
    histograms = WithDerived(plugin, snapshot.histograms)
    baseline = WithDerived(plugin, snapshot.baseline) if snapshot.baseline is not None else None
    # The events histogram is a stored one: looking among the derived names too would only cost.
    n_events = count_events(plugin, snapshot.histograms)
    interval = _Interval(plugin, snapshot, baseline, n_events)
    evaluation = Evaluation(snapshot, n_events=n_events)
    specs = plugin.check_specs
    names = sorted(histograms)
    plans = {name: _Plan(specs, name, histograms[name]) for name in names}
    stored = snapshot.histograms
    _prefetch(snapshot.baseline, [name for name, plan in plans.items() if plan.interval and name in stored])
    reference = snapshot.reference
    reference_n_events = None
    if reference is not None:
        _prefetch(reference, [name for name, plan in plans.items() if plan.reference and name in stored])
        reference = WithDerived(plugin, reference)
        reference_n_events = count_events(plugin, snapshot.reference)
    for name, plan in plans.items():
        histogram = plan.histogram
        results: list[tuple[str, CheckResult]] = []
        if plan.cumulative:
            checked = run_check_specs(
                plan.cumulative,
                histogram,
                "cumulative",
                options=options,
                n_events=n_events,
                beam_type=snapshot.beam_type,
            )
            results += [("cumulative", result) for result in checked]
        if plan.interval:
            results += [
                ("interval", result) for result in interval.check(name, histogram, plan.interval, options)
            ]
        if plan.reference and reference is not None and name in reference:
            reference_histogram = reference[name]
            if reference_histogram.same_binning(histogram):
                checked = run_check_specs(
                    plan.reference,
                    histogram,
                    "reference",
                    options=options,
                    n_events=n_events,
                    reference=reference_histogram,
                    reference_n_events=reference_n_events,
                    beam_type=snapshot.beam_type,
                )
                results += [("reference", result) for result in checked]
        if results:
            evaluation.checked.append(CheckedHistogram(name, tuple(results)))
    evaluation.quality_rows = _quality_rows(plugin, snapshot, evaluation.checked)
    return evaluation


class _Plan:
    """Which specs apply to one histogram, per content."""

    __slots__ = ("cumulative", "histogram", "interval", "reference")

    def __init__(self, specs: tuple[CheckSpec, ...], name: str, histogram: Histogram) -> None:
        self.histogram = histogram
        dimension = histogram.dimension
        self.cumulative = applicable_specs(specs, "cumulative", name, dimension)
        self.interval = applicable_specs(specs, "interval", name, dimension)
        self.reference = applicable_specs(specs, "reference", name, dimension)


def _prefetch(mapping: Mapping[str, Histogram] | None, names: list[str]) -> None:
    """Read what will be asked for in one go when the mapping can (e.g. a lazily read snapshot)."""
    prefetch = getattr(mapping, "prefetch", None)
    if prefetch is not None and names:
        prefetch(names)


class _Interval:
    """The content filled in the plug-in's interval before the snapshot, per histogram."""

    def __init__(
        self,
        plugin: DetectorPlugin,
        snapshot: SnapshotInput,
        baseline: Mapping[str, Histogram] | None,
        n_events: float | None,
    ) -> None:
        self.plugin = plugin
        self.snapshot = snapshot
        self.baseline = baseline
        self.duration_s: float | None = None
        self.n_events: float | None = None
        if baseline is not None and snapshot.baseline_time_utc is not None:
            self.duration_s = (snapshot.snapshot_time_utc - snapshot.baseline_time_utc).total_seconds()
            if snapshot.merger_reset:
                self.n_events = n_events
            else:
                before = count_events(plugin, snapshot.baseline or {})
                self.n_events = None if n_events is None or before is None else n_events - before

    def check(
        self, name: str, histogram: Histogram, specs: tuple[CheckSpec, ...], options: ProcessingOptions
    ) -> list[CheckResult]:
        if self.duration_s is None or self.baseline is None:
            message = f"needs {self.plugin.interval_s:g} s of data before this snapshot"
            return [CheckResult(spec.name, "Null", message, title=spec.title) for spec in specs]
        content = histogram
        if not self.snapshot.merger_reset and name in self.baseline:
            # A histogram whose binning changed within the run cannot be subtracted: judged as it is.
            with contextlib.suppress(ValueError):
                content = histogram - self.baseline[name]
        return run_check_specs(
            specs,
            content,
            "interval",
            options=options,
            n_events=self.n_events,
            duration_s=self.duration_s,
            beam_type=self.snapshot.beam_type,
        )


def _check_row(snapshot: SnapshotInput, histogram: str, content: str, result: CheckResult) -> dict[str, Any]:
    return {
        "run": snapshot.run,
        "subsystem": snapshot.subsystem,
        "snapshot_id": snapshot.snapshot_id,
        "snapshot_time_utc": snapshot.snapshot_time_utc,
        "histogram": histogram,
        "check": result.check,
        "title": result.title,
        "content": content,
        "quality": result.quality,
        "message": result.message,
        "threshold": result.threshold,
        "flagged_ids": list(result.flagged_ids),
    }


# How many of the worst checks a quality row names.
_NAMED_IN_MESSAGE = 3
_ORDER = {"Bad": 0, "Medium": 1, "Null": 2, "Good": 3}


def _quality_rows(
    plugin: DetectorPlugin, snapshot: SnapshotInput, checked: list[CheckedHistogram]
) -> list[dict[str, Any]]:
    by_histogram = {item.histogram: item.results for item in checked}
    rows = []
    for group, names in group_histograms(plugin, list(by_histogram)):
        results = [result for name in names for _, result in by_histogram[name]]
        named = [(name, result) for name in names for _, result in by_histogram[name]]
        rows.append(_quality_row(plugin, snapshot, "group", group.title, results, named))
    everything = [(item.histogram, result) for item in checked for _, result in item.results]
    rows.append(
        _quality_row(
            plugin, snapshot, "subsystem", snapshot.subsystem, [r for _, r in everything], everything
        )
    )
    return rows


def _quality_row(
    plugin: DetectorPlugin,
    snapshot: SnapshotInput,
    level: str,
    name: str,
    results: list[CheckResult],
    named: list[tuple[str, CheckResult]],
) -> dict[str, Any]:
    qualities = [result.quality for result in results]
    worst = sorted(
        (item for item in named if item[1].quality in ("Bad", "Medium")),
        key=lambda item: _ORDER[item[1].quality],
    )[:_NAMED_IN_MESSAGE]
    message = "; ".join(f"{result.quality}: {histogram} {result.check}" for histogram, result in worst)
    return {
        "run": snapshot.run,
        "subsystem": snapshot.subsystem,
        "snapshot_id": snapshot.snapshot_id,
        "snapshot_time_utc": snapshot.snapshot_time_utc,
        "level": level,
        "name": name,
        "quality": plugin.quality_rule.combine(qualities),
        "rule": plugin.quality_rule.name,
        "n_good": qualities.count("Good"),
        "n_medium": qualities.count("Medium"),
        "n_bad": qualities.count("Bad"),
        "n_null": qualities.count("Null"),
        "message": message,
    }
