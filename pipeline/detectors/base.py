"""The detector plug-in contract and the generic helpers every plug-in shares.

A detector plug-in is one small module that says, for its subsystem, how histograms are grouped, named
and drawn, which ones are scaled by the number of events, which extra histograms are derived from the
received ones, which ones are stacked, and which checks judge them. Everything here is plain data and
pure functions (no plotting library, no I/O, no global state), so the processing core and the dashboard
can call it from anywhere and a user's option change is just a new call.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import numpy as np

from pipeline.detectors.names import display_name, plain_text, unique_labels
from pipeline.histogram import Histogram
from pipeline.processing.options import OptionSpec, ProcessingOptions

log = logging.getLogger(__name__)

Quality = Literal["Good", "Medium", "Bad", "Null"]
QUALITIES: tuple[Quality, ...] = ("Good", "Medium", "Bad", "Null")
# What a check runs on: the snapshot as received (cumulative since start of run in cumulative mode),
# what was filled in the last `interval_s` seconds (`snapshot - snapshot interval_s earlier`), or the
# snapshot against the subsystem's reference run (only where one is set).
CheckContent = Literal["cumulative", "interval", "reference"]
CHECK_CONTENTS: tuple[CheckContent, ...] = ("cumulative", "interval", "reference")

# A straight line drawn over a histogram, in the histogram's own axis coordinates: ((x0, y0), (x1, y1)).
LineSegment = tuple[tuple[float, float], tuple[float, float]]

SCALED_VALUE_TITLE = "entries / events"
UNSCALED_VALUE_TITLE = "entries"


@dataclass(frozen=True)
class Group:
    """A named set of histograms on a run page: every histogram whose name contains `selector`.

    The empty selector is a catch-all. `grid` marks per-supermodule groups that the dashboard lays out as
    a grid, in the order the plug-in's `order_grid` returns.
    """

    title: str
    selector: str
    grid: bool = False

    @property
    def is_catch_all(self) -> bool:
        return self.selector == ""


class SecondaryAxis(NamedTuple):
    """A second x axis on top of the plot: its title, and the factor from the primary axis to it."""

    title: str
    scale: float


@dataclass(frozen=True)
class MarkerStyle:
    """How the points of one series are drawn. Symbols use plotly's names ("circle", "circle-open")."""

    color: str
    symbol: str = "circle"
    size: float = 0.8


@dataclass(frozen=True)
class DrawHints:
    """Everything the dashboard needs to draw one histogram the way its detector experts want it.

    Axis titles use `_{...}` and `^{...}` for sub- and superscripts and Unicode for Greek letters; `None`
    means "keep the histogram's own axis title" (and `title=None` its own title). Ranges are in axis
    units. Log flags are defaults the person looking at the plot may toggle.
    """

    pretty_name: str
    title: str | None = None
    show_title: bool = False
    colz: bool = False
    log_x: bool = False
    log_y: bool = False
    log_z: bool = False
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    x_title: str | None = None
    y_title: str | None = None
    z_title: str | None = None
    grid_lines: bool = False
    overlays: tuple[LineSegment, ...] = ()
    secondary_x_axis: SecondaryAxis | None = None
    marker: MarkerStyle | None = None


@dataclass(frozen=True)
class Stack:
    """Histograms drawn together on one plot (e.g. the EMCal and DCal versions of one spectrum).

    `name` is the key the stack is shown under (its first member's name): the dashboard draws the stack
    in that member's place and does not show the other members on their own. `styles[i]` styles
    `members[i]`; draw hints of the first member (log y, secondary axis, ...) apply to the whole stack.
    """

    name: str
    title: str
    members: tuple[str, ...]
    labels: tuple[str, ...]
    styles: tuple[MarkerStyle, ...]


