"""`/trending/<SYS>`: one trended quantity of one histogram against time within a run, or one value per
run across runs, with the alarms' accepted ranges as bands, hover values, and downloads.

The URL query is the state (`dashboard.qc_links.TrendQuery`: run, hist, quantity, content, axis), so a
link reproduces the plot and back/forward step through choices. `navigate` turns a choice into a new
query (and sets the controls when the URL changes); `render` draws what the URL asks for, and redraws
on the refresh tick only when new points arrived. Downloads: CSV and Parquet of the plotted points
(`GET /download/trend/<SYS>.<csv|parquet>?<query>`), PNG and SVG of the plot.
"""

from __future__ import annotations

import io
import re

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import Flask, Response, request

from dashboard.access import Role, callback_role
from dashboard.components.controls import button_group, list_selector
from dashboard.components.histogram_view import graph_config, safe_file_name
from dashboard.context import PageContext
from dashboard.figures import message_figure
from dashboard.ids import Trending
from dashboard.qc_links import (
    AXIS_RUNS,
    AXIS_TIME,
    CONTENT_CUMULATIVE,
    CONTENT_INTERVAL,
    TrendQuery,
    TrendQueryError,
    parse_trend_query,
    run_page_url,
    strict_trend_query,
    trend_query_problems,
    trend_url,
)
from dashboard.trend_figures import trend_figure, trend_title
from dashboard.trend_view import TrendView, empty_reason, exact_trend, resolve_trend, series_for_download
from dashboard.url_state import query_dict
from pipeline.web.access import requires
from pipeline.web.responses import error_response

PATHS = ("/trending/<subsystem>", "/trending")
# Trends of every subsystem: shifters and up.
ROLE = Role.SHIFTER
REFRESH_MS = 5000
_NOTE_CLASS = "alert alert-warning py-2 px-3 mb-2 trend-note"
_NEWER_CLASS = "alert alert-info py-2 px-3 mb-2 trend-newer-run"
_PATH = re.compile(r"/trending(?:/([^/]+))?/?")
AXIS_OPTIONS = [
    {"label": "within a run (time)", "value": AXIS_TIME},
    {"label": "across runs", "value": AXIS_RUNS},
]
CONTENT_OPTIONS = [
    {"label": "cumulative", "value": CONTENT_CUMULATIVE},
    {"label": "interval", "value": CONTENT_INTERVAL},
]


def page_path(subsystem: str) -> str:
    return f"/trending/{subsystem}"


def run_options(runs: list[int]) -> list[dict]:
    """The Run menu: newest first."""
    return [{"label": str(run), "value": run} for run in runs]


# ---- pure pieces ----------------------------------------------------------------------------------


def missing(context: PageContext, params: dict) -> str | None:
    """`/trending/<SYS>` of a subsystem that is not configured answers 404, as the run page does."""
    subsystem = params.get("subsystem")
    return None if subsystem is None else context.unconfigured_subsystem(subsystem)


def summary_text(view: TrendView, why_empty: str = "") -> str:
    """'12 points · last 5 ± 0 at 2026-12-06 09:29:10 UTC' (or why there is nothing)."""
    if view.empty:
        return "Nothing trended for this subsystem yet."
    series = view.series
    if series.empty:
        return f"No values for this choice: {why_empty}." if why_empty else "No values for this choice yet."
    last = series.iloc[-1]
    where = f"run {int(last['run'])}" if view.query.axis == AXIS_RUNS else "at"
    when = last["snapshot_time_utc"].strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{len(series)} points · last {last['value']:.6g} ± {last['error']:.3g} · {where} {when}"


def limits_text(view: TrendView) -> list:
    """What the bands are: each alarm's accepted range, or that no alarm watches this series."""
    if not view.limits:
        return [html.Span("No alarm limit on this series.", className="text-muted")]
    items = [
        html.Li(
            f"{limit['alarm']} ({limit['severity']}, {limit['rule']}): "
            f"accepted {limit['min']:g} – {limit['max']:g}"
        )
        for limit in view.limits
    ]
    beam = f" for beam type {view.beam_type}" if view.beam_type else ""
    return [html.Span(f"Alarm limits in force{beam}:"), html.Ul(items, className="mb-0")]


def note_text(problems: dict[str, str], view: TrendView) -> str:
    """What the URL asked for that the page does not show (a malformed value, or a run, histogram or
    quantity with nothing trended), and what it shows instead; "" when it shows what was asked."""
    reasons = [*problems.values(), *(why for field_name, why in view.replaced if field_name not in problems)]
    if not reasons:
        return ""
    query = view.query
    label = next((o["label"] for o in view.histograms if o["value"] == query.hist), query.hist or "")
    shown = ", ".join(
        part
        for part in (
            f"run {query.run}" if query.run is not None else "",
            label,
            query.quantity or "",
            f"{query.content} content",
        )
        if part
    )
    return f"Not as asked: {'; '.join(reasons)}. Showing {shown} instead."


