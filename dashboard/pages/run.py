"""`/run/<run>/<SYS>`: one run and subsystem, its groups and histograms over the full run or a time slice,
with the user's processing options and the plug-in's checks.

The URL query is the state (`dashboard.url_state`): `navigate` turns a user's choice into a new query
(one history entry, so back/forward step through choices) and sets the controls when the URL changes;
`render` draws what the URL asks for and, while following a live run, what changed since. Neither reads
anything but the processing service.

Never disturb a user: a live refresh is skipped while a dropdown is open, the slider is held or a typed
value is not yet submitted (`assets/live.js`), while the user paused, and for a fixed time slice; a
refresh with nothing new changes nothing, and new data only patch the traces (zoom stays).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import slices
from dashboard.access import Role, callback_role, current_identity, current_role
from dashboard.api_link import api_links
from dashboard.checks import threshold_placeholder
from dashboard.components import histogram_view as hv
from dashboard.components import qc_panel
from dashboard.components.controls import button_group, list_selector
from dashboard.context import PageContext
from dashboard.figures import message_figure, styled
from dashboard.ids import Run
from dashboard.layout import (
    grid_group_of,
    options_equal,
)
from dashboard.status_panel import receiver_line, run_state_line
from dashboard.url_state import ViewQuery, parse_query, query_dict
from dashboard.view_request import (
    mode_of,
    navigation,
    navigation_errors,
    resolve_view,
    slow_build,
    window_of,
    with_valid_window,
)
from pipeline.liveness import ReceiverState
from pipeline.processing.options import OptionsError, ProcessingOptions
from pipeline.processing.query import subsystem_options
from pipeline.processing.runs import RunInfo
from pipeline.processing.service import ProcessedView, ProcessingService
from pipeline.processing.timeslice import MergerMode, Window
from pipeline.system_status import ReceiverReport

logger = logging.getLogger(__name__)

PATHS = ("/run/<int:run>/<subsystem>",)
# Shifters view every run; time slices and options need an expert (see EXPERT_INPUTS).
ROLE = Role.SHIFTER
DEFAULT_THRESHOLD_PLACEHOLDER = "per-histogram default"


def page_path(run: int, subsystem: str) -> str:
    return f"/run/{run}/{subsystem}"


# ---- pure rules ---------------------------------------------------------------------------------


def _number_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


# ---- layout -------------------------------------------------------------------------------------


def missing(context: PageContext, params: dict) -> str | None:
    """Why `/run/<run>/<SYS>` has no page (it answers 404 saying so), None when it has one: a subsystem
    that is not configured, or a run without data for it."""
    run, subsystem = params["run"], params["subsystem"]
    service = context.service
    unconfigured = context.unconfigured_subsystem(subsystem)
    if unconfigured:
        return unconfigured
    try:
        service.run_info(run, subsystem)
    except LookupError:
        others = service.run_subsystems(run)
        if others:
            return f"Run {run} has no {subsystem} data; it has {', '.join(others)}."
        return f"Run {run} has no data; the newest runs are on /runs."
    return None


def layout(context: PageContext, params: dict, query: dict) -> html.Div:
    run, subsystem = params["run"], params["subsystem"]
    service = context.service
    try:
        info = service.run_info(run, subsystem)
        view_query = with_valid_window(service, run, subsystem, parse_query(query, subsystem))
        groups, group, entries, hist = navigation(service, run, subsystem, view_query)
    except (LookupError, OptionsError) as error:
        return html.Div(
            [
                html.H2(f"Run {run} · {subsystem}", className="mt-3"),
                html.P(f"No data: {error}", className="alert alert-warning"),
                dcc.Link("Back to the run list", href="/runs"),
            ],
            className="run-missing",
        )
    max_minutes = slices.slider_max(info.length_minutes)
    low, high = _window_inputs(view_query, max_minutes)
    try:
        slider_value = [float(low), float(high)]
    except (TypeError, ValueError):
        slider_value = [0, max_minutes]
    mode = view_query.mode or info.merger_mode.value
    # The URL as the browser has it: render compares it with what the graph shows.
    first = first_view(context, run, subsystem, getattr(query, "search", view_query.to_search()))
    logs = [first.get(name, query_log) for name, query_log in zip(_LOG_FIELDS, view_query.logs, strict=True)]
    controls = html.Div(
        [
            _navigation_card(groups, group, entries, hist, logs),
            *_expert_controls(
                _slice_card(max_minutes, slider_value, low, high, mode, locked=not may_tune()),
                _options_card(view_query, first.get("placeholder", DEFAULT_THRESHOLD_PLACEHOLDER), subsystem),
            ),
        ],
        className="control-column",
    )
    # The QC pieces come with the layout too: no callback round trip after the page arrives.
    qc = qc_panel.first_contents(service, run, subsystem, group, first.get("key"))
    graph_card = dbc.Card(
        dbc.CardBody(
            [
                html.Div(first.get("banner"), id=Run.SLICE_BANNER, className="slice-description"),
                html.Div(first.get("warnings"), id=Run.WARNINGS),
                html.Div(first.get("view_error"), id=Run.VIEW_ERROR, role="alert"),
                _background_progress(),
                hv.graph(
                    Run.GRAPH, Run.GRAPH_LOADING, figure=first.get("figure"), config=first.get("config")
                ),
                html.Div(first.get("caption"), id=Run.CAPTION, className="snapshot-caption"),
                _downloads(first.get("root_href", ""), first.get("parquet_href", "")),
                html.Div(first.get("checks"), id=Run.CHECKS, className="check-results"),
            ]
        ),
    )
    receiver = service.run_receiver(info.run, info.subsystem)
    return html.Div(
        [
            _header(service, info, first.get("run_state"), receiver),
            dbc.Row(
                [
                    dbc.Col(controls, md=4, xxl=3),
                    # Quality control: the strip above the plot, reference and history below it.
                    dbc.Col([qc_panel.strip(qc), graph_card, qc_panel.card(qc)], md=8, xxl=9),
                ],
                className="g-3",
            ),
            # The page's own URL: the query is its state (a shell-level one would be an Input of
            # callbacks on pages that are not shown).
            dcc.Location(id=Run.LOCATION, refresh=False),
            dcc.Interval(id=Run.REFRESH, interval=context.settings.status_refresh_ms, n_intervals=0),
            dcc.Store(id=Run.LIVE_TICK, data=0),
            dcc.Store(id=Run.LIVE_HELD, data=None),
            # Set by look_for_news when a refresh found new data for the view shown (see there).
            dcc.Store(id=Run.NEWS, data=None),
            dcc.Store(id=Run.LIVE_STATE, data={"paused": False}),
            dcc.Store(id=Run.RECEIVER, data=None if receiver is None else receiver.state.value),
            # What the graph shows (URL, content, log axes), so a refresh with nothing new is a no-op.
            dcc.Store(id=Run.GRAPH_KEY, data=first.get("key")),
            # Slow work handed to a background job, and the job's answer (see build_in_background).
            # {} and not None: a memory Store mounted with None announces its value as a change, which
            # started an empty job whose "running" box showed beside the drawn plot until polled.
            dcc.Store(id=Run.HEAVY_REQUEST, data={}),
            dcc.Store(id=Run.HEAVY_DONE, data=None),
        ],
        className="run-page",
    )


def first_view(context: PageContext, run: int, subsystem: str, search: str) -> dict[str, Any]:
    """What `render` would answer for the page's URL, by field name, drawn with the layout: the plot
    arrives with the page, and `render` (no initial call) only answers changes. A view that is slow (the
    background job builds it) or fails gets a pending graph-key instead: the first refresh tick then
    wakes `render`, which hands it to the background job or shows (and logs) the error."""
    request = RenderRequest(
        run,
        subsystem,
        search,
        {},
        False,
        None,
        context.settings.dash_background_min_snapshots,
        drawn_views_of(context.service),
    )
    pending = {"key": {"search": search, "pending": True}}
    try:
        answer = dict(zip(_RENDER_FIELDS, render_view(context.service, request), strict=True))
    except Exception:  # render shows and logs it
        return pending
    if answer["heavy"] is not no_update:
        return pending
    return {name: value for name, value in answer.items() if value is not no_update}


def _header(
    service: ProcessingService, info: RunInfo, run_state: Any = None, receiver: ReceiverReport | None = None
) -> html.Div:
    others = sorted(service.run_subsystems(info.run))
    links = [
        dcc.Link(
            subsystem,
            href=page_path(info.run, subsystem),
            className="btn btn-sm "
            + ("btn-primary active" if subsystem == info.subsystem else "btn-outline-primary"),
            id=f"{Run.SUBSYSTEM_LINKS}-{subsystem}",
        )
        for subsystem in others
    ]
    return html.Div(
        [
            html.H2(f"Run {info.run} · {info.subsystem}", id=Run.TITLE, className="run-title"),
            html.Div(links, id=Run.SUBSYSTEM_LINKS, className="subsystem-links btn-group"),
            html.Span(id=Run.LIVE_BADGE, className="live-badge"),
            dbc.Button("Pause", id=Run.PAUSE, size="sm", color="secondary", outline=True),
            dbc.Button("Back to live", id=Run.BACK_TO_LIVE, size="sm", color="success", className="d-none"),
            html.Div(run_state, id=Run.RUN_STATE, className="run-state"),
            html.Div(receiver_line(receiver), id=Run.RECEIVER_STATE, className="run-state receiver-state"),
        ],
        className="run-header",
    )


def _navigation_card(groups, group, entries, hist, logs: list) -> dbc.Card:
    logs = [bool(v) for v in logs]
    return dbc.Card(
        dbc.CardBody(
            [
                *list_selector("Group", Run.GROUP, "No groups", groups, group),
                *list_selector("Histogram", Run.HISTOGRAM, "No histograms", entries, hist),
                html.Div(
                    [
                        dbc.Switch(id=Run.LOG_X, label="log x", value=logs[0]),
                        dbc.Switch(id=Run.LOG_Y, label="log y", value=logs[1]),
                        dbc.Switch(id=Run.LOG_Z, label="log z", value=logs[2]),
                    ],
                    className="log-switches",
                    title="Set to the detector experts' choice when you pick a histogram",
                ),
            ]
        ),
        className="controls-card",
    )


def may_tune() -> bool:
    """Whether the person asking may change slices and options (the server refuses it otherwise)."""
    return current_role() >= Role.EXPERT


def _expert_controls(*cards: dbc.Card) -> list:
    """The slice and options cards, disabled with a note for a role below expert: the page only shows
    what the server enforces (`EXPERT_INPUTS`)."""
    if may_tune():
        return list(cards)
    who = current_identity()
    note = f"Time slices and processing options are for experts; you are {who.name} ({who.role.label})."
    return [
        html.Div(note, id=Run.EXPERT_NOTE, className="expert-note alert alert-secondary mt-3 mb-0 small"),
        html.Fieldset(list(cards), disabled=True, title=note, className="expert-controls"),
    ]


def _slice_card(
    max_minutes: int, slider_value: list, low: Any, high: Any, mode: str, locked: bool = False
) -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                dbc.Label("Time slice · minutes since start of run", className="control-label"),
                dcc.RangeSlider(
                    id=Run.SLIDER,
                    min=0,
                    max=max_minutes,
                    step=1,
                    value=slider_value,
                    marks=slices.slider_marks(max_minutes),
                    allowCross=False,
                    # The two number boxes below are the direct input; the slider's own would repeat them.
                    allow_direct_input=False,
                    updatemode="mouseup",
                    disabled=locked,
                    className="slice-slider",
                ),
                dbc.InputGroup(
                    [
                        dbc.InputGroupText("from"),
                        dbc.Input(id=Run.SLICE_MIN, type="number", value=low, step="any"),
                        dbc.InputGroupText("to"),
                        dbc.Input(id=Run.SLICE_MAX, type="number", value=high, step="any"),
                        dbc.InputGroupText("min"),
                    ],
                    size="sm",
                    className="slice-inputs mt-2",
                ),
                html.Div(
                    [
                        dbc.Button("Apply", id=Run.APPLY, color="primary", size="sm", className="me-2"),
                        dbc.Button("Full run", id=Run.FULL_RUN, color="secondary", outline=True, size="sm"),
                        button_group(
                            Run.MODE,
                            [{"label": m.value, "value": m.value} for m in MergerMode],
                            mode,
                            "merger-mode ms-auto",
                            "btn btn-sm btn-outline-secondary",
                        ),
                    ],
                    className="slice-buttons mt-2",
                    title="Merger mode: cumulative = the mergers accumulate (a slice subtracts snapshots); "
                    "reset = they reset after each request (a slice sums them). Preset to how the run was "
                    "recorded",
                ),
            ]
        ),
        className="controls-card mt-3",
    )


def _options_card(query: ViewQuery, threshold_placeholder: str, subsystem: str) -> dbc.Card:
    """The options that can act on `subsystem` (`subsystem_options`): a TPC page offers neither EMC's
    threshold nor scaling (nothing of TPC's is per event). The scaling switch and the threshold box are
    always in the page (callbacks read them), hidden where they would change nothing; a card with
    nothing to offer says so."""
    offered = subsystem_options(subsystem)
    specs = offered.plugin
    given = dict(query.plugin_options)
    plugin_inputs = []
    for name in sorted(specs):
        spec = specs[name]
        plugin_inputs += [
            dbc.Label(
                name.replace("_", " "),
                html_for=f"{Run.PLUGIN_OPTION}-{name}",
                className="option-label mb-1 mt-2",
            ),
            dbc.Input(
                id={"type": Run.PLUGIN_OPTION, "name": name},
                type="text",
                inputmode="numeric",
                value=given.get(name, ""),
                placeholder=f"default {spec.default:g}"
                if isinstance(spec.default, float)
                else f"default {spec.default}",
                debounce=True,
                size="sm",
                autocomplete="off",
            ),
            html.Div(spec.description, className="option-help"),
        ]
    return dbc.Card(
        dbc.CardBody(
            [
                dbc.Label("Processing options", className="control-label"),
                html.Div(
                    f"{subsystem} has no processing options: nothing it shows is per event or "
                    "judged against a threshold.",
                    className="option-help" if not offered.names() else "d-none",
                    id=Run.NO_OPTIONS,
                ),
                dbc.Switch(
                    id=Run.SCALE,
                    label="Scale by number of events",
                    value=query.scale is not False,
                    className=None if offered.scale else "d-none",
                ),
                html.Div(
                    [
                        dbc.Label(
                            "Hot-channel threshold", html_for=Run.THRESHOLD, className="option-label mb-1"
                        ),
                        dbc.Input(
                            id=Run.THRESHOLD,
                            type="text",
                            inputmode="numeric",
                            value=query.threshold or "",
                            placeholder=threshold_placeholder,
                            # Recompute on Enter or when leaving the box, not on every keystroke.
                            debounce=True,
                            size="sm",
                            autocomplete="off",
                        ),
                        html.Div(
                            "entries per event when scaled · empty = each histogram's default · "
                            "Enter applies",
                            className="option-help",
                        ),
                    ],
                    className="threshold-option" if offered.threshold else "threshold-option d-none",
                ),
                *plugin_inputs,
                html.Div(id=Run.INPUT_ERROR, className="options-error", role="alert"),
            ]
        ),
        className="controls-card mt-3",
    )


def _background_progress() -> html.Div:
    """Shown while a background job sums snapshots: what it does, how far it is, and a way to stop it."""
    return html.Div(
        [
            html.Span("Summing snapshots in the background…", id=Run.HEAVY_LABEL, className="me-3"),
            dbc.Progress(id=Run.HEAVY_PROGRESS, value=0, max=1, className="flex-grow-1 me-3", striped=True),
            dbc.Button("Cancel", id=Run.HEAVY_CANCEL, size="sm", color="secondary"),
        ],
        id=Run.HEAVY_BOX,
        className="d-none",
        role="status",
    )


def _downloads(root_href: str, parquet_href: str) -> html.Div:
    return html.Div(
        [
            html.Span("Download:", className="me-2"),
            dbc.Button("PNG", id=Run.DOWNLOAD_PNG, size="sm", color="link"),
            dbc.Button("SVG", id=Run.DOWNLOAD_SVG, size="sm", color="link"),
            html.A(
                "ROOT", id=Run.DOWNLOAD_ROOT, href=root_href, className="btn btn-sm btn-link", download=""
            ),
            html.A(
                "Parquet",
                id=Run.DOWNLOAD_PARQUET,
                href=parquet_href,
                className="btn btn-sm btn-link",
                download="",
            ),
            html.Span(id=Run.DOWNLOAD_DONE, className="d-none"),
        ],
        className="downloads",
    )


# ---- callbacks ----------------------------------------------------------------------------------

_NAVIGATE_OUTPUTS = (
    (Run.GROUP, "options"),
    (Run.GROUP, "value"),
    (Run.HISTOGRAM, "options"),
    (Run.HISTOGRAM, "value"),
    (Run.MODE, "value"),
    (Run.SCALE, "value"),
    (Run.THRESHOLD, "value"),
    (Run.SLICE_MIN, "value"),
    (Run.SLICE_MAX, "value"),
    (Run.SLIDER, "value"),
    (Run.SLIDER, "max"),
    (Run.SLIDER, "marks"),
    (Run.INPUT_ERROR, "children"),
    (Run.LIVE_STATE, "data"),
)


# Inputs of the navigation callback that change what is computed (time slice, merger mode, options):
# an expert's. A shifter still opens a link that carries them (viewing), but the server refuses a
# shifter's request triggered by one of these.
EXPERT_INPUTS = {
    component: Role.EXPERT
    for component in (
        Run.THRESHOLD,
        Run.SCALE,
        Run.MODE,
        Run.PLUGIN_OPTION,
        Run.SLIDER,
        Run.SLICE_MIN,
        Run.SLICE_MAX,
        Run.APPLY,
        Run.FULL_RUN,
    )
}


def register_callbacks(app: dash.Dash, context: PageContext) -> None:
    service = context.service
    qc_panel.register_callbacks(app, context)
    min_snapshots = context.settings.dash_background_min_snapshots
    drawn_views = drawn_views_of(service)

    app.clientside_callback(
        "function(n, live, held) { return window.overwatchLive.tick(n, live, held); }",
        Output(Run.LIVE_TICK, "data"),
        Output(Run.LIVE_HELD, "data"),
        Input(Run.REFRESH, "n_intervals"),
        State(Run.LIVE_STATE, "data"),
        State(Run.LIVE_HELD, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        "function(png, svg, config) { return window.overwatchLive.download(png, svg, config); }",
        Output(Run.DOWNLOAD_DONE, "children"),
        Input(Run.DOWNLOAD_PNG, "n_clicks"),
        Input(Run.DOWNLOAD_SVG, "n_clicks"),
        State(Run.GRAPH, "config"),
        prevent_initial_call=True,
    )

    @callback_role(app, Role.SHIFTER, escalate=EXPERT_INPUTS)
    @app.callback(
        Output(Run.LOCATION, "search"),
        *(Output(component, prop) for component, prop in _NAVIGATE_OUTPUTS),
        Output({"type": Run.PLUGIN_OPTION, "name": ALL}, "value"),
        Input(Run.LOCATION, "search"),
        Input(Run.GROUP, "value"),
        Input(Run.HISTOGRAM, "value"),
        Input(Run.LOG_X, "value"),
        Input(Run.LOG_Y, "value"),
        Input(Run.LOG_Z, "value"),
        Input(Run.MODE, "value"),
        Input(Run.SCALE, "value"),
        Input(Run.THRESHOLD, "value"),
        Input({"type": Run.PLUGIN_OPTION, "name": ALL}, "value"),
        Input(Run.SLIDER, "value"),
        Input(Run.SLICE_MIN, "value"),
        Input(Run.SLICE_MAX, "value"),
        Input(Run.APPLY, "n_clicks"),
        Input(Run.SLICE_MIN, "n_submit"),
        Input(Run.SLICE_MAX, "n_submit"),
        Input(Run.FULL_RUN, "n_clicks"),
        Input(Run.PAUSE, "n_clicks"),
        Input(Run.BACK_TO_LIVE, "n_clicks"),
        State(Run.LOCATION, "pathname"),
        State(Run.GRAPH_KEY, "data"),
        State(Run.LIVE_STATE, "data"),
        State(Run.GROUP, "options"),
        State(Run.HISTOGRAM, "options"),
        State(Run.SLIDER, "max"),
        State({"type": Run.PLUGIN_OPTION, "name": ALL}, "id"),
        prevent_initial_call=True,
    )
    def navigate(search, group, hist, log_x, log_y, log_z, mode, scale, threshold, plugin_values, slider,
                 low, high, _apply, _submit_low, _submit_high, _full, _pause, _live, pathname, shown,
                 live_state, old_groups, old_entries, old_max, plugin_ids):  # fmt: skip
        params = _run_params(pathname)
        if params is None:
            raise PreventUpdate
        run, subsystem = params
        trigger = ctx.triggered_id
        if any(item["prop_id"].endswith(".n_submit") for item in ctx.triggered):
            trigger = Run.APPLY  # Enter in a slice box applies it, as Apply does
        # A window the run does not have is not applied (render names it): the controls show the full run.
        query = with_valid_window(service, run, subsystem, parse_query(query_dict(search), subsystem))
        out = _Outputs(plugin_count=len(plugin_ids))
        info = service.run_info(run, subsystem)

        if trigger == Run.LOCATION:  # back/forward, or a link: the controls show what the URL says
            groups, new_group, entries, new_hist = navigation(service, run, subsystem, query)
            out.set_options(groups, old_groups, entries, old_entries)
            out.set(Run.GROUP, new_group, group)
            out.set(Run.HISTOGRAM, new_hist, hist)
            out.set(Run.MODE, query.mode or info.merger_mode.value, mode)
            out.set(Run.SCALE, query.scale is not False, scale)
            out.set(Run.THRESHOLD, query.threshold or "", threshold)
            _show_window(out, query, old_max, slider, low, high)
            given = dict(query.plugin_options)
            out.plugins = [given.get(i["name"], "") for i in plugin_ids]
            return out.tuple()
        if trigger == Run.SLIDER:
            shown_low, shown_high = slices.inputs_from_range(slider)
            out.set(Run.SLICE_MIN, shown_low, low)
            out.set(Run.SLICE_MAX, shown_high, high)
            return out.tuple()
        if trigger in (Run.SLICE_MIN, Run.SLICE_MAX):
            moved = slices.range_from_inputs(low, high, old_max)
            if moved is not None:
                out.set(Run.SLIDER, moved, slider)
            return out.tuple()
        if trigger == Run.PAUSE:
            out.set(Run.LIVE_STATE, {"paused": not (live_state or {}).get("paused")}, None)
            return out.tuple()

        new_query = query
        if trigger == Run.GROUP:
            _, _, entries, first = navigation(service, run, subsystem, query.with_histogram(group, None))
            out.set_options(None, None, entries, old_entries)
            out.set(Run.HISTOGRAM, first, hist)
            new_query = query.with_histogram(group, first)
        elif trigger == Run.HISTOGRAM:
            new_query = query.with_histogram(group, hist)
        elif trigger in (Run.LOG_X, Run.LOG_Y, Run.LOG_Z):
            shown_logs = (shown or {}).get("logs")
            if shown_logs == [bool(log_x), bool(log_y), bool(log_z)]:
                # The page setting the experts' defaults, not the user. This request may have replaced
                # a pending one of the user's (Dash keeps only the newest answer): keep their histogram.
                if (
                    hist is None
                    or (group, hist) == (query.group, query.hist)
                    or hist == (shown or {}).get("name")
                ):
                    raise PreventUpdate
                new_query = query.with_histogram(group, hist)
            else:
                new_query = ViewQuery(
                    **{**query.__dict__, "logx": bool(log_x), "logy": bool(log_y), "logz": bool(log_z)}
                )
        elif trigger == Run.MODE:
            new_query = ViewQuery(
                **{
                    **query.__dict__,
                    "mode": None if mode == info.merger_mode.value and query.mode is None else mode,
                }
            )
        elif trigger == Run.SCALE:
            new_query = ViewQuery(**{**query.__dict__, "scale": None if scale else False})
        elif trigger == Run.THRESHOLD or (
            isinstance(trigger, dict) and trigger.get("type") == Run.PLUGIN_OPTION
        ):
            candidate = ViewQuery(
                **{
                    **query.__dict__,
                    "threshold": (threshold or "").strip() or None,
                    "plugin_options": tuple(
                        sorted(
                            (i["name"], str(v).strip())
                            for i, v in zip(plugin_ids, plugin_values, strict=True)
                            if str(v or "").strip()
                        )
                    ),
                }
            )
            try:
                ProcessingOptions.from_mapping(candidate.option_values())
            except OptionsError as error:
                out.set(Run.INPUT_ERROR, _error_alert(slices.error_text(error), "Not applied"), None)
                return out.tuple()
            new_query = candidate
        elif trigger == Run.APPLY:
            try:
                window = slices.window_from_inputs(low, high, info.length_minutes)
                if window is not None:
                    service.plan(run, subsystem, window, mode_of(query))
            except OptionsError as error:
                out.set(Run.INPUT_ERROR, _error_alert(slices.error_text(error), "Slice not applied"), None)
                return out.tuple()
            new_query = ViewQuery(
                **{
                    **query.__dict__,
                    "min": None if window is None else _number_text(window.min_minutes),
                    "max": None if window is None else _number_text(window.max_minutes),
                }
            )
        elif trigger in (Run.FULL_RUN, Run.BACK_TO_LIVE):
            new_query = query.without_slice()
            if trigger == Run.BACK_TO_LIVE:
                out.set(Run.LIVE_STATE, {"paused": False}, None)
        # Whatever changed, the slider and its boxes show the window the new view plots (a range
        # dragged or typed but not applied would otherwise stand over a plot of another window).
        _show_window(out, new_query, old_max, slider, low, high)
        out.set(Run.INPUT_ERROR, "", None)
        new_search = new_query.to_search()
        if new_search != (search or ""):
            out.search = new_search
        return out.tuple()

    # Its own callback, not a branch of navigate: a newer request of a callback makes Dash drop the
    # answer of the pending one, and a refresh must never swallow a user's choice.
    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Run.GROUP, "options", allow_duplicate=True),
        Output(Run.HISTOGRAM, "options", allow_duplicate=True),
        Output(Run.SLIDER, "max", allow_duplicate=True),
        Output(Run.SLIDER, "marks", allow_duplicate=True),
        Output(Run.SLIDER, "value", allow_duplicate=True),
        Output(Run.SLICE_MIN, "value", allow_duplicate=True),
        Output(Run.SLICE_MAX, "value", allow_duplicate=True),
        Input(Run.LIVE_TICK, "data"),
        State(Run.LOCATION, "pathname"),
        State(Run.LOCATION, "search"),
        State(Run.GROUP, "options"),
        State(Run.HISTOGRAM, "options"),
        State(Run.SLIDER, "max"),
        State(Run.SLIDER, "value"),
        prevent_initial_call=True,
    )
    def follow_live_run(_tick, pathname, search, old_groups, old_entries, old_max, slider):
        """A live run grows: new histograms in the lists, a longer slider; the user's choices stay."""
        params = _run_params(pathname)
        if params is None:
            raise PreventUpdate
        run, subsystem = params
        query = parse_query(query_dict(search))
        groups, _, entries, _ = navigation(service, run, subsystem, query)
        new_max = slices.slider_max(service.run_info(run, subsystem).length_minutes)
        grown = None
        if new_max != old_max:
            grown = slices.range_after_growth(slider, old_max, new_max, query.has_slice)
        if options_equal(groups, old_groups) and options_equal(entries, old_entries) and new_max == old_max:
            raise PreventUpdate
        return (
            no_update if options_equal(groups, old_groups) else groups,
            no_update if options_equal(entries, old_entries) else entries,
            no_update if new_max == old_max else new_max,
            no_update if new_max == old_max else slices.slider_marks(new_max),
            no_update if grown is None else grown,
            no_update if grown is None else _plain(grown[0]),
            no_update if grown is None else _plain(grown[1]),
        )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Run.NEWS, "data"),
        Input(Run.LIVE_TICK, "data"),
        State(Run.LOCATION, "pathname"),
        State(Run.LOCATION, "search"),
        State(Run.GRAPH_KEY, "data"),
        prevent_initial_call=True,
    )
    def look_for_news(_tick, pathname, search, shown):
        """A refresh asks only whether the view has new data (which snapshots it would use; cheap), and
        wakes `render` when it has. A refresh tick that went to `render` itself would, while a slow
        view is being drawn, make Dash drop that answer for the next tick's: it would never arrive."""
        params = _run_params(pathname)
        shown = shown or {}
        if params is None or shown.get("search") != (search or ""):
            raise PreventUpdate  # a render for the new query is on its way
        if shown.get("pending"):
            return time.time()  # is the background job done? (render answers at once either way)
        try:
            query = with_valid_window(service, *params, parse_query(query_dict(search), params[1]))
            news = news_signature(service, *params, query)
        except (OptionsError, LookupError):
            raise PreventUpdate from None
        if news == shown.get("news"):
            raise PreventUpdate
        return news

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Run.GRAPH, "figure"),
        Output(Run.GRAPH, "config"),
        Output(Run.CAPTION, "children"),
        Output(Run.CHECKS, "children"),
        Output(Run.SLICE_BANNER, "children"),
        Output(Run.WARNINGS, "children"),
        Output(Run.VIEW_ERROR, "children"),
        Output(Run.GRAPH_KEY, "data"),
        Output(Run.THRESHOLD, "placeholder"),
        Output(Run.LOG_X, "value"),
        Output(Run.LOG_Y, "value"),
        Output(Run.LOG_Z, "value"),
        Output(Run.DOWNLOAD_ROOT, "href"),
        Output(Run.DOWNLOAD_PARQUET, "href"),
        Output(Run.RUN_STATE, "children"),
        Output(Run.HEAVY_REQUEST, "data"),
        Input(Run.LOCATION, "search"),
        Input(Run.NEWS, "data"),
        State(Run.LOCATION, "pathname"),
        State(Run.GRAPH_KEY, "data"),
        State(Run.HEAVY_REQUEST, "data"),
        # The layout holds the first view (`first_view`). An initial call would also be held back by
        # Dash until the first refresh tick (NEWS is downstream of the interval), and the spinner
        # around the graph kept the drawn plot waiting for it.
        prevent_initial_call=True,
    )
    def render(search, news, pathname, shown, pending):
        params = _run_params(pathname)
        if params is None:
            raise PreventUpdate
        # Nothing to do for the URL on screen without news (look_for_news only announces news that
        # differ from the shown view's). Dash re-sends these inputs when the background callback settles
        # (~1.5 s after a page opens); answering would update the view while a person holds a menu
        # open, past the live gate of assets/live.js.
        shown_key = shown or {}
        if (search or "") == shown_key.get("search") and news in (None, shown_key.get("news")):
            raise PreventUpdate
        run, subsystem = params
        try:
            live = ctx.triggered_id == Run.NEWS
            request = RenderRequest(
                run, subsystem, search or "", shown or {}, live, pending, min_snapshots, drawn_views
            )
            return render_view(service, request)
        except PreventUpdate:
            raise
        except Exception as error:  # a visible message, never a silent hang; the log has the traceback
            logger.exception("view of run %s %s failed", run, subsystem)
            return _only(view_error=_error_alert(f"{type(error).__name__}: {error}", "Server error"))

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Run.HEAVY_DONE, "data"),
        Input(Run.HEAVY_REQUEST, "data"),
        State(Run.LOCATION, "pathname"),
        background=True,
        manager=context.background,
        progress=[
            Output(Run.HEAVY_PROGRESS, "value"),
            Output(Run.HEAVY_PROGRESS, "max"),
            Output(Run.HEAVY_LABEL, "children"),
        ],
        running=[(Output(Run.HEAVY_BOX, "className"), "heavy-box alert alert-info", "d-none")],
        cancel=[Input(Run.HEAVY_CANCEL, "n_clicks")],
        prevent_initial_call=True,
    )
    def build_in_background(set_progress, request, pathname):
        """Build a slow view in its own process and leave it in the shared disk cache; the next refresh
        tick of `render` shows it at once (an Input from here would close a loop of callbacks, which
        Dash does not run). A fresh service: a forked process must not use the parent's threads."""
        params = _run_params(pathname)
        if not request or params is None:
            raise PreventUpdate
        run, subsystem = params
        worker = ProcessingService(service.store, Path(service.cache.directory), service.subsystems)
        set_progress((0, 1, f"Summing {request['snapshots']} snapshots in the background…"))
        query = parse_query(query_dict(request["search"]), subsystem)
        resolved = resolve_view(worker, run, subsystem, with_valid_window(worker, run, subsystem, query))
        _, _, names = hv.shown_names(resolved.view, subsystem, resolved.name)
        for done, name in enumerate(names, start=1):
            resolved.view.histogram(name)
            set_progress(
                (done, len(names), f"Summed {request['snapshots']} snapshots: {done}/{len(names)} histograms")
            )
        worker.flush()
        return request

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Run.GRAPH, "figure", allow_duplicate=True),
        Output(Run.GRAPH_KEY, "data", allow_duplicate=True),
        Input(Run.HEAVY_CANCEL, "n_clicks"),
        State(Run.HEAVY_REQUEST, "data"),
        prevent_initial_call=True,
    )
    def cancelled(_clicks, request):
        snapshots = (request or {}).get("snapshots", "the")
        text = (
            f"Cancelled: summing {snapshots} snapshots was stopped. Pick a shorter window or cumulative mode."
        )
        return styled(message_figure(text)), {"search": None, "cancelled": True}

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Run.RUN_STATE, "children", allow_duplicate=True),
        Output(Run.RECEIVER_STATE, "children"),
        Output(Run.RECEIVER, "data"),
        Input(Run.REFRESH, "n_intervals"),
        State(Run.LOCATION, "pathname"),
        State(Run.RECEIVER, "data"),
        prevent_initial_call=True,
    )
    def run_status(_tick, pathname, known):
        """Every refresh, paused or not, the run line (its ages move on) and the state of the receiver
        behind the run: the view's news come from snapshots, and a silent merger or a dead receiver
        stores none, so only these lines (and the badge) can say so."""
        params = _run_params(pathname)
        if params is None:
            raise PreventUpdate
        try:
            info = service.run_info(*params)
        except LookupError:
            raise PreventUpdate from None
        report = service.run_receiver(*params)
        state = None if report is None else report.state.value
        return (
            run_state_line(info.run, info.end_utc.timestamp(), info.ongoing, time.time()),
            receiver_line(report),
            no_update if state == known else state,
        )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Run.LIVE_BADGE, "children"),
        Output(Run.LIVE_BADGE, "className"),
        Output(Run.BACK_TO_LIVE, "className"),
        Output(Run.BACK_TO_LIVE, "children"),
        Output(Run.PAUSE, "children"),
        Input(Run.LIVE_STATE, "data"),
        Input(Run.GRAPH_KEY, "data"),
        Input(Run.LOCATION, "search"),
        Input(Run.RECEIVER, "data"),
        Input(Run.LIVE_HELD, "data"),
    )
    def live_indicator(live_state, shown, search, receiver, held):
        paused = bool((live_state or {}).get("paused"))
        # The view drawn says whether it is a slice (a window the run does not have is not applied).
        has_slice = (shown or {}).get("slice", parse_query(query_dict(search)).has_slice)
        # None until a view is drawn: the run's state is not known yet, so neither "live" nor "ended".
        ongoing = (shown or {}).get("ongoing")
        text, state = live_state_text(paused, has_slice, ongoing, receiver, held)
        back = back_button(state, has_slice, ongoing)
        return (
            text,
            f"live-badge live-{state}",
            "d-none" if back is None else "ms-2",
            back or no_update,
            "Resume" if paused else "Pause",
        )