@dataclass(frozen=True)
class TrendSpec:
    """Quantities trended for every histogram whose name matches `pattern` (a regular expression,
    searched): `pipeline.qc.trending.QUANTITIES` says what each quantity name computes."""

    pattern: str
    quantities: tuple[str, ...] = ("mean", "std_dev", "maximum")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one histogram, in ALICE O2 QualityControl terms, with typed details.

    - `title`: what the check is called on a page ("Hot FastORs"); `CheckSpec.title` when empty.
    - `threshold` / `threshold_source` ("default", "user", ...) / `per_event`: the limit the numbers
      were compared with, where it came from, and whether it is per event.
    - `flagged_ids`: the channels (FastOR ids, cell ids, sectors...) the check flagged; `id_label`
      says what they are ("FastOR ids"); `flags_above` is True when they were flagged for being
      *above* `threshold` (hot channels: the plot rings them and draws the threshold line).
    - `details`: anything else the check wants to say (mean, n_sigma...). For checks that flag
      channels above a threshold it also holds `threshold`, `threshold_source`, `per_event` and
      `hot_channel_ids`, the view the dashboard read before results were typed; results built the old
      way (those keys in `details` only) get the typed fields from them.
    """

    check: str
    quality: Quality
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    threshold: float | None = None
    threshold_source: str = ""
    per_event: bool = False
    flagged_ids: tuple[int, ...] = ()
    id_label: str = ""
    flags_above: bool = False

    def __post_init__(self) -> None:
        if self.quality not in QUALITIES:
            raise ValueError(f"{self.check}: quality must be one of {QUALITIES}, got {self.quality!r}")
        if not (self.details or self.flagged_ids or self.flags_above):
            return  # most verdicts: nothing to convert (this runs for every histogram of every snapshot)
        details = dict(self.details)
        if "hot_channel_ids" in details and not self.flagged_ids:
            # Built the old way: the typed fields come from the details.
            object.__setattr__(self, "flagged_ids", tuple(int(i) for i in details["hot_channel_ids"]))
            object.__setattr__(self, "flags_above", True)
            if self.threshold is None and details.get("threshold") is not None:
                object.__setattr__(self, "threshold", float(details["threshold"]))
            if not self.threshold_source:
                object.__setattr__(self, "threshold_source", str(details.get("threshold_source", "")))
            object.__setattr__(self, "per_event", bool(details.get("per_event", self.per_event)))
        object.__setattr__(self, "flagged_ids", tuple(int(i) for i in self.flagged_ids))
        if self.flags_above:
            details.update(per_event=self.per_event, hot_channel_ids=list(self.flagged_ids))
            if self.threshold is not None:
                details["threshold"] = self.threshold
            if self.threshold_source:
                details["threshold_source"] = self.threshold_source
        elif self.flagged_ids:
            details.setdefault("flagged_ids", list(self.flagged_ids))
        object.__setattr__(self, "details", details)


@dataclass(frozen=True)
class CheckParameters:
    """What a check function gets besides the histogram: its declared parameters (with the
    per-histogram override applied) and what the QC service knows about the snapshot.

    `n_events`: events in the content checked (the snapshot's, or the interval's); `duration_s`: the
    seconds an interval covers (None for cumulative content); `reference` and `reference_n_events`:
    the reference run's histogram of the same name (reference checks only).
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    options: ProcessingOptions = field(default_factory=ProcessingOptions)
    n_events: float | None = None
    duration_s: float | None = None
    reference: Histogram | None = None
    reference_n_events: float | None = None

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


CheckFunction = Callable[[Histogram, CheckParameters], "CheckResult | None"]


@dataclass(frozen=True, eq=False)
class CheckSpec:
    """A declared check: which histograms it judges, on what content, with which parameters.

    `names` is a regular expression searched in the histogram name; `dimensions` limits it to
    1D/2D/3D histograms. `parameters` are the defaults, `overrides` per-histogram values as
    (name regex, parameters) pairs, the first matching one winning (e.g. one threshold per
    histogram). `function(histogram, CheckParameters)` is pure and returns a new `CheckResult` (the
    caller names it after the spec), or None when it has nothing to say about that histogram (e.g.
    switched off by an option).

    The QC service runs every spec on every snapshot with the default options and stores the verdicts.
    `on_page` marks the cumulative checks a page also runs on what it shows, because their verdict
    depends on the page's processing options (a user's hot-channel threshold, per-event scaling).
    `tracks_channels` marks checks whose flagged ids are channels with a history (`pipeline.qc.history`).
    """

    name: str
    title: str
    function: CheckFunction
    names: str
    dimensions: tuple[int, ...] = (1, 2, 3)
    content: CheckContent = "cumulative"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    overrides: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    # Per beam type (as the merger reports it; "Pb-Pb" and "PbPb" alike), applied after `overrides`:
    # e.g. a lower minimum event rate for heavy ions.
    beam_overrides: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    on_page: bool = False
    # Its flagged ids are channels whose history is kept (which runs and minutes flagged them).
    tracks_channels: bool = False

    def __post_init__(self) -> None:
        if self.on_page and self.content != "cumulative":
            raise ValueError(f"check {self.name}: only cumulative checks can run on a page")
        if self.content not in CHECK_CONTENTS:
            raise ValueError(f"check {self.name}: content must be one of {CHECK_CONTENTS}")
        re.compile(self.names)

    def applies_to(self, name: str, dimension: int) -> bool:
        return dimension in self.dimensions and self.names_match(name)

    def names_match(self, name: str) -> bool:
        return _compiled(self.names).search(name) is not None

    def parameters_for(self, name: str, beam_type: str = "") -> Mapping[str, Any]:
        """The parameters for one histogram in a run of `beam_type`: the defaults, its per-histogram
        override, then the beam type's (read-only)."""
        return _parameters_for(self, name, beam_key(beam_type))


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=65536)
def _parameters_for(spec: CheckSpec, name: str, beam: str) -> Mapping[str, Any]:
    values = dict(spec.parameters)
    for pattern, override in spec.overrides:
        if _compiled(pattern).search(name):
            values.update(override)
            break
    for beam_type, override in spec.beam_overrides:
        if beam_key(beam_type) == beam:
            values.update(override)
            break
    return MappingProxyType(values)


