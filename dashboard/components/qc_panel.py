"""Quality control on the run page: a strip above the plot (aggregated quality of the subsystem and of
the shown group, the run's open alarms) and a card below it (the reference overlay and ratio, the
button an expert uses to mark this run as the reference, and the hot-channel history).

The run page includes it with `strip(first)`, `card(first)` and `register_callbacks(app, context)`;
everything else lives here. `first_contents` fills both with the page's layout (no callback round trip
on a cold page); the callbacks then answer changes: they read the run page's URL and what its graph
shows (`Run.GRAPH_KEY`), call the ProcessingService, and hand the result to the pure builders of
`dashboard.qc_run_view`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard.access import Role, acting_name, callback_role
from dashboard.components import histogram_view as hv
from dashboard.context import PageContext
from dashboard.figures import message_figure
from dashboard.ids import Run, RunQC
from dashboard.qc_run_view import (
    history_table,
    quality_strip,
    reference_as_shown,
    reference_figure,
    reference_line,
)
from dashboard.url_state import parse_query, query_dict
from dashboard.view_request import resolve_view, view_labels, with_valid_window
from pipeline.processing.options import OptionsError

logger = logging.getLogger(__name__)
_PATH = re.compile(r"/run/(-?\d+)/([^/]+)/?")


@dataclass(frozen=True)
class FirstContents:
    """What the QC callbacks would show for a page as it opens."""

    strip: Any = None
    reference_info: Any = None
    reference_graph: Any = None
    reference_button: str = "Mark this run as the reference"
    history: Any = None


def first_contents(service, run: int, subsystem: str, group: str | None, shown: dict | None) -> FirstContents:
    """The strip, reference and history for the page's first view (`shown`: its graph key), drawn with
    the layout. A part that fails says so in its place (and in the log); its callback redraws it on the
    next change (the strip at the next refresh)."""
    parts: dict[str, Any] = {}
    try:
        parts["strip"] = strip_content(service, run, subsystem, group)
    except Exception:
        logger.exception("QC strip of run %s %s", run, subsystem)
        parts["strip"] = _alert("Quality not available: see the server log.", "warning")
    try:
        info, graph, button = reference_content(service, run, subsystem, shown)
        parts.update(reference_info=info, reference_graph=graph, reference_button=button)
    except Exception:
        logger.exception("QC reference of run %s %s", run, subsystem)
        parts["reference_info"] = "Reference not available: see the server log."
    try:
        parts["history"] = history_content(service, run, subsystem)
    except Exception:
        logger.exception("hot-channel history of run %s %s", run, subsystem)
        parts["history"] = "History not available: see the server log."
    return FirstContents(**parts)


def strip(first: FirstContents | None = None) -> html.Div:
    """The quality strip (`first`: its content as the page opens)."""
    return html.Div(first.strip if first else None, id=RunQC.STRIP, className="qc-strip", role="status")


def card(first: FirstContents | None = None) -> dbc.Card:
    """The reference and hot-channel history card (`first`: its contents as the page opens)."""
    first = first or FirstContents()
    return dbc.Card(
        dbc.CardBody(
            [
                html.H5("Reference run", className="card-title"),
                html.Div(first.reference_info, id=RunQC.REFERENCE_INFO, className="reference-info mb-1"),
                # The overlay graph exists only while there is one to show: a hidden dcc.Graph is
                # still drawn by plotly.js, on the cold page's critical path.
                html.Div(first.reference_graph, id=RunQC.REFERENCE_GRAPH_BOX),
                dbc.InputGroup(
                    [
                        dbc.InputGroupText("Your name"),
                        dbc.Input(
                            id=RunQC.REFERENCE_WHO,
                            type="text",
                            autocomplete="name",
                            persistence=True,
                            persistence_type="local",
                        ),
                        dbc.Button(first.reference_button, id=RunQC.SET_REFERENCE, color="secondary"),
                    ],
                    size="sm",
                    className="reference-set mt-2",
                ),
                html.Div(id=RunQC.REFERENCE_MESSAGE, role="alert"),
                html.H5("Hot-channel history", className="card-title mt-3"),
                html.Div(first.history, id=RunQC.HISTORY, className="qc-history"),
            ]
        ),
        className="qc-card mt-3",
    )


def reference_graph(figure) -> dcc.Graph:
    return dcc.Graph(
        id=RunQC.REFERENCE_GRAPH,
        figure=figure,
        config=hv.graph_config("reference"),
        className="reference-graph",
    )


def strip_content(service, run: int, subsystem: str, group: str | None):
    try:
        view = service.view(run, subsystem)
        labels = view_labels(service, view, subsystem, view.names)
    except LookupError:
        labels = {}
    quality = service.latest_quality(run, subsystem)
    return quality_strip(quality, service.alarms(), run, subsystem, group, labels)


def reference_content(service, run: int, subsystem: str, shown: dict | None) -> tuple[str, Any, str]:
    """(reference line, overlay graph or nothing, the button's label) for what the graph shows."""
    info = service.run_info(run, subsystem)
    beam = info.beam_type or ""
    reference = service.reference_run(subsystem, beam)
    text = reference_line(reference, subsystem, beam)
    button = f"Mark run {run} as the reference for {subsystem} ({beam or 'no beam type'})"
    if reference is None or not shown or not shown.get("name"):
        return text, [], button
    if reference.run == run:
        return text + " — this run.", [], button
    try:
        figure = _overlay(service, run, subsystem, shown, beam, reference.run)
    except (LookupError, KeyError, ValueError, OptionsError) as error:
        return f"{text}. No overlay: {error}", [], button
    return text, reference_graph(figure), button


def history_content(service, run: int, subsystem: str):
    return history_table(service.hot_channel_history(subsystem, run))


def register_callbacks(app: dash.Dash, context: PageContext) -> None:
    service = context.service
    # No initial calls: the layout comes with the first contents (`first_contents`).

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(RunQC.STRIP, "children"),
        Input(Run.GROUP, "value"),
        Input(Run.REFRESH, "n_intervals"),
        State(Run.LOCATION, "pathname"),
        prevent_initial_call=True,
    )
    def show_strip(group, _tick, pathname):
        run, subsystem = _run_of(pathname)
        return strip_content(service, run, subsystem, group)

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(RunQC.REFERENCE_INFO, "children"),
        Output(RunQC.REFERENCE_GRAPH_BOX, "children"),
        Output(RunQC.SET_REFERENCE, "children"),
        Input(Run.GRAPH_KEY, "data"),
        Input(RunQC.REFERENCE_MESSAGE, "children"),
        State(Run.LOCATION, "pathname"),
        prevent_initial_call=True,
    )
    def show_reference(shown, _message, pathname):
        run, subsystem = _run_of(pathname)
        return reference_content(service, run, subsystem, shown)

    @callback_role(app, Role.EXPERT)  # marks a reference run: stored
    @app.callback(
        Output(RunQC.REFERENCE_MESSAGE, "children"),
        Input(RunQC.SET_REFERENCE, "n_clicks"),
        State(RunQC.REFERENCE_WHO, "value"),
        State(Run.LOCATION, "pathname"),
        prevent_initial_call=True,
    )
    def set_reference(clicks, who, pathname):
        if not clicks:
            raise PreventUpdate
        run, subsystem = _run_of(pathname)
        who = acting_name(who)
        if not (who or "").strip():
            return _alert("Type your name first: a reference is recorded with who set it.", "warning")
        beam = service.run_info(run, subsystem).beam_type or ""
        try:
            reference = service.set_reference_run(subsystem, beam, run, who)
        except (LookupError, ValueError) as error:
            return _alert(f"Reference not set: {error}", "danger")
        return _alert(
            f"Run {reference.run} is now the reference for {subsystem} ({beam or 'no beam type'}), "
            f"set by {reference.set_by}.",
            "success",
        )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(RunQC.HISTORY, "children"),
        Input(Run.GRAPH_KEY, "data"),
        State(Run.LOCATION, "pathname"),
        prevent_initial_call=True,
    )
    def show_history(_shown, pathname):
        run, subsystem = _run_of(pathname)
        return history_content(service, run, subsystem)