def live_state_text(
    paused: bool, has_slice: bool, ongoing: bool | None, receiver: str | None = None, held: str | None = None
) -> tuple[str, str]:
    """(badge text, state) of the live indicator: live, held (live, but assets/live.js holds updates
    back while the user types, holds a menu open or drags: `held` says which), stalled (the run is
    ongoing but its receiver is not flowing: `receiver` is its state's value), paused, ended, or
    loading (`ongoing` None: no view drawn yet, e.g. while the background job builds the first one)."""
    if paused:
        return "❚❚ Paused by you", "paused"
    if has_slice:
        return "❚❚ Paused · fixed time slice", "paused"
    if ongoing is None:
        return "◌ Loading", "loading"
    if ongoing and receiver not in _RECEIVING:
        return f"⚠ No new data · {receiver}", "stalled"
    if ongoing and held:
        return f"● Live · held {_HELD_WHILE.get(held, 'while you ' + held)}", "held"
    if ongoing:
        return "● Live", "live"
    return "○ Run ended", "ended"


def back_button(state: str, has_slice: bool, ongoing: bool | None) -> str | None:
    """The label of the button that leaves a pause, None to hide it: back to live for a run that is
    live, back to the full run for a fixed slice of a run that ended (nothing is live there), and no
    button for an ended run the user paused (Resume does it)."""
    if state != "paused":
        return None
    if ongoing is False:
        return "Full run" if has_slice else None
    return "Back to live"