def beam_key(beam_type: str) -> str:
    """A beam type as mergers spell it in any of their ways ("Pb-Pb", "PbPb", "pbpb"): "pbpb"."""
    return re.sub(r"[^a-z0-9]", "", beam_type.lower())


class QualityRule(NamedTuple):
    """How qualities combine into one (per group, per subsystem): a name stored with the result, and
    the function."""

    name: str
    combine: Callable[[Sequence[Quality]], Quality]


_SEVERITY = {"Good": 1, "Medium": 2, "Bad": 3}


def worst_of(qualities: Sequence[Quality]) -> Quality:
    """The worst of Good < Medium < Bad; Null (no verdict) only when nothing else was said."""
    judged = [quality for quality in qualities if quality != "Null"]
    return max(judged, key=_SEVERITY.__getitem__) if judged else "Null"


def strict_worst_of(qualities: Sequence[Quality]) -> Quality:
    """O2 QualityControl's WorstOf: Null is worse than Bad (a missing verdict hides everything)."""
    if not qualities or "Null" in qualities:
        return "Null"
    return worst_of(qualities)


WORST = QualityRule("worst", worst_of)
STRICT_WORST = QualityRule("strict_worst", strict_worst_of)


def run_check_specs(
    specs: Iterable[CheckSpec],
    histogram: Histogram,
    content: CheckContent,
    *,
    options: ProcessingOptions | None = None,
    n_events: float | None = None,
    duration_s: float | None = None,
    reference: Histogram | None = None,
    reference_n_events: float | None = None,
    beam_type: str = "",
) -> list[CheckResult]:
    """Every spec for `content` that applies to the histogram, in declaration order.

    A check that raises gives a Null result saying so (and a log line) instead of stopping the others:
    one bad histogram must not hide the verdicts on the rest.
    """
    options = options or ProcessingOptions()
    results: list[CheckResult] = []
    for spec in applicable_specs(tuple(specs), content, histogram.name, histogram.dimension):
        parameters = CheckParameters(
            values=spec.parameters_for(histogram.name, beam_type),
            options=options,
            n_events=n_events,
            duration_s=duration_s,
            reference=reference,
            reference_n_events=reference_n_events,
        )
        try:
            result = spec.function(histogram, parameters)
        except Exception as error:
            log.warning("check %s failed on %s", spec.name, histogram.name, exc_info=True)
            result = CheckResult(spec.name, "Null", f"check failed: {type(error).__name__}: {error}")
        if result is None:
            continue
        if result.check != spec.name or not result.title:
            # The spec names the verdict (a generic function serves several specs). The result was
            # just made for this call, so it is named in place: `dataclasses.replace` would validate
            # it all again, for every histogram of every snapshot.
            object.__setattr__(result, "check", spec.name)
            object.__setattr__(result, "title", result.title or spec.title)
        results.append(result)
    return results


@lru_cache(maxsize=65536)
def applicable_specs(
    specs: tuple[CheckSpec, ...], content: CheckContent, name: str, dimension: int
) -> tuple[CheckSpec, ...]:
    """The specs of `content` that apply to a histogram, in declaration order. Cached: the same
    names come back in every snapshot, and matching every spec's pattern each time adds up."""
    return tuple(spec for spec in specs if spec.content == content and spec.applies_to(name, dimension))


