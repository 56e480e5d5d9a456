"""From a trending page's query to what it shows: the choices there are, the series and its alarm limits.

One place for these rules, used by the page's callback and by the CSV/Parquet download route, so a
downloaded file holds exactly the plotted points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dashboard.qc_links import AXIS_RUNS, CONTENT_CUMULATIVE, CONTENT_INTERVAL, TrendQuery, TrendQueryError
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
    # What was asked but has nothing trended, and so was replaced by the default: (query key, why).
    replaced: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return self.query.hist is None or self.query.quantity is None


def resolve_trend(service: ProcessingService, subsystem: str, query: TrendQuery) -> TrendView:
    """Fill the query's gaps (newest run with trends, first trended histogram and its first quantity),
    then read the series (within the run, or one value per run) and the alarm limits in force. A run,
    histogram or quantity asked for but not trended is replaced the same way, and `replaced` says so."""
    replaced: list[tuple[str, str]] = []
    runs = sorted(service.trends.runs(subsystem), reverse=True)
    run = query.run if query.run in runs else (runs[0] if runs else None)
    if query.run is not None and run != query.run:
        replaced.append(("run", f"run {query.run} has no {subsystem} trends"))
    if run is None:
        return TrendView(TrendQuery(axis=query.axis), [], [], [], pd.DataFrame(), replaced=tuple(replaced))
    trended = service.trend_quantities(run, subsystem)
    plugin = plugin_for(subsystem)
    names = list(dict.fromkeys(trended["histogram"]))
    labels = plugin.labels(names, _titles(service, run, subsystem))
    histograms = [{"label": labels[name], "value": name} for name in names]
    hist = query.hist if query.hist in names else (names[0] if names else None)
    if query.hist is not None and hist != query.hist:
        replaced.append(("hist", f"histogram {query.hist} is not trended in {subsystem} run {run}"))
    quantities = sorted(set(trended.loc[trended["histogram"] == hist, "quantity"])) if hist else []
    quantity = query.quantity if query.quantity in quantities else (quantities[0] if quantities else None)
    if query.quantity is not None and quantity != query.quantity and hist == query.hist:
        replaced.append(("quantity", f"quantity {query.quantity} is not trended for {hist}"))
    # Across runs each run gives its last cumulative value: the interval content means nothing there.
    content = CONTENT_CUMULATIVE if query.axis == AXIS_RUNS else query.content
    resolved = TrendQuery(run, hist, quantity, content, query.axis)
    if hist is None or quantity is None:
        return TrendView(resolved, runs, histograms, quantities, pd.DataFrame(), replaced=tuple(replaced))
    if query.axis == AXIS_RUNS:
        series = service.trend_per_run(subsystem, hist, quantity)
    else:
        series = service.trend_series(run, subsystem, hist, quantity, content)
    beam_type = _beam_type(service, run, subsystem)
    limits = service.alarm_limits(subsystem, hist, quantity, content, beam_type)
    return TrendView(resolved, runs, histograms, quantities, series, limits, beam_type, tuple(replaced))


def exact_trend(service: ProcessingService, subsystem: str, query: TrendQuery) -> TrendView:
    """The trend `query` names, never another: TrendQueryError naming the first field with nothing
    trended (what a download answers with 404), else the view as `resolve_trend` reads it."""
    view = resolve_trend(service, subsystem, query)
    for field_name, message in view.replaced:
        raise TrendQueryError(field_name, message)
    if view.empty:
        raise TrendQueryError("subsystem", f"nothing trended for {subsystem} yet")
    return view


def empty_reason(service: ProcessingService, subsystem: str, view: TrendView) -> str:
    """Why a resolved choice has no values: a quantity trended only in the other content (an
    interval-only quantity has no cumulative values, and across runs uses cumulative ones), or that
    the QC service has not trended it yet."""
    query = view.query
    if query.run is None or query.hist is None or query.quantity is None:
        return "Nothing trended for this subsystem yet"
    other = CONTENT_INTERVAL if query.content == CONTENT_CUMULATIVE else CONTENT_CUMULATIVE
    if not service.trend_series(query.run, subsystem, query.hist, query.quantity, other).empty:
        where = " and across runs each run gives its last cumulative value" if query.axis == AXIS_RUNS else ""
        return (
            f"{query.quantity} exists only for {other} content{where}: "
            f"choose {'“within a run” and ' if query.axis == AXIS_RUNS else ''}“{other}”"
        )
    return "No trend values for this choice yet: the QC service has not trended it"


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