# What assets/live.js's busy() answers, as the badge says it.
_HELD_WHILE = {
    "typing": "while you type",
    "menu open": "while a menu is open",
    "slider held": "while you drag the slider",
}


# Receiver states under which an ongoing run is live: None is a run no receiver is on any more (its
# liveness is then the run's own rule), starting waits for a first reply.
_RECEIVING = (None, ReceiverState.FLOWING.value, ReceiverState.STARTING.value)


# ---- the view -----------------------------------------------------------------------------------

_RENDER_FIELDS = (
    "figure", "config", "caption", "checks", "banner", "warnings", "view_error", "key", "placeholder",
    "log_x", "log_y", "log_z", "root_href", "parquet_href", "run_state", "heavy",
)  # fmt: skip
_LOG_FIELDS = ("log_x", "log_y", "log_z")


def _caption_with_api_link(
    view: ProcessedView, window: Window | None, options: ProcessingOptions, shown: hv.Shown
) -> list:
    """The caption, and for a single histogram the data API's URL of exactly what is plotted."""
    caption = hv.caption(view, window, options, shown)
    if len(shown.members) != 1 or shown.grid_title or shown.stack:
        return caption
    return [*caption, html.Span(" · "), api_links(view, shown.members[0].histogram.name, window, options)]


@dataclass(frozen=True)
class RenderRequest:
    """What `render` was called with: the page, its URL query, what it shows now (graph-key), whether
    a live refresh asked, and the background job asked for last."""

    run: int
    subsystem: str
    search: str
    shown: dict
    live_tick: bool
    pending: dict | None
    min_snapshots: int
    drawn: DrawnViews | None = None


