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


def parse_trend_query(query: Mapping[str, str]) -> TrendQuery:
    """The trend a URL query asks for; unknown or malformed values fall back to the defaults."""
    try:
        run = int(query["run"]) if query.get("run") not in (None, "") else None
    except ValueError:
        run = None
    content = query.get("content", CONTENT_CUMULATIVE)
    axis = query.get("axis", AXIS_TIME)
    return TrendQuery(
        run=run,
        hist=query.get("hist") or None,
        quantity=query.get("quantity") or None,
        content=content if content in (CONTENT_CUMULATIVE, CONTENT_INTERVAL) else CONTENT_CUMULATIVE,
        axis=axis if axis in AXES else AXIS_TIME,
    )


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