@dataclass(frozen=True)
class ProcessedHistogram:
    """A histogram ready to show: scaled if asked, with its draw hints and check results."""

    histogram: Histogram
    hints: DrawHints
    checks: tuple[CheckResult, ...]
    scaled_by_events: bool


@dataclass(frozen=True)
class DetectorPlugin:
    """The plug-in contract; this base class is also the generic plug-in for subsystems without a module.

    A detector module subclasses it, overrides the hooks it needs, and exposes one instance as `PLUGIN`.
    Hooks must be pure: they see only their arguments and return new objects.

    `groups` is the full, priority-ordered list used when the subsystem has its own receiver.
    `groups_without_own_receiver` is the list used when it is shown from HLT files; `None` means
    `groups` minus the catch-all (otherwise every HLT histogram would land in "Non <SYS>").
    `own_names` (a regular expression searched in a name) says which histograms of an HLT file are
    this subsystem's own when it is shown from HLT files, which hold every detector's; `None` means
    names containing the subsystem's name. Group selectors alone are too broad for that (EMC's
    "Cluster" would take the HLT's fHistClusterChargeMax).
    `option_specs` declares the plug-in's options; every subsystem accepts the union of them all.
    `check_specs` declares the checks (`CheckSpec`); the QC service runs all of them on every snapshot,
    a page runs the cumulative ones on what it shows. `quality_rule` combines the check qualities of a
    group and of the whole subsystem (worst wins by default).
    `trends` declares what the QC service trends for every snapshot (see `TrendSpec`).
    """

    subsystem: str
    groups: tuple[Group, ...]
    groups_without_own_receiver: tuple[Group, ...] | None = None
    option_specs: tuple[OptionSpec, ...] = ()
    own_names: str | None = None
    check_specs: tuple[CheckSpec, ...] = ()
    quality_rule: QualityRule = WORST
    # Seconds an "interval" check looks back: snapshot minus the newest snapshot at least this old.
    interval_s: float = 60.0
    trends: tuple[TrendSpec, ...] = ()

    def groups_for(self, has_own_receiver: bool) -> tuple[Group, ...]:
        if has_own_receiver:
            return self.groups
        if self.groups_without_own_receiver is not None:
            return self.groups_without_own_receiver
        return tuple(group for group in self.groups if not group.is_catch_all)

    def is_own_histogram(self, name: str) -> bool:
        """Whether an HLT file's histogram `name` belongs to this subsystem (see `own_names`)."""
        pattern = re.escape(self.subsystem) if self.own_names is None else self.own_names
        return re.search(pattern, name) is not None

    def explicit_name(self, name: str) -> str | None:
        """The detector experts' own name for a histogram, or None to let its title or name speak."""
        return None

    def display_name(self, name: str, title: str = "") -> str:
        """What every label calls the histogram (`pipeline.detectors.names.display_name`): the explicit
        name, else its readable ROOT `title`, else its cleaned name."""
        return display_name(name, title, self.explicit_name(name))

    def labels(self, names: Iterable[str], titles: Mapping[str, str]) -> dict[str, str]:
        """Plain-text labels for a list of histograms (menus, tiles, trend choices): each one's display
        name (`titles`: their ROOT titles, by name), two alike told apart by their raw names."""
        ordered = list(dict.fromkeys(names))
        shown = [plain_text(self.display_name(name, titles.get(name, ""))) for name in ordered]
        return dict(zip(ordered, unique_labels(shown, ordered), strict=True))

    def draw_hints(self, histogram: Histogram) -> DrawHints:
        # A heatmap is the only sensible way to show a TH2 on the web, whatever ROOT's default was.
        return DrawHints(
            pretty_name=self.display_name(histogram.name, histogram.title), colz=histogram.dimension == 2
        )

    def scales_by_events(self, name: str) -> bool:
        """Whether `name` is shown per event when scaling is on (and the run has an event count)."""
        return False

    @property
    def scales_any_by_events(self) -> bool:
        """Whether "scale by number of events" can change anything this plug-in shows: only a plug-in
        that overrides `scales_by_events` says yes to some name (the default says no to every one), so
        the rule stays in that one method."""
        return type(self).scales_by_events is not DetectorPlugin.scales_by_events

    def order_grid(self, names: Sequence[str]) -> list[str]:
        """Order of the members of a grid group; the default keeps the given order."""
        return list(names)

    def derived_names(self, names: Iterable[str]) -> list[str]:
        """Names of the extra histograms (projections, ...) `derive` can make from histograms named so."""
        return []

    def derive(self, name: str, histograms: Mapping[str, Histogram]) -> Histogram:
        """One extra histogram, reading from `histograms` only what it needs; KeyError if it cannot."""
        raise KeyError(name)

    def derived_histograms(self, histograms: Mapping[str, Histogram]) -> dict[str, Histogram]:
        """Every extra histogram that can be made from `histograms`, keyed by name."""
        derived = {}
        for name in self.derived_names(histograms.keys()):
            try:
                derived[name] = self.derive(name, histograms)
            except KeyError:
                continue
        return derived

    def stacks(self, names: Iterable[str]) -> list[Stack]:
        return []

    def checks(
        self, histogram: Histogram, options: ProcessingOptions, n_events: float | None
    ) -> list[CheckResult]:
        """Judge the histogram as received (unscaled) with the declared checks a page runs (`on_page`);
        a check that needs per-event values scales itself with `scale_by_events_if_requested`, so
        calling it directly gives the same verdict as the processing path. The QC service runs all."""
        on_page = [spec for spec in self.check_specs if spec.on_page]
        return run_check_specs(on_page, histogram, "cumulative", options=options, n_events=n_events)

    def check_spec(self, name: str) -> CheckSpec | None:
        """The declared check called `name`, or None."""
        return next((spec for spec in self.check_specs if spec.name == name), None)

    def events_histogram_name(self, names: Iterable[str]) -> str | None:
        # The original took the first key (keys sorted) whose lower-cased name contains "events".
        candidates = sorted(name for name in names if "events" in name.lower())
        return candidates[0] if candidates else None