def _only(**values: Any) -> tuple:
    return tuple(values.get(name, no_update) for name in _RENDER_FIELDS)


def render_view(service: ProcessingService, request: RenderRequest) -> tuple:
    """Everything `render` shows for the URL query (see RenderRequest)."""
    run, subsystem, search, shown = request.run, request.subsystem, request.search, request.shown
    # What the URL asks for and the view cannot apply (a bad value, a key given twice, an option the
    # subsystem lacks, a window the run does not have): named, and the view drawn without it.
    try:
        query = with_valid_window(service, run, subsystem, parse_query(query_dict(search), subsystem))
        if (
            request.live_tick
            and query.has_slice
            and shown.get("search") == search
            and not shown.get("pending")
        ):
            raise PreventUpdate  # a slice is a fixed window: live updates do not touch it
        slow = slow_build(service, run, subsystem, query, request.min_snapshots)
        if slow is not None:
            return _hand_to_background(request, slow)
        resolved = resolve_view(service, run, subsystem, query)
    except OptionsError as error:  # not expected (the query holds what reads): said, never "Loading"
        text = slices.error_text(error)
        figure = styled(message_figure(f"Not drawn: {text}"))
        return _only(figure=figure, view_error=_error_alert(text, "Not applied"), key={"search": search})
    except LookupError as error:
        return _only(figure=styled(message_figure(f"Run {run}: {error}")), view_error="")
    refused = [*query.not_applied, *navigation_errors(query, resolved)]
    not_applied = (
        html.Div([_error_alert(slices.error_text(error), "Not applied") for error in refused])
        if refused
        else ""
    )
    view, window, options, name = resolved.view, resolved.window, resolved.options, resolved.name
    info = view.run
    run_state = run_state_line(run, info.end_utc.timestamp(), info.ongoing, time.time())
    if name is None:
        return _only(
            figure=styled(message_figure(f"Run {run}: no {subsystem} histograms stored yet")),
            run_state=run_state,
        )
    try:
        shown_now = hv.shown_histograms(view, subsystem, name)
    except KeyError:
        where = "this time slice" if window else f"the newest {subsystem} snapshot"
        text = f"{grid_group_of(name) or name} is not in {where}"
        return _only(
            figure=styled(message_figure(text)), key={"search": search, "message": text}, run_state=run_state
        )
    defaults = hv.default_logs(shown_now)
    logs = tuple(
        default if chosen is None else chosen for chosen, default in zip(query.logs, defaults, strict=True)
    )
    uirevision = f"{subsystem}/{name}/{logs[0]}/{logs[1]}"
    content = (
        f"{view.plan.mode.value}|{','.join(view.plan.used_snapshot_ids)}|{options.cache_key()}|{logs[2]}"
    )
    key = {
        "search": search,
        "path": page_path(run, subsystem),
        "name": name,
        "uirevision": uirevision,
        "content": content,
        "news": news_signature(service, run, subsystem, query),
        "logs": list(logs),
        "ongoing": info.ongoing,
        "slice": query.has_slice,  # of the view drawn (a window the run lacks is not applied)
        "not_applied": [str(error) for error in refused],
    }
    if key == {k: shown.get(k) for k in key}:
        raise PreventUpdate  # nothing new: leave hover and zoom alone
    same_axes = shown.get("uirevision") == uirevision and shown.get("path") == key["path"]
    drawn = request.drawn.get(key) if request.drawn is not None else None
    if drawn is None:
        context = hv.slice_context(view) if window else ""
        figure = hv.figure_for(shown_now, logs, context)
        figure.update_layout(uirevision=uirevision)
        checks = [check for member in shown_now.members for check in member.checks]
        figure_json = styled(figure)
        drawn = Drawn(
            figure=figure_json,
            config=hv.graph_config(hv.view_file_name(run, subsystem, name, window)),
            caption=_caption_with_api_link(view, window, options, shown_now),
            checks=hv.checks_panel(service, view, subsystem, shown_now),
            banner=hv.slice_banner(view, window),
            warnings=hv.warnings_block(view),
            placeholder=threshold_placeholder(checks) or DEFAULT_THRESHOLD_PLACEHOLDER,
            trace_digests=hv.trace_digests(figure_json),
        )
        if request.drawn is not None:
            request.drawn.put(key, drawn)
    shown_digests = shown.get("traces") if same_axes else None
    return (
        hv.content_patch(drawn.figure, shown_digests) if same_axes else drawn.figure,
        drawn.config,
        drawn.caption,
        drawn.checks,
        drawn.banner,
        drawn.warnings,
        not_applied,
        {**key, "traces": drawn.trace_digests},
        drawn.placeholder,
        *logs,
        # The query of the view drawn: an option named "Not applied" is refused by the download route.
        f"/download/{run}/{subsystem}.root{query.to_search()}",
        f"/download/{run}/{subsystem}.parquet{query.to_search()}",
        run_state,
        no_update,
    )