def newer_run(view: TrendView, subsystem: str) -> list:
    """Within an ended run (a newer one has trends): that the newer run exists, with a link to the same
    series in it; nothing otherwise."""
    query = view.query
    if query.axis == AXIS_RUNS or not view.runs or query.run is None or view.runs[0] == query.run:
        return []
    newest = view.runs[0]
    href = trend_url(subsystem, newest, query.hist, query.quantity, query.content, query.axis)
    return [
        html.Span(f"Run {query.run} has ended: run {newest} is newer. ", className="me-1"),
        dcc.Link(f"Show run {newest}", href=href, className="alert-link"),
    ]


def download_href(subsystem: str, query: TrendQuery, file_format: str) -> str:
    return f"/download/trend/{subsystem}.{file_format}{query.to_search()}"


def figure_of(view: TrendView, why_empty: str = "") -> object:
    query = view.query
    label = next((o["label"] for o in view.histograms if o["value"] == query.hist), query.hist or "")
    title = trend_title(label, query.quantity or "", query.content, query.axis)
    extra = {"empty_message": why_empty} if why_empty else {}
    return trend_figure(
        view.series, view.limits, axis=query.axis, title=title, y_title=query.quantity or "", **extra
    )


# ---- layout ---------------------------------------------------------------------------------------


def layout(context: PageContext, params: dict, query: dict) -> html.Div:
    # `/trending` alone opens the first configured subsystem.
    subsystem = params.get("subsystem") or context.settings.subsystems[0]
    view = resolve_trend(context.service, subsystem, parse_trend_query(query))
    chosen = view.query
    note = note_text(trend_query_problems(query), view)
    links = [
        dcc.Link(
            system,
            href=page_path(system),
            className="btn btn-sm "
            + ("btn-primary active" if system == subsystem else "btn-outline-primary"),
        )
        for system in context.settings.subsystems
    ]
    controls = dbc.Card(
        dbc.CardBody(
            [
                *list_selector(
                    "Run",
                    Trending.RUN,
                    "No trended runs",
                    run_options(view.runs),
                    chosen.run,
                ),
                *list_selector(
                    "Histogram", Trending.HISTOGRAM, "Nothing trended", view.histograms, chosen.hist
                ),
                *list_selector(
                    "Quantity",
                    Trending.QUANTITY,
                    "No quantity",
                    [{"label": q, "value": q} for q in view.quantities],
                    chosen.quantity,
                ),
                dbc.Label("x axis", className="control-label d-block"),
                button_group(
                    Trending.AXIS,
                    AXIS_OPTIONS,
                    chosen.axis,
                    "choice-buttons mb-2",
                    "btn btn-sm btn-outline-secondary",
                ),
                dbc.Label("Content", className="control-label d-block"),
                button_group(
                    Trending.CONTENT,
                    CONTENT_OPTIONS,
                    chosen.content,
                    "choice-buttons mb-1",
                    "btn btn-sm btn-outline-secondary",
                ),
                html.Div(
                    "cumulative: everything since the start of run · interval: since the previous snapshot. "
                    "Across runs, each run gives its last cumulative value.",
                    className="option-help",
                ),
            ]
        ),
        className="controls-card",
    )
    graph_card = dbc.Card(
        dbc.CardBody(
            [
                # No loading overlay: the refresh tick would flash a spinner over the points every few
                # seconds, and a trend is drawn in well under a second.
                dcc.Graph(
                    id=Trending.GRAPH,
                    figure=message_figure("Loading…"),
                    config=graph_config("trend"),
                    responsive=True,
                    className="histogram-graph trend-graph",
                    # A fixed height on the component: with Dash's "height: 100%" of a card without
                    # one, the live plot collapsed to nothing on every other refresh.
                    style={"height": "460px"},
                ),
                html.Div(id=Trending.SUMMARY, className="trend-summary mt-1"),
                html.Div(
                    [
                        html.Span("Download:", className="me-2"),
                        html.A(
                            "CSV",
                            id=Trending.DOWNLOAD_CSV,
                            href="",
                            className="btn btn-sm btn-link",
                            download="",
                        ),
                        html.A(
                            "Parquet",
                            id=Trending.DOWNLOAD_PARQUET,
                            href="",
                            className="btn btn-sm btn-link",
                            download="",
                        ),
                        dbc.Button("PNG", id=Trending.DOWNLOAD_PNG, size="sm", color="link"),
                        dbc.Button("SVG", id=Trending.DOWNLOAD_SVG, size="sm", color="link"),
                        html.Span(id=Trending.DOWNLOAD_DONE, className="d-none"),
                        dcc.Link(
                            "Open the histogram on its run page",
                            id=Trending.RUN_PAGE_LINK,
                            href="",
                            className="ms-auto",
                        ),
                    ],
                    className="downloads d-flex align-items-center",
                ),
                html.Div(id=Trending.LIMITS, className="trend-limits small mt-1"),
            ]
        ),
    )
    return html.Div(
        [
            html.Div(
                [
                    html.H2(f"Trending · {subsystem}", className="run-title"),
                    html.Div(links, className="subsystem-links btn-group"),
                ],
                className="run-header",
            ),
            html.Div(
                note, id=Trending.NOTE, role="status", className=_NOTE_CLASS + ("" if note else " d-none")
            ),
            html.Div(id=Trending.NEWER_RUN, role="status", className=_NEWER_CLASS + " d-none"),
            dbc.Row([dbc.Col(controls, md=4, xxl=3), dbc.Col(graph_card, md=8, xxl=9)], className="g-3"),
            dcc.Location(id=Trending.LOCATION, refresh=False),
            dcc.Interval(id=Trending.REFRESH, interval=REFRESH_MS),
            dcc.Store(id=Trending.KEY),
            dcc.Store(id=Trending.NOTE_FOR, data=chosen.to_search() if note else None),
        ],
        className="trending-page",
    )


