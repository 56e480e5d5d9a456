"""A run page's view as a URL query, and back: every choice a user makes, so a link reproduces it.

`?group=FastOR&hist=EMCTRQA_histFastORL0&min=2&max=4&mode=reset&scale=0&threshold=0.001&logz=0
&outlier_n_sigma=3`. A missing key means the default: the plug-in's first group, the group's first
histogram, the full run (live), the mode the run was recorded in, scaled by events, each histogram's
own threshold, the experts' log axes for that histogram, the plug-in's option defaults. Values stay the
text the user typed: the processing layer validates them and names a bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode

from pipeline.processing.options import OptionsError, known_option_specs
from pipeline.processing.query import (
    SCALE_OPTION,
    THRESHOLD_OPTION,
    options_not_offered,
)

# Query keys in the order a URL lists them.
KEYS = ("group", "hist", "min", "max", "mode", "scale", "threshold", "logx", "logy", "logz")


def plugin_option_names() -> tuple[str, ...]:
    """The plug-ins' own options, as query keys (every subsystem's page reads every one, to name those
    its plug-in does not have: `subsystem_query`)."""
    return tuple(sorted(known_option_specs()))


@dataclass(frozen=True)
class ViewQuery:
    group: str | None = None
    hist: str | None = None
    min: str | None = None  # a slice is applied when both are set
    max: str | None = None
    mode: str | None = None
    scale: bool | None = None  # None: on (the default)
    threshold: str | None = None
    logx: bool | None = None  # None: the plug-in's hint for the histogram
    logy: bool | None = None
    logz: bool | None = None
    plugin_options: tuple[tuple[str, str], ...] = field(default=())

    @property
    def has_slice(self) -> bool:
        return self.min is not None and self.max is not None

    @property
    def logs(self) -> tuple[bool | None, bool | None, bool | None]:
        return self.logx, self.logy, self.logz

    def option_values(self) -> dict[str, object]:
        """The processing options as the service takes them (text validated there)."""
        values: dict[str, object] = {"scale_by_events": True if self.scale is None else self.scale}
        if self.threshold not in (None, ""):
            values["hot_channel_threshold"] = self.threshold
        values.update(self.plugin_options)
        return values

    def without_slice(self) -> ViewQuery:
        return replace(self, min=None, max=None)

    def with_histogram(self, group: str | None, hist: str | None) -> ViewQuery:
        """Another histogram: its own experts' log axes again."""
        return replace(self, group=group, hist=hist, logx=None, logy=None, logz=None)

    def to_search(self) -> str:
        pairs: list[tuple[str, str]] = []
        for key in KEYS:
            value = getattr(self, key)
            if value is None or (key == "threshold" and value == ""):
                continue
            pairs.append((key, ("1" if value else "0") if isinstance(value, bool) else str(value)))
        pairs.extend(self.plugin_options)
        return "?" + urlencode(pairs) if pairs else ""


def subsystem_query(query: ViewQuery, subsystem: str) -> tuple[ViewQuery, list[OptionsError]]:
    """`query` without the options that cannot act on `subsystem` (`subsystem_options`), and one error
    naming each of them (the page says they were not applied and shows the view without them)."""
    given = [
        *([SCALE_OPTION] if query.scale is not None else []),
        *([THRESHOLD_OPTION] if query.threshold not in (None, "") else []),
        *(name for name, _ in query.plugin_options),
    ]
    foreign = options_not_offered(subsystem, given)
    if not foreign:
        return query, []
    dropped = {error.field for error in foreign}
    kept = replace(
        query,
        scale=None if SCALE_OPTION in dropped else query.scale,
        threshold=None if THRESHOLD_OPTION in dropped else query.threshold,
        plugin_options=tuple(pair for pair in query.plugin_options if pair[0] not in dropped),
    )
    return kept, foreign


def parse_query(query: Mapping[str, str]) -> ViewQuery:
    """The view a query asks for; unknown keys are ignored, values kept as text."""

    def text(key: str) -> str | None:
        value = query.get(key)
        return None if value is None else str(value)

    def flag(key: str) -> bool | None:
        value = query.get(key)
        if value is None:
            return None
        return str(value).lower() in ("1", "true", "on", "yes")

    options = tuple(
        (name, str(query[name])) for name in plugin_option_names() if query.get(name) not in (None, "")
    )
    return ViewQuery(
        group=text("group"),
        hist=text("hist"),
        min=text("min"),
        max=text("max"),
        mode=text("mode"),
        scale=flag("scale"),
        threshold=text("threshold"),
        logx=flag("logx"),
        logy=flag("logy"),
        logz=flag("logz"),
        plugin_options=options,
    )


def query_dict(search: str | None) -> dict[str, str]:
    """`?a=1&b=x` as {"a": "1", "b": "x"} (the last of repeated keys)."""
    return dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=True))