@dataclass(frozen=True)
class Drawn:
    """What `render` made for one view (figure as plain JSON, panels), kept for the next ask."""

    figure: dict
    config: dict
    caption: Any
    checks: Any
    banner: Any
    warnings: Any
    placeholder: str
    # Of the figure's traces (see hv.content_patch): the graph-key says which traces are on screen.
    trace_digests: list[str]


class DrawnViews:
    """The last views drawn by this worker, by graph-key: many people (and every refresh after a
    new snapshot) ask for the same view, and drawing a figure costs far more than serving it."""

    def __init__(self, size: int = 64) -> None:
        self._entries: OrderedDict[str, Drawn] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def _key(key: dict) -> str:
        return json.dumps(key, sort_keys=True)

    def get(self, key: dict) -> Drawn | None:
        with self._lock:
            drawn = self._entries.get(self._key(key))
            if drawn is not None:
                self._entries.move_to_end(self._key(key))
            return drawn

    def put(self, key: dict, drawn: Drawn) -> None:
        with self._lock:
            self._entries[self._key(key)] = drawn
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


# One DrawnViews per processing service (i.e. per app in this worker): the layout's first view and
# render share it, so opening a page whose view was drawn before costs no figure building.
_DRAWN_BY_SERVICE: weakref.WeakKeyDictionary[ProcessingService, DrawnViews] = weakref.WeakKeyDictionary()
_DRAWN_BY_SERVICE_LOCK = threading.Lock()


