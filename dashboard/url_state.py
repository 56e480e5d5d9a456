"""A run page's view as a URL query, and back: every choice a user makes, so a link reproduces it.

`?group=FastOR&hist=EMCTRQA_histFastORL0&min=2&max=4&mode=reset&scale=0&threshold=0.001&logz=0
&outlier_n_sigma=3`. A missing key means the default: the plug-in's first group, the group's first
histogram, the full run (live), the mode the run was recorded in, scaled by events, each histogram's
own threshold, the experts' log axes for that histogram, the plug-in's option defaults. The view
parameters are read as the data API and the downloads read them (`pipeline.processing.query.read_params`,
the one rule): what does not read is left out of the view and named on the page ("Not applied").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode

from pipeline.processing.options import OptionsError, parse_bool
from pipeline.processing.query import DISPLAY_PARAMETERS, given_more_than_once, read_params
from pipeline.processing.query import ViewQuery as DataViewQuery

# Query keys in the order a URL lists them.
KEYS = ("group", "hist", "min", "max", "mode", "scale", "threshold", "logx", "logy", "logz")


@dataclass(frozen=True)
class ViewQuery:
    group: str | None = None
    hist: str | None = None
    min: str | None = None  # a slice is applied when either is set (a missing end: the run's)
    max: str | None = None
    mode: str | None = None
    scale: bool | None = None  # None: on (the default)
    threshold: str | None = None
    logx: bool | None = None  # None: the plug-in's hint for the histogram
    logy: bool | None = None
    logz: bool | None = None
    plugin_options: tuple[tuple[str, str], ...] = field(default=())
    # What the URL asked for and the page does not apply, one error naming each (see parse_query).
    not_applied: tuple[OptionsError, ...] = field(default=(), compare=False)

    @property
    def has_slice(self) -> bool:
        return self.min is not None or self.max is not None

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

    def data_query(self) -> DataViewQuery:
        """The view parameters as the processing reads them (window, mode, options)."""
        return DataViewQuery.from_params(self.view_params())

    def view_params(self) -> list[tuple[str, str]]:
        """The query's view parameters (not its display keys) as URL pairs."""
        pairs = [(key, getattr(self, key)) for key in ("min", "max", "mode", "threshold")]
        pairs.append(("scale", "0" if self.scale is False else ""))
        return [(key, str(value)) for key, value in pairs if value not in (None, "")] + list(
            self.plugin_options
        )

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


class QueryParams(dict[str, str]):
    """A URL query as a dict (the last value of a repeated key, for the pages that read it so), and
    every pair as given (`pairs`), so the run page reads a repeated key as the data API does, and the
    query string it came from (`search`, as the browser's location has it)."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), search: str = "") -> None:
        self.pairs = tuple(pairs)
        self.search = search
        super().__init__(self.pairs)


def parse_query(query: Mapping[str, str], subsystem: str | None = None) -> ViewQuery:
    """The view a query asks for, its view parameters read by the one rule of the data API and the
    downloads (`pipeline.processing.query.read_params`): what does not read (a bad value, a key given
    twice, an option `subsystem` lacks) is left out, named in `not_applied`. The display keys are the
    page's own: unknown values of them are kept (the page names them), a bad log flag is left out."""
    pairs = getattr(query, "pairs", None) or list(query.items())
    typed, not_applied = read_params(pairs, ignore=(), subsystem=subsystem)
    display = {name: value for name, value in pairs if name in DISPLAY_PARAMETERS}
    counts = Counter(name for name, _ in pairs if name in DISPLAY_PARAMETERS)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    not_applied += given_more_than_once(Counter({name: counts[name] for name in repeated}))

    def text(key: str) -> str | None:
        value = display.get(key)
        return None if key in repeated or value in (None, "") else str(value)

    def flag(key: str) -> bool | None:
        value = text(key)
        if value is None:
            return None
        try:
            return parse_bool(key, value)
        except OptionsError as error:
            not_applied.append(error)
            return None

    params = typed.to_params()
    options = typed.options
    return ViewQuery(
        group=text("group"),
        hist=text("hist"),
        min=params.get("min"),
        max=params.get("max"),
        mode=params.get("mode"),
        scale=False if not options.scale_by_events else None,
        threshold=params.get("threshold"),
        logx=flag("logx"),
        logy=flag("logy"),
        logz=flag("logz"),
        plugin_options=tuple((name, params[name]) for name, _ in options.extra),
        not_applied=tuple(not_applied),
    )


def query_dict(search: str | None) -> QueryParams:
    """`?a=1&b=x` as {"a": "1", "b": "x"} (the last of repeated keys; every pair in `.pairs`)."""
    return QueryParams(parse_qsl((search or "").lstrip("?"), keep_blank_values=True), search or "")