def _overlay(service, run: int, subsystem: str, shown: dict, beam: str, reference_run: int):
    """The reference figure for what the graph shows (one 1D histogram), or a message figure."""
    query = parse_query(query_dict(shown.get("search", "")), subsystem)
    resolved = resolve_view(service, run, subsystem, with_valid_window(service, run, subsystem, query))
    members = hv.shown_histograms(resolved.view, subsystem, shown["name"]).members
    if len(members) != 1 or members[0].histogram.dimension != 1:
        return message_figure("The reference overlay is drawn for a single 1D histogram")
    current = members[0]
    n_events = resolved.view.n_events
    if not n_events:
        raise ValueError("this view has no event count to normalise with")
    reference, reference_events = _reference_content(
        service, subsystem, beam, reference_run, current.histogram.name
    )
    if not reference_events:
        raise ValueError(f"reference run {reference_run} has no event count")
    reference_shown, shown_over_reference = reference_as_shown(current, n_events, reference, reference_events)
    y_title = "entries / event" if current.scaled_by_events else "entries"
    logs = shown.get("logs") or [False, False, False]
    return reference_figure(
        current.histogram,
        reference_shown,
        shown_over_reference,
        reference_run=reference_run,
        y_title=y_title,
        log_y=bool(logs[1]),
    )


@lru_cache(maxsize=32)
def _reference_content(service, subsystem: str, beam: str, reference_run: int, name: str):
    """The reference histogram and its events, kept: a live page redraws every few seconds, and the
    reference run (`reference_run` is part of the key, so a new reference is read anew) does not change."""
    return service.reference_histogram(subsystem, beam, name)


def _run_of(pathname: str | None) -> tuple[int, str]:
    found = _PATH.fullmatch(pathname or "")
    if found is None:
        raise PreventUpdate  # another page
    return int(found.group(1)), found.group(2)


def _alert(text: str, color: str) -> dbc.Alert:
    return dbc.Alert(text, color=color, className="py-1 px-2 mt-2 mb-0", dismissable=True)
