"""Links between the QC views: an alarm or a trend to its histogram on the run page, and to its trend.

The one place that spells the trending page's query (`TrendQuery`), so the page, the alarm table and
the run page's alarm strip build the same URLs, and a link reproduces the same plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from dashboard.url_state import ViewQuery
from pipeline.detectors import plugin_for
from pipeline.detectors.base import group_histograms

AXIS_TIME, AXIS_RUNS = "time", "runs"
AXES = (AXIS_TIME, AXIS_RUNS)
CONTENT_CUMULATIVE, CONTENT_INTERVAL = "cumulative", "interval"
# Query keys of the trending page, in the order a URL lists them.
TREND_KEYS = ("run", "hist", "quantity", "content", "axis")


def run_page_url(run: int, subsystem: str, histogram: str | None = None) -> str:
    """`/run/<run>/<SYS>?group=...&hist=...`: the run page opened on `histogram` in its plug-in group."""
    path = f"/run/{run}/{subsystem}"
    if not histogram:
        return path
    groups = group_histograms(plugin_for(subsystem), [histogram])
    group = groups[0][0].title if groups else None
    return path + ViewQuery(group=group, hist=histogram).to_search()


@dataclass(frozen=True)
class TrendQuery:
    """What the trending page shows; None means the page's default (newest run, first series...)."""

    run: int | None = None
    hist: str | None = None
    quantity: str | None = None
    content: str = CONTENT_CUMULATIVE
    axis: str = AXIS_TIME

    def to_search(self) -> str:
        pairs = [(key, str(getattr(self, key))) for key in TREND_KEYS if getattr(self, key) is not None]
        return "?" + urlencode(pairs) if pairs else ""

    def with_changes(self, **changes: object) -> TrendQuery:
        return replace(self, **changes)


class TrendQueryError(ValueError):
    """A trend query value that is not one (`field`: its query key), or a choice with nothing trended."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def trend_query_problems(query: Mapping[str, str]) -> dict[str, str]:
    """The query keys whose values are malformed, each with why (empty when every value is usable)."""
    problems = {}
    run = query.get("run")
    if run not in (None, ""):
        try:
            int(run)
        except ValueError:
            problems["run"] = f"run: {run!r} is not a run number"
    content = query.get("content", CONTENT_CUMULATIVE)
    if content not in (CONTENT_CUMULATIVE, CONTENT_INTERVAL):
        problems["content"] = f"content: {content!r} is not one of {CONTENT_CUMULATIVE}, {CONTENT_INTERVAL}"
    axis = query.get("axis", AXIS_TIME)
    if axis not in AXES:
        problems["axis"] = f"axis: {axis!r} is not one of {', '.join(AXES)}"
    elif axis == AXIS_RUNS and content == CONTENT_INTERVAL:
        problems["content"] = "content: across runs each run gives its last cumulative value, not interval"
    return problems


def parse_trend_query(query: Mapping[str, str]) -> TrendQuery:
    """The trend a URL query asks for; malformed values (`trend_query_problems`) fall back to the
    defaults (the page says what it shows instead)."""
    problems = trend_query_problems(query)
    run = query.get("run")
    return TrendQuery(
        run=int(run) if run not in (None, "") and "run" not in problems else None,
        hist=query.get("hist") or None,
        quantity=query.get("quantity") or None,
        content=query.get("content", CONTENT_CUMULATIVE) if "content" not in problems else CONTENT_CUMULATIVE,
        axis=query.get("axis", AXIS_TIME) if "axis" not in problems else AXIS_TIME,
    )


def strict_trend_query(query: Mapping[str, str]) -> TrendQuery:
    """The trend a download asks for, exactly: TrendQueryError naming the first malformed field."""
    for field_name, message in trend_query_problems(query).items():
        raise TrendQueryError(field_name, message)
    return parse_trend_query(query)


def trend_url(
    subsystem: str,
    run: int | None = None,
    histogram: str | None = None,
    quantity: str | None = None,
    content: str = CONTENT_CUMULATIVE,
    axis: str = AXIS_TIME,
) -> str:
    """`/trending/<SYS>?run=...&hist=...&quantity=...&content=...&axis=...`."""
    return f"/trending/{subsystem}" + TrendQuery(run, histogram, quantity, content, axis).to_search()