def drawn_views_of(service: ProcessingService) -> DrawnViews:
    """The views this worker drew for `service`'s pages."""
    with _DRAWN_BY_SERVICE_LOCK:
        drawn = _DRAWN_BY_SERVICE.get(service)
        if drawn is None:
            drawn = _DRAWN_BY_SERVICE[service] = DrawnViews()
        return drawn


def news_signature(service: ProcessingService, run: int, subsystem: str, query: ViewQuery) -> str:
    """What a live refresh compares: the snapshots the view would use now, and whether the run is
    still going (the banner says so)."""
    info, plan = service.plan(run, subsystem, window_of(service, run, subsystem, query), mode_of(query))
    return f"{plan.mode.value}|{len(plan.used_snapshot_ids)}|{plan.used_snapshot_ids[-1:]}|{info.ongoing}"


def _hand_to_background(request: RenderRequest, slow: dict) -> tuple:
    """Ask the background job for a slow view; until it is done, keep what is shown of this view (a
    live refresh) or say what is being computed."""
    job = {**slow, "search": request.search}
    if job == request.pending:
        raise PreventUpdate  # already asked for (or cancelled by the user)
    if request.shown.get("search") == request.search and not request.shown.get("pending"):
        return _only(heavy=job)
    text = f"Summing {slow['snapshots']} snapshots in the background…"
    return _only(
        figure=styled(message_figure(text)), key={"search": request.search, "pending": True}, heavy=job
    )


