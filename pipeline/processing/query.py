"""A view request as text parameters: the names a run page's URL, the data API and notebooks share.

`min` and `max` are minutes since the start of run, `mode` is cumulative or reset, `scale` switches
scaling by the number of events, `threshold` is the hot-channel threshold (empty: each histogram's
default), and every plug-in option goes by its own name (e.g. `outlier_n_sigma`). `read_params` is the one
reading of them for the run page, its downloads, the data API and notebooks; values are checked by
`ProcessingOptions` and `Window`, and a bad one is an `OptionsError` naming the parameter as written.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.processing.options import (
    OptionsError,
    OptionSpec,
    ProcessingOptions,
    decimal_number,
    known_option_specs,
    not_a_number,
)
from pipeline.processing.timeslice import MergerMode, Window

# The run page's URL keys that choose what is drawn, not the numbers: accepted and ignored wherever a
# view's parameters are read, so a page's query string also works on the data API.
DISPLAY_PARAMETERS = ("group", "hist", "logx", "logy", "logz")
# Parameter name -> the field name the processing uses (and names in its errors).
PARAMETER_FIELDS = {
    "min": "min_minutes",
    "max": "max_minutes",
    "mode": "merger_mode",
    "scale": "scale_by_events",
    "threshold": "hot_channel_threshold",
}
FIELD_PARAMETERS = {field: parameter for parameter, field in PARAMETER_FIELDS.items()}
# Text parameters: a mapping (one value a name) or (name, value) pairs, which may repeat a name.
Parameters = Mapping[str, Any] | Iterable[tuple[str, Any]]


@dataclass(frozen=True)
class ViewQuery:
    """Window, merger mode and options of one view; None means "as recorded" / "the whole run"."""

    min_minutes: float | None = None
    max_minutes: float | None = None
    mode: MergerMode | None = None
    options: ProcessingOptions = field(default_factory=ProcessingOptions)

    @classmethod
    def from_params(
        cls, params: Parameters, ignore: Iterable[str] = (), subsystem: str | None = None
    ) -> ViewQuery:
        """Parse text parameters (a query string's pairs, keyword arguments) strictly, as the data API
        and downloads do: the first bad parameter raises OptionsError naming it (see `read_params`)."""
        query, errors = read_params(params, ignore, subsystem)
        if errors:
            raise errors[0]
        return query

    def window(self, run_length_minutes: float) -> Window | None:
        """The window to ask the service for: None for the whole run; a missing end is the run's end
        (`min` alone: min..end), a missing start the run's start. OptionsError naming the parameter
        for a window the run does not have (validated by `Window.validate`)."""
        if self.min_minutes is None and self.max_minutes is None:
            return None
        low = 0.0 if self.min_minutes is None else self.min_minutes
        high = run_length_minutes if self.max_minutes is None else self.max_minutes
        window = Window(low, high)
        try:
            window.validate(run_length_minutes)
        except OptionsError as error:
            raise renamed(error) from None
        return window

    def to_params(self) -> dict[str, str]:
        """The parameters that give this query back through `from_params` (defaults left out)."""
        params: dict[str, str] = {}
        if self.min_minutes is not None:
            params["min"] = number_text(self.min_minutes)
        if self.max_minutes is not None:
            params["max"] = number_text(self.max_minutes)
        if self.mode is not None:
            params["mode"] = self.mode.value
        if not self.options.scale_by_events:
            params["scale"] = "0"  # booleans as 1/0, as the run page's URL writes them
        if self.options.hot_channel_threshold is not None:
            params["threshold"] = number_text(self.options.hot_channel_threshold)
        for name, value in self.options.extra:
            if isinstance(value, bool):
                params[name] = "1" if value else "0"
            else:
                params[name] = number_text(value) if isinstance(value, int | float) else str(value)
        return params


def read_params(
    params: Parameters, ignore: Iterable[str] = (), subsystem: str | None = None
) -> tuple[ViewQuery, list[OptionsError]]:
    """The one reading of a view's text parameters, for the run page, the downloads and the data API:
    the query made of every valid parameter, and one OptionsError for each one left out, naming the
    parameter as written. The API and downloads refuse a request with any error (`from_params`); the
    run page draws the query and says what was not applied.

    Names in `ignore` and the page's display keys (`DISPLAY_PARAMETERS`) are skipped. An empty value
    means "not given". Left out: a name given more than once (which value was meant is not known), a
    value that does not parse (numbers as `decimal_number` reads them), `min` > `max` (both), an
    unknown name, and an option that cannot act on `subsystem` (`subsystem_options`; e.g.
    `threshold` for TPC: a view with it would not be what was asked for).
    """
    skipped = {*ignore, *DISPLAY_PARAMETERS}
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    counts = Counter(name for name, _ in pairs if name not in skipped)
    errors = given_more_than_once(counts)
    given = {name: value for name, value in pairs if counts.get(name) == 1 and value != ""}
    minimum = _kept(errors, _minutes, "min", given.pop("min", None))
    maximum = _kept(errors, _minutes, "max", given.pop("max", None))
    if minimum is not None and maximum is not None and minimum > maximum:
        errors.append(OptionsError("min", f"must be <= max ({minimum:g} > {maximum:g})"))
        minimum = maximum = None
    mode = _kept(errors, _mode, "mode", given.pop("mode", None))
    known = {*known_option_specs(), *FIELD_PARAMETERS}
    offered = None if subsystem is None else subsystem_options(subsystem).names()
    option_values: dict[str, Any] = {}
    for name, value in given.items():
        option = PARAMETER_FIELDS.get(name, name)
        if option not in known:
            errors.append(OptionsError(name, f"unknown parameter (known: {', '.join(known_parameters())})"))
        elif offered is not None and option not in offered:
            errors.append(OptionsError(name, f"{subsystem} has no such option"))
        else:
            try:
                ProcessingOptions.from_mapping({option: value})
            except OptionsError as error:
                errors.append(renamed(error))
            else:
                option_values[option] = value
    return ViewQuery(minimum, maximum, mode, ProcessingOptions.from_mapping(option_values)), errors


def _kept(errors: list[OptionsError], parse: Callable[[str, Any], Any], name: str, value: Any) -> Any:
    """`parse(name, value)`, or None with its error added to `errors`."""
    try:
        return parse(name, value)
    except OptionsError as error:
        errors.append(error)
        return None


SCALE_OPTION = "scale_by_events"
THRESHOLD_OPTION = "hot_channel_threshold"


@dataclass(frozen=True)
class SubsystemOptions:
    """The options that can act on a subsystem's views: scaling when its plug-in scales some histograms
    by events (`DetectorPlugin.scales_any_by_events`), the hot-channel threshold when the plug-in runs
    checks on a page (`CheckSpec.on_page`: without one a threshold changes nothing), and the plug-in's
    own (`option_specs`). A page offers only these; the data API and downloads refuse the others."""

    scale: bool
    threshold: bool
    plugin: Mapping[str, OptionSpec]

    def names(self) -> frozenset[str]:
        common = {SCALE_OPTION: self.scale, THRESHOLD_OPTION: self.threshold}
        return frozenset(self.plugin) | {name for name, offered in common.items() if offered}


def subsystem_options(subsystem: str) -> SubsystemOptions:
    """What `subsystem`'s plug-in (`pipeline.detectors.plugin_for`) can act on."""
    from pipeline.detectors import plugin_for  # here: the plug-ins import the options module

    plugin = plugin_for(subsystem)
    return SubsystemOptions(
        scale=plugin.scales_any_by_events,
        threshold=any(spec.on_page for spec in plugin.check_specs),
        plugin={spec.name: spec for spec in plugin.option_specs},
    )


def given_more_than_once(counts: Counter[str]) -> list[OptionsError]:
    """One error for each URL key given more than once: which of its values was meant is not known."""
    return [
        OptionsError(name, f"given {count} times: give it once")
        for name, count in counts.items()
        if count > 1
    ]


def known_parameters() -> list[str]:
    """Every parameter a view accepts: the common ones, then each plug-in option, sorted."""
    return [*PARAMETER_FIELDS, *sorted(known_option_specs())]


def renamed(error: OptionsError) -> OptionsError:
    """The same error, naming the parameter as a URL writes it (`min`, not `min_minutes`)."""
    parameter = FIELD_PARAMETERS.get(error.field)
    if parameter is None:
        return error
    message = str(error).split(": ", 1)[-1]
    return OptionsError(parameter, message.replace("max_minutes", "max").replace("min_minutes", "min"))


def number_text(value: float) -> str:
    """A number as a URL writes it: whole numbers without ".0", others exactly (repr)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _minutes(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise OptionsError(name, f"must be a number of minutes, got {value!r}")
    minutes = decimal_number(value) if isinstance(value, str) else value
    if not isinstance(minutes, int | float):
        raise not_a_number(name, value, "a number of minutes")
    if not math.isfinite(minutes) or minutes < 0:
        raise OptionsError(name, f"must be a number of minutes >= 0, got {value!r}")
    return float(minutes)


def _mode(name: str, value: Any) -> MergerMode | None:
    if value is None:
        return None
    try:
        return MergerMode(str(value).strip().lower())
    except ValueError:
        raise OptionsError(name, f"must be cumulative or reset, got {value!r}") from None
