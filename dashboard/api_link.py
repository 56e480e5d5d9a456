"""Links from a page to the data API URL of exactly what it shows (same window, mode and options).

A pure function of the view and the page's controls, so the run page adds it to its caption with one
call: `api_links(view, name, window, options)`.
"""

from __future__ import annotations

from dash import html

from pipeline.processing.options import ProcessingOptions
from pipeline.processing.query import ViewQuery
from pipeline.processing.service import ProcessedView
from pipeline.processing.timeslice import Window
from pipeline.web.api import histogram_api_path


def view_query(view: ProcessedView, window: Window | None, options: ProcessingOptions) -> ViewQuery:
    """The API parameters of what the page shows: the applied window, the mode used, the options."""
    if window is None:
        return ViewQuery(mode=view.plan.mode, options=options)
    return ViewQuery(window.min_minutes, window.max_minutes, view.plan.mode, options)


def api_links(view: ProcessedView, name: str, window: Window | None, options: ProcessingOptions) -> html.Span:
    """'API: JSON · Parquet' links for histogram `name` as the page shows it."""
    path = histogram_api_path(view.run.run, view.run.subsystem, name, view_query(view, window, options))
    parquet = f"{path}{'&' if '?' in path else '?'}format=parquet"
    return html.Span(
        [
            "API: ",
            html.A("JSON", href=path, target="_blank", className="api-link"),
            " · ",
            html.A("Parquet", href=parquet, className="api-link"),
        ],
        className="api-links",
    )