def generic_plugin(subsystem: str) -> DetectorPlugin:
    """The plug-in for a subsystem without a module: one group with everything from its own files, or
    only the histograms naming it when it is shown from HLT files (the original's default)."""
    title = f"{subsystem} Histograms"
    return DetectorPlugin(
        subsystem=subsystem,
        groups=(Group(title, ""),),
        groups_without_own_receiver=(Group(title, subsystem),),
    )


def group_histograms(
    plugin: DetectorPlugin, names: Iterable[str], has_own_receiver: bool = True
) -> list[tuple[Group, list[str]]]:
    """Place each name in the first group (in priority order) whose selector it contains.

    Empty groups are left out; names no group takes are not shown. Non-grid groups keep the order of
    `names`; grid groups use `plugin.order_grid`.
    """
    groups = plugin.groups_for(has_own_receiver)
    members: list[list[str]] = [[] for _ in groups]
    for name in names:
        for index, group in enumerate(groups):
            if group.selector in name:
                members[index].append(name)
                break
    return [
        (group, plugin.order_grid(group_names) if group.grid else group_names)
        for group, group_names in zip(groups, members, strict=True)
        if group_names
    ]


def count_events(plugin: DetectorPlugin, histograms: Mapping[str, Histogram]) -> float | None:
    """Number of events: the first regular bin of the plug-in's events histogram (as the original read it).

    Called on every snapshot rather than once per run, so scaling never uses a stale count (the original
    read it only when a run was first classified).
    """
    name = plugin.events_histogram_name(histograms.keys())
    if name is None:
        return None
    values = histograms[name].values()
    return float(values.flat[0]) if values.size else None


def scale_by_events_if_requested(
    histogram: Histogram, options: ProcessingOptions, n_events: float | None
) -> tuple[Histogram, bool]:
    """(histogram / n_events, True) when scaling is switched on and the count is usable, else
    (histogram, False). Variances scale with 1/n_events², as in ROOT's TH1::Scale."""
    if options.scale_by_events and n_events is not None and math.isfinite(n_events) and n_events > 0:
        return histogram.scaled(1.0 / n_events), True
    return histogram, False


def process_histogram(
    plugin: DetectorPlugin, histogram: Histogram, options: ProcessingOptions, n_events: float | None
) -> ProcessedHistogram:
    """Scale (only names the plug-in scales), attach draw hints and run the plug-in's checks."""
    hints = plugin.draw_hints(histogram)
    scaled = False
    shown = histogram
    if plugin.scales_by_events(histogram.name):
        shown, scaled = scale_by_events_if_requested(histogram, options, n_events)
        # Say what the numbers are: a plot labelled per event must really be per event.
        value_title = SCALED_VALUE_TITLE if scaled else UNSCALED_VALUE_TITLE
        if histogram.dimension >= 2:
            hints = replace(hints, z_title=value_title)
        else:
            hints = replace(hints, y_title=value_title)
    check_results = tuple(plugin.checks(histogram, options, n_events))
    return ProcessedHistogram(histogram=shown, hints=hints, checks=check_results, scaled_by_events=scaled)