# ---- callbacks ------------------------------------------------------------------------------------

_DOWNLOAD_JS = """
function(png, svg) {
    var triggered = window.dash_clientside.callback_context.triggered_id;
    var plot = document.querySelector("#GRAPH_ID .js-plotly-plot");
    if (!plot || !window.Plotly) { return window.dash_clientside.no_update; }
    var format = triggered === "SVG_ID" ? "svg" : "png";
    var name = (plot._context && plot._context.toImageButtonOptions || {}).filename || "trend";
    window.Plotly.downloadImage(plot, {format: format, filename: name, width: 1600, height: 900});
    return format + " " + name;
}
""".replace("GRAPH_ID", Trending.GRAPH).replace("SVG_ID", Trending.DOWNLOAD_SVG)


def register_callbacks(app: dash.Dash, context: PageContext) -> None:
    service = context.service
    app.clientside_callback(
        _DOWNLOAD_JS,
        Output(Trending.DOWNLOAD_DONE, "children"),
        Input(Trending.DOWNLOAD_PNG, "n_clicks"),
        Input(Trending.DOWNLOAD_SVG, "n_clicks"),
        prevent_initial_call=True,
    )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Trending.LOCATION, "search"),
        Output(Trending.RUN, "options"),
        Output(Trending.RUN, "value"),
        Output(Trending.HISTOGRAM, "options"),
        Output(Trending.HISTOGRAM, "value"),
        Output(Trending.QUANTITY, "options"),
        Output(Trending.QUANTITY, "value"),
        Output(Trending.CONTENT, "value"),
        Output(Trending.AXIS, "value"),
        Output(Trending.NOTE, "children"),
        Output(Trending.NOTE, "className"),
        Output(Trending.NOTE_FOR, "data"),
        Input(Trending.LOCATION, "search"),
        Input(Trending.RUN, "value"),
        Input(Trending.HISTOGRAM, "value"),
        Input(Trending.QUANTITY, "value"),
        Input(Trending.CONTENT, "value"),
        Input(Trending.AXIS, "value"),
        State(Trending.LOCATION, "pathname"),
        State(Trending.NOTE_FOR, "data"),
        prevent_initial_call=True,
    )
    def navigate(search, run, hist, quantity, content, axis, pathname, note_for):
        subsystem = _subsystem_of(pathname, context.settings.subsystems[0])
        if subsystem is None:
            raise PreventUpdate
        from_url = ctx.triggered_id == Trending.LOCATION
        if from_url:
            asked = parse_trend_query(query_dict(search))
        else:
            # Another histogram: its own first quantity unless it has the one shown.
            asked = TrendQuery(run, hist, quantity, content or CONTENT_CUMULATIVE, axis or AXIS_TIME)
        view = resolve_trend(service, subsystem, asked)
        chosen = view.query
        new_search = chosen.to_search()
        # A URL says what it asked for that is not shown; the note stays while the URL is the one it
        # was rewritten to, and goes with the next choice.
        note = note_text(trend_query_problems(query_dict(search)), view) if from_url else ""
        if not note and from_url and note_for == (search or ""):
            note_output: tuple = (no_update, no_update, no_update)
        else:
            note_output = (note, _NOTE_CLASS + ("" if note else " d-none"), new_search if note else None)
        return (
            new_search if new_search != (search or "") else no_update,
            run_options(view.runs),
            chosen.run,
            view.histograms,
            chosen.hist,
            [{"label": q, "value": q} for q in view.quantities],
            chosen.quantity,
            chosen.content,
            chosen.axis,
            *note_output,
        )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Trending.GRAPH, "figure"),
        Output(Trending.GRAPH, "config"),
        Output(Trending.SUMMARY, "children"),
        Output(Trending.LIMITS, "children"),
        Output(Trending.DOWNLOAD_CSV, "href"),
        Output(Trending.DOWNLOAD_PARQUET, "href"),
        Output(Trending.RUN_PAGE_LINK, "href"),
        Output(Trending.NEWER_RUN, "children"),
        Output(Trending.NEWER_RUN, "className"),
        Output(Trending.KEY, "data"),
        Input(Trending.LOCATION, "search"),
        Input(Trending.REFRESH, "n_intervals"),
        State(Trending.LOCATION, "pathname"),
        State(Trending.KEY, "data"),
    )
    def render(search, _tick, pathname, shown):
        subsystem = _subsystem_of(pathname, context.settings.subsystems[0])
        if subsystem is None:
            raise PreventUpdate
        view = resolve_trend(service, subsystem, parse_trend_query(query_dict(search)))
        query = view.query
        key = {
            "search": query.to_search(),
            "points": len(view.series),
            "limits": view.limits,
            "newest_run": view.runs[0] if view.runs else None,
        }
        if not view.series.empty:
            key["last"] = str(view.series["snapshot_time_utc"].iloc[-1])
        if key == shown:
            raise PreventUpdate  # nothing new: hover and zoom stay
        name = safe_file_name("trend", subsystem, query.hist, query.quantity, query.content, query.axis)
        why_empty = empty_reason(service, subsystem, view) if view.series.empty and not view.empty else ""
        newer = newer_run(view, subsystem)
        return (
            figure_of(view, why_empty),
            graph_config(name),
            summary_text(view, why_empty),
            limits_text(view),
            download_href(subsystem, query, "csv"),
            download_href(subsystem, query, "parquet"),
            run_page_url(query.run, subsystem, query.hist) if query.run is not None else "",
            newer,
            _NEWER_CLASS + ("" if newer else " d-none"),
            key,
        )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Trending.RUN, "options", allow_duplicate=True),
        Input(Trending.REFRESH, "n_intervals"),
        State(Trending.RUN, "options"),
        State(Trending.LOCATION, "pathname"),
        prevent_initial_call=True,
    )
    def follow_runs(_tick, shown, pathname):
        """New runs join the Run menu as they are trended; the chosen run stays (only the options
        change), and an open menu stays open."""
        subsystem = _subsystem_of(pathname, context.settings.subsystems[0])
        if subsystem is None:
            raise PreventUpdate
        options = run_options(sorted(service.trends.runs(subsystem), reverse=True))
        if options == (shown or []):
            raise PreventUpdate
        return options

    _register_downloads(app.server, context)