# ---- helpers ------------------------------------------------------------------------------------


class _Outputs:
    """navigate's outputs by id; everything not set stays no_update."""

    def __init__(self, plugin_count: int) -> None:
        self.search: Any = no_update
        self.values: dict[str, Any] = {}
        self.plugins: Any = [no_update] * plugin_count

    def set(self, key: str, new: Any, old: Any) -> None:
        if new is not None and new != old:
            self.values[key] = new

    def set_options(self, groups, old_groups, entries, old_entries) -> None:
        if groups is not None and not options_equal(groups, old_groups):
            self.values[Run.GROUP + ".options"] = groups
        if entries is not None and not options_equal(entries, old_entries):
            self.values[Run.HISTOGRAM + ".options"] = entries

    def tuple(self) -> tuple:
        keyed = []
        for component, prop in _NAVIGATE_OUTPUTS:
            key = component if prop in ("value", "data", "children") else f"{component}.{prop}"
            keyed.append(self.values.get(key, no_update))
        return (self.search, *keyed, self.plugins)


def _show_window(
    out: _Outputs, query: ViewQuery, slider_upper: Any, slider: Any, low: Any, high: Any
) -> None:
    """Set the slider and its two boxes to the window `query` plots: its slice, else the full run."""
    shown_low, shown_high = _window_inputs(query, slider_upper)
    out.set(Run.SLICE_MIN, _plain(shown_low), low)
    out.set(Run.SLICE_MAX, _plain(shown_high), high)
    shown_range = slices.range_from_inputs(shown_low, shown_high, slider_upper)
    if shown_range is not None:
        out.set(Run.SLIDER, [_plain(edge) for edge in shown_range], slider)


def _window_inputs(query: ViewQuery, slider_upper: Any) -> tuple[Any, Any]:
    """What the two slice boxes show for `query`: its window, a missing end the run's (the slider's)."""
    low = query.min if query.min is not None else 0
    high = query.max if query.max is not None else slider_upper
    return low, high


def _run_params(pathname: str | None) -> tuple[int, str] | None:
    """(run, subsystem) of a run page's path; None on another page (its callbacks then do nothing)."""
    found = _PATH.fullmatch(pathname or "")
    return None if found is None else (int(found.group(1)), found.group(2))


_PATH = re.compile(r"/run/(-?\d+)/([^/]+)/?")


def _plain(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else number


def _error_alert(message: str, consequence: str) -> html.Div:
    return html.Div(
        [html.Strong(f"{consequence}. "), html.Span(message, className="error-text")],
        className="alert alert-danger py-2 px-3 mb-0 mt-2",
    )