def bin_range_within(edges: np.ndarray, low: float = -math.inf, high: float = math.inf) -> tuple[int, int]:
    """ROOT bin numbers (first, last), inclusive, of the regular bins lying entirely inside [low, high].

    A bin straddling a limit is left out, so e.g. an A side (η ≥ 0) and a C side (η ≤ 0) never share a
    bin. An empty selection gives first > last.
    """
    edges = np.asarray(edges, dtype=float)
    # Edges computed as -1 + k*0.1 can miss 0 by an ulp; allow a sliver of a bin width.
    tolerance = 1e-9 * float(np.max(np.diff(edges))) if len(edges) > 1 else 0.0
    inside = (edges[:-1] >= low - tolerance) & (edges[1:] <= high + tolerance)
    selected = np.flatnonzero(inside)
    if selected.size == 0:
        return 1, 0
    return int(selected[0]) + 1, int(selected[-1]) + 1


def project(
    source: Histogram,
    keep_axes: Sequence[int],
    *,
    name: str,
    title: str = "",
    bin_ranges: Mapping[int, tuple[int, int]] | None = None,
    axis_titles: Sequence[str] | None = None,
) -> Histogram:
    """Sum `source` over the axes not in `keep_axes`; the result's axes are `keep_axes`, in that order.

    `keep_axes` lists source axes (0 = x, 1 = y, 2 = z) as the result's x, y, ... axes, so ROOT's
    `Project3D("XZ")` ("X vs Z": Z horizontal, X vertical) is `keep_axes=(2, 0)` and `ProjectionZ` is
    `(2,)`. `bin_ranges` restricts summed axes to ROOT bin numbers (first, last), inclusive, where 0 is
    the underflow and N+1 the overflow; out-of-range numbers are clipped. A summed axis without a range
    includes its under- and overflow, as ROOT does. Kept axes keep all their bins, flow included, and
    their edges. Values and variances are summed alike. `axis_titles` (x, y, z of the result) defaults
    to the kept source axes' titles.
    """
    dimension = source.dimension
    keep_axes = tuple(keep_axes)
    if len(set(keep_axes)) != len(keep_axes) or not all(0 <= axis < dimension for axis in keep_axes):
        raise ValueError(f"{source.name}: cannot keep axes {keep_axes} of a {dimension}D histogram")
    bin_ranges = dict(bin_ranges or {})
    if kept_with_range := set(bin_ranges) & set(keep_axes):
        raise ValueError(
            f"{source.name}: bin ranges on kept axes {sorted(kept_with_range)} are not supported"
        )

    selection: list[slice] = []
    for axis in range(dimension):
        n_bins_with_flow = len(source.edges[axis]) + 1
        first, last = bin_ranges.get(axis, (0, n_bins_with_flow - 1))
        first = min(max(first, 0), n_bins_with_flow)
        last = min(max(last, -1), n_bins_with_flow - 1)
        selection.append(slice(first, max(last + 1, first)))
    summed_axes = tuple(axis for axis in range(dimension) if axis not in keep_axes)
    # After summing, the remaining axes are the kept ones in source order; reorder them as asked.
    remaining_order = sorted(keep_axes)
    transpose = tuple(remaining_order.index(axis) for axis in keep_axes)

    def sum_and_order(array_flow: np.ndarray) -> np.ndarray:
        return np.transpose(array_flow[tuple(selection)].sum(axis=summed_axes), transpose)

    values_flow = sum_and_order(source.values_flow)
    variances_flow = sum_and_order(source.variances_flow)
    if axis_titles is None:
        axis_titles = tuple(source.axis_titles[axis] for axis in keep_axes)
    return Histogram(
        name=name,
        class_name=f"TH{len(keep_axes)}D",
        title=title,
        edges=tuple(np.array(source.edges[axis], dtype=float) for axis in keep_axes),
        values_flow=np.ascontiguousarray(values_flow, dtype=float),
        variances_flow=np.ascontiguousarray(variances_flow, dtype=float),
        # ROOT resets a projection's entries to its effective entries; the summed content is close
        # enough for display and exact for unweighted fills.
        entries=float(values_flow.sum()),
        axis_titles=tuple(axis_titles),
    )