def _register_downloads(server: Flask, context: PageContext) -> None:
    @server.get("/download/trend/<subsystem>.<any(csv, parquet):file_format>")
    @requires(Role.SHIFTER)
    def download_trend(subsystem: str, file_format: str) -> Response:
        unknown = context.unconfigured_subsystem(subsystem)
        if unknown is not None:
            return error_response(404, unknown, "subsystem")
        # Exactly what was asked, or an error naming the field (as the data API): never another series.
        try:
            asked = strict_trend_query(request.args.to_dict())
        except TrendQueryError as malformed:
            return error_response(400, malformed.message, malformed.field)
        try:
            view = exact_trend(context.service, subsystem, asked)
        except TrendQueryError as not_trended:
            return error_response(404, not_trended.message, not_trended.field)
        frame = series_for_download(view, subsystem)
        query = view.query
        name = safe_file_name("trend", subsystem, query.hist, query.quantity, query.content, query.axis)
        if file_format == "csv":
            payload: bytes = frame.to_csv(index=False).encode()
            mimetype = "text/csv"
        else:
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            payload, mimetype = buffer.getvalue(), "application/vnd.apache.parquet"
        return Response(
            payload,
            mimetype=mimetype,
            headers={"Content-Disposition": f'attachment; filename="{name}.{file_format}"'},
        )


def _subsystem_of(pathname: str | None, default: str) -> str | None:
    """The subsystem of a trending page's path (`default` for `/trending`), None on another page."""
    found = _PATH.fullmatch(pathname or "")
    return None if found is None else (found.group(1) or default)
