"""From a trending page's query to what it shows: the choices there are, the series and its alarm limits.

One place for these rules, used by the page's callback and by the CSV/Parquet download route, so a
downloaded file holds exactly the plotted points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dashboard.qc_links import AXIS_RUNS, CONTENT_CUMULATIVE, TrendQuery
from pipeline.detectors import plugin_for
from pipeline.detectors.names import stored_titles
from pipeline.processing.service import ProcessingService


@dataclass(frozen=True)
class TrendView:
    """A resolved trend choice (defaults filled in) with its data."""

    query: TrendQuery
    runs: list[int]
    histograms: list[dict]  # dropdown options: {"label": pretty name, "value": histogram}
    quantities: list[str]
    series: pd.DataFrame
    limits: list[dict[str, Any]] = field(default_factory=list)
    beam_type: str = ""

    @property
    def empty(self) -> bool:
        return self.query.hist is None or self.query.quantity is None


def resolve_trend(service: ProcessingService, subsystem: str, query: TrendQuery) -> TrendView:
    """Fill the query's gaps (newest run with trends, first trended histogram and its first quantity),
    then read the series (within the run, or one value per run) and the alarm limits in force."""
    runs = sorted(service.trends.runs(subsystem), reverse=True)
    run = query.run if query.run in runs else (runs[0] if runs else None)
    if run is None:
        return TrendView(TrendQuery(axis=query.axis), [], [], [], pd.DataFrame())
    trended = service.trend_quantities(run, subsystem)
    plugin = plugin_for(subsystem)
    names = list(dict.fromkeys(trended["histogram"]))
    labels = plugin.labels(names, _titles(service, run, subsystem))
    histograms = [{"label": labels[name], "value": name} for name in names]
    hist = query.hist if query.hist in names else (names[0] if names else None)
    quantities = sorted(set(trended.loc[trended["histogram"] == hist, "quantity"])) if hist else []
    quantity = query.quantity if query.quantity in quantities else (quantities[0] if quantities else None)
    # Across runs each run gives its last cumulative value: the interval content means nothing there.
    content = CONTENT_CUMULATIVE if query.axis == AXIS_RUNS else query.content
    resolved = TrendQuery(run, hist, quantity, content, query.axis)
    if hist is None or quantity is None:
        return TrendView(resolved, runs, histograms, quantities, pd.DataFrame())
    if query.axis == AXIS_RUNS:
        series = service.trend_per_run(subsystem, hist, quantity)
    else:
        series = service.trend_series(run, subsystem, hist, quantity, content)
    beam_type = _beam_type(service, run, subsystem)
    limits = service.alarm_limits(subsystem, hist, quantity, content, beam_type)
    return TrendView(resolved, runs, histograms, quantities, series, limits, beam_type)


def series_for_download(view: TrendView, subsystem: str) -> pd.DataFrame:
    """The plotted points as a table that says what they are (subsystem, histogram, quantity, content)."""
    frame = view.series.copy()
    query = view.query
    frame.insert(0, "subsystem", subsystem)
    frame.insert(1, "histogram", query.hist or "")
    frame.insert(2, "quantity", query.quantity or "")
    frame.insert(3, "content", query.content)
    if "run" not in frame.columns:
        frame.insert(0, "run", query.run)
    return frame


def _titles(service: ProcessingService, run: int, subsystem: str) -> dict[str, str]:
    """The ROOT titles of the run's newest snapshot (what the labels prefer to raw names)."""
    try:
        snapshot_id = service.store.latest_snapshot_id(run, subsystem)
    except LookupError:
        return {}
    return stored_titles(service.store, [snapshot_id] if snapshot_id else [])


def _beam_type(service: ProcessingService, run: int, subsystem: str) -> str:
    try:
        return service.run_info(run, subsystem).beam_type or ""
    except LookupError:
        return ""
