"""Alarm rules on trend series, with the original OVERWATCH's semantics, and their evaluation.

A rule looks at one series of trended values (oldest first) and says whether it fires, and why:

- `between` (`min`, `max`, or `center`, `max_distance`): the last value is outside [min, max] (the
  bounds themselves are fine).
- `mean_in_range` (`min`, `max`, `n`): at least n values, and the mean of the last n is not strictly
  inside (min, max).
- `absolute_change` (`max_delta`): at least 2 values, and |last - previous| > max_delta.
- `relative_change` (`ratio` > 1): at least 2 values, and last is outside [|prev|/ratio, |prev|*ratio],
  with last's sign flipped when prev < 0 (so a change of sign always fires; after a 0 only 0 passes).
- `fraction_in_range` (`min`, `max`, `fraction`, `n`): at least n values, and fewer than fraction*n of
  the last n are strictly inside (min, max).

Fewer values than a rule needs never fire.
`AllOf` (AND) and `AnyOf` (OR) combine conditions and nest. A condition names the series it reads (a
trended quantity of the `cumulative` or `interval` content, of the alarm's histogram or of a named
one), so an aggregate can join several quantities and histograms. Everything here is pure: the
caller passes the series.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.qc.trending import CONTENTS, INTERVAL


class AlarmConfigError(ValueError):
    """A bad alarm parameter; `field` names it (e.g. `EMC.alarms[2].condition.max`)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def _number(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AlarmConfigError(field_name, f"must be a finite number, got {value!r}")
    return float(value)


# The most values a rule may look back at. A run's trend holds one value per snapshot: a day-long run
# at the receivers' default period (5 s) holds 17,280. A rule needing more would wait for values that
# never come, and never fire.
MAX_LOOKBACK_VALUES = 17_280


def _count(field_name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AlarmConfigError(field_name, f"must be a whole number >= {minimum}, got {value!r}")
    if value > MAX_LOOKBACK_VALUES:
        raise AlarmConfigError(
            field_name,
            f"must be at most {MAX_LOOKBACK_VALUES:,}, got {value:,}: a run's trend holds one value per "
            f"snapshot ({MAX_LOOKBACK_VALUES:,} in a day at one every 5 s), so the alarm would never fire",
        )
    return value


def _range(field_name: str, low: float, high: float) -> None:
    if low > high:
        raise AlarmConfigError(f"{field_name}.min", f"must be <= max ({low:g} > {high:g})")


class Rule(Protocol):
    """Judges one series; `needed` is how many of its newest values it ever looks at."""

    needed: int

    def check(self, values: Sequence[float]) -> str | None:
        """A message if the rule fires on `values` (oldest first), else None."""


@dataclass(frozen=True)
class BetweenValues:
    min_value: float
    max_value: float
    needed: int = field(default=1, init=False)

    def check(self, values: Sequence[float]) -> str | None:
        if not values:
            return None
        last = values[-1]
        if self.min_value <= last <= self.max_value:
            return None
        return f"{last:g} outside [{self.min_value:g}, {self.max_value:g}]"


@dataclass(frozen=True)
class MeanInRange:
    min_value: float
    max_value: float
    n: int
    needed: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needed", self.n)

    def check(self, values: Sequence[float]) -> str | None:
        if len(values) < self.n:
            return None
        mean = math.fsum(values[-self.n :]) / self.n
        if self.min_value < mean < self.max_value:
            return None
        return f"mean of last {self.n} = {mean:g} not inside ({self.min_value:g}, {self.max_value:g})"


@dataclass(frozen=True)
class AbsoluteChange:
    max_delta: float
    needed: int = field(default=2, init=False)

    def check(self, values: Sequence[float]) -> str | None:
        if len(values) < 2:
            return None
        previous, last = values[-2], values[-1]
        if abs(last - previous) <= self.max_delta:
            return None
        return (
            f"changed by {last - previous:+g} (from {previous:g} to {last:g}), more than {self.max_delta:g}"
        )


@dataclass(frozen=True)
class RelativeChange:
    ratio: float
    needed: int = field(default=2, init=False)

    def check(self, values: Sequence[float]) -> str | None:
        if len(values) < 2:
            return None
        previous, last = values[-2], values[-1]
        # A negative series compares magnitudes, but a change of sign is always an alarm.
        compared = -last if previous < 0 else last
        if abs(previous) / self.ratio <= compared <= abs(previous) * self.ratio:
            return None
        return f"changed from {previous:g} to {last:g}, more than a factor {self.ratio:g}"


@dataclass(frozen=True)
class FractionInRange:
    min_value: float
    max_value: float
    fraction: float
    n: int
    needed: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needed", self.n)

    def check(self, values: Sequence[float]) -> str | None:
        if len(values) < self.n:
            return None
        inside = sum(1 for v in values[-self.n :] if self.min_value < v < self.max_value)
        if inside >= self.fraction * self.n:
            return None
        return (
            f"{inside} of last {self.n} inside ({self.min_value:g}, {self.max_value:g}), "
            f"fewer than {self.fraction:g} of them"
        )


def make_rule(kind: str, parameters: dict, where: str) -> Rule:
    """A rule from its configuration (`type` and parameters); AlarmConfigError naming `where.<field>`
    for an unknown type, a missing, unknown or bad parameter."""
    builders: dict[str, tuple[set[str], Callable[[dict], Rule]]] = {
        "between": ({"min", "max", "center", "max_distance"}, lambda p: _between(p, where)),
        "mean_in_range": (
            {"min", "max", "n"},
            lambda p: MeanInRange(*_min_max(p, where), _count(f"{where}.n", _required(p, "n", where))),
        ),
        "absolute_change": (
            {"max_delta"},
            lambda p: AbsoluteChange(_non_negative(f"{where}.max_delta", _required(p, "max_delta", where))),
        ),
        "relative_change": ({"ratio"}, lambda p: RelativeChange(_ratio(p, where))),
        "fraction_in_range": (
            {"min", "max", "fraction", "n"},
            lambda p: FractionInRange(
                *_min_max(p, where),
                _fraction(p, where),
                _count(f"{where}.n", _required(p, "n", where)),
            ),
        ),
    }
    if kind not in builders:
        raise AlarmConfigError(f"{where}.type", f"must be one of {sorted(builders)}, got {kind!r}")
    allowed, build = builders[kind]
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise AlarmConfigError(f"{where}.{unknown[0]}", f"is not a parameter of {kind} ({sorted(allowed)})")
    return build(parameters)


def _required(parameters: dict, name: str, where: str) -> object:
    if name not in parameters:
        raise AlarmConfigError(f"{where}.{name}", "is missing")
    return parameters[name]


def _min_max(parameters: dict, where: str) -> tuple[float, float]:
    low = _number(f"{where}.min", _required(parameters, "min", where))
    high = _number(f"{where}.max", _required(parameters, "max", where))
    _range(where, low, high)
    return low, high


def _between(parameters: dict, where: str) -> BetweenValues:
    if "center" in parameters or "max_distance" in parameters:
        if "min" in parameters or "max" in parameters:
            raise AlarmConfigError(f"{where}.center", "give either min and max, or center and max_distance")
        center = _number(f"{where}.center", _required(parameters, "center", where))
        distance = _non_negative(f"{where}.max_distance", _required(parameters, "max_distance", where))
        return BetweenValues(center - distance, center + distance)
    return BetweenValues(*_min_max(parameters, where))


def _non_negative(field_name: str, value: object) -> float:
    number = _number(field_name, value)
    if number < 0:
        raise AlarmConfigError(field_name, f"must be >= 0, got {number:g}")
    return number


def _ratio(parameters: dict, where: str) -> float:
    ratio = _number(f"{where}.ratio", _required(parameters, "ratio", where))
    if not ratio > 1:
        raise AlarmConfigError(f"{where}.ratio", f"must be > 1, got {ratio:g}")
    return ratio


def _fraction(parameters: dict, where: str) -> float:
    fraction = _number(f"{where}.fraction", _required(parameters, "fraction", where))
    if not 0 < fraction <= 1:
        raise AlarmConfigError(f"{where}.fraction", f"must be in (0, 1], got {fraction:g}")
    return fraction


# (histogram, quantity, content) -> the series' values, oldest first (empty if none).
SeriesLookup = Callable[[str, str, str], Sequence[float]]
# A histogram's raw name -> what a message calls it (its display name: `pipeline.detectors.names`).
Namer = Callable[[str], str]


def raw_name(name: str) -> str:
    return name


@dataclass(frozen=True)
class Verdict:
    fired: bool
    message: str
    last_value: float | None = None


@dataclass(frozen=True)
class Condition:
    """A rule on one series: `quantity` of `content`, of the alarm's histogram unless `histogram` names
    another one."""

    quantity: str
    rule: Rule
    content: str = INTERVAL
    histogram: str | None = None
    name: str = ""

    def series_keys(self, histogram: str) -> Iterable[tuple[str, str, str]]:
        yield (self.histogram or histogram, self.quantity, self.content)

    @property
    def needed(self) -> int:
        return self.rule.needed

    def evaluate(self, histogram: str, lookup: SeriesLookup, name: Namer = raw_name) -> Verdict:
        """The verdict on `histogram`'s series; a message names histograms by `name` (people read it;
        the raw name stays in the result's keys)."""
        target = self.histogram or histogram
        values = lookup(target, self.quantity, self.content)
        message = self.rule.check(values)
        last = float(values[-1]) if len(values) else None
        if message is None:
            return Verdict(False, "", last)
        return Verdict(True, f"{self.content} {self.quantity} of {name(target)}: {message}", last)


@dataclass(frozen=True)
class _Combined:
    """Conditions joined by a logical operator: they need the series of every child, and as much
    history as the most demanding one."""

    children: tuple[AlarmCondition, ...]

    def series_keys(self, histogram: str) -> Iterable[tuple[str, str, str]]:
        for child in self.children:
            yield from child.series_keys(histogram)

    @property
    def needed(self) -> int:
        return max(child.needed for child in self.children)

    def evaluate(self, histogram: str, lookup: SeriesLookup, name: Namer = raw_name) -> Verdict:
        return self._join([child.evaluate(histogram, lookup, name) for child in self.children])

    def _join(self, verdicts: list[Verdict]) -> Verdict:
        raise NotImplementedError


@dataclass(frozen=True)
class AllOf(_Combined):
    """AND: fires when every child fires; the message lists them."""

    def _join(self, verdicts: list[Verdict]) -> Verdict:
        if all(v.fired for v in verdicts):
            return Verdict(True, "all of: " + "; ".join(v.message for v in verdicts), verdicts[0].last_value)
        return Verdict(False, "", verdicts[0].last_value)


@dataclass(frozen=True)
class AnyOf(_Combined):
    """OR: fires when any child fires; the message lists those that did."""

    def _join(self, verdicts: list[Verdict]) -> Verdict:
        fired = [v for v in verdicts if v.fired]
        if fired:
            return Verdict(True, "; ".join(v.message for v in fired), fired[0].last_value)
        return Verdict(False, "", verdicts[0].last_value)


AlarmCondition = Condition | AllOf | AnyOf


@dataclass(frozen=True)
class AlarmDefinition:
    """One alarm of one subsystem, applied to every trended histogram whose name matches `histograms`
    (a regular expression, searched)."""

    subsystem: str
    name: str
    histograms: str
    condition: AlarmCondition
    severity: str = "error"
    description: str = ""

    def matching(self, names: Iterable[str]) -> list[str]:
        pattern = re.compile(self.histograms)
        return [name for name in names if pattern.search(name)]

    @property
    def first_condition(self) -> Condition:
        """The first leaf: what an alarm links to (its quantity and content)."""
        condition: AlarmCondition = self.condition
        while not isinstance(condition, Condition):
            condition = condition.children[0]
        return condition


@dataclass(frozen=True)
class AlarmResult:
    """The evaluation of one alarm on one histogram at one snapshot."""

    definition: AlarmDefinition
    histogram: str
    verdict: Verdict
    label: str = ""  # what people read for `histogram` (its display name); "" when it did not fire

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.definition.subsystem, self.definition.name, self.histogram)


class SeriesHistory:
    """The newest values of every trend series of one run and subsystem, as many as the alarms need."""

    def __init__(self, keep: int) -> None:
        self.keep = max(keep, 2)
        self._series: dict[tuple[str, str, str], deque[float]] = {}
        self.last_snapshot_id: str | None = None

    def append(self, snapshot_id: str, rows: Iterable[tuple[str, str, str, float]]) -> None:
        """Add one snapshot's values: (histogram, quantity, content, value) rows."""
        for histogram, quantity, content, value in rows:
            series = self._series.get((histogram, quantity, content))
            if series is None:
                series = self._series[(histogram, quantity, content)] = deque(maxlen=self.keep)
            series.append(float(value))
        self.last_snapshot_id = snapshot_id

    def values(self, histogram: str, quantity: str, content: str) -> Sequence[float]:
        series = self._series.get((histogram, quantity, content))
        return list(series) if series is not None else []

    def histograms(self) -> set[str]:
        return {histogram for histogram, _, _ in self._series}


def evaluate(
    definitions: Sequence[AlarmDefinition],
    history: SeriesHistory,
    histograms: Iterable[str],
    name: Namer = raw_name,
) -> list[AlarmResult]:
    """Every definition on every histogram (of `histograms`) it matches; messages name histograms by
    `name` (called only for alarms that fire)."""
    names = sorted(histograms)
    results = []
    for definition in definitions:
        for histogram in definition.matching(names):
            verdict = definition.condition.evaluate(histogram, history.values, name)
            label = name(histogram) if verdict.fired else ""
            results.append(AlarmResult(definition, histogram, verdict, label))
    return results


def check_content(content: str, where: str) -> str:
    if content not in CONTENTS:
        raise AlarmConfigError(f"{where}.content", f"must be one of {CONTENTS}, got {content!r}")
    return content


def limits_for(
    definitions: Sequence[AlarmDefinition], histogram: str, quantity: str, content: str
) -> list[dict[str, object]]:
    """The value ranges alarms accept for one series (to draw as bands on its trend): one entry per
    range rule (`between`, `mean_in_range`, `fraction_in_range`) reading that series, with the
    alarm's name and severity."""
    limits: list[dict[str, object]] = []

    def visit(definition: AlarmDefinition, condition: AlarmCondition) -> None:
        if isinstance(condition, AllOf | AnyOf):
            for child in condition.children:
                visit(definition, child)
            return
        if (condition.histogram or histogram, condition.quantity, condition.content) != (
            histogram,
            quantity,
            content,
        ):
            return
        rule = condition.rule
        if isinstance(rule, BetweenValues | MeanInRange | FractionInRange):
            limits.append(
                {
                    "alarm": definition.name,
                    "severity": definition.severity,
                    "rule": type(rule).__name__,
                    "min": rule.min_value,
                    "max": rule.max_value,
                }
            )

    for definition in definitions:
        if definition.matching([histogram]) or _names_histogram(definition.condition, histogram):
            visit(definition, definition.condition)
    return limits


def _names_histogram(condition: AlarmCondition, histogram: str) -> bool:
    if isinstance(condition, Condition):
        return condition.histogram == histogram
    return any(_names_histogram(child, histogram) for child in condition.children)
