"""The Dash app: one live page showing a run's histograms, processed by the detector plug-ins, over the
whole run or a time slice, with the user's processing options, plus the receivers' health.

`create_app(settings, store)` builds a fresh app (callbacks bound to it, not to the global `dash`
registry, so two apps in one process never collide). Every histogram comes from the
`ProcessingService` (which handles the HLT-files fallback, slices and caching); callbacks only wire the
controls to it and hand the results to the pure functions in `figures`, `checks`, `slices`, `layout`
and `status_panel`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, Patch, State, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import slices
from dashboard.checks import check_results_panel, threshold_placeholder
from dashboard.figures import grid_figure, message_figure, processed_figure, stack_figure
from dashboard.layout import (
    NO_RUNS_MESSAGE,
    build_layout,
    choose_group,
    choose_histogram,
    choose_run,
    choose_subsystem,
    grid_group_of,
    group_options,
    histogram_entries,
    options_equal,
    remember_choice,
    remembered_choice,
    run_options,
    subsystem_options,
    summarize_runs,
)
from dashboard.slices import (
    AppliedSlice,
    describe_full_run,
    error_text,
    merger_mode,
    options_from_inputs,
    slider_marks,
    window_from_inputs,
)
from dashboard.status_panel import format_utc, run_state_line, status_panel
from pipeline.detectors import plugin_for
from pipeline.processing.options import OptionsError, ProcessingOptions
from pipeline.processing.service import ProcessedView, ProcessingService
from pipeline.processing.timeslice import Window
from pipeline.settings import Settings
from pipeline.status import read_all_status
from pipeline.store import SnapshotStore

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_THRESHOLD_PLACEHOLDER = "per-histogram default"

# update_view's outputs, in order; `_view_outputs` fills the ones a branch does not set with no_update.
_VIEW_OUTPUTS = (
    ("histogram-graph", "figure"),
    ("snapshot-caption", "children"),
    ("graph-key", "data"),
    ("check-results", "children"),
    ("slice-description", "children"),
    ("options-error", "children"),
    ("applied-slice", "data"),
    ("opt-threshold", "placeholder"),
    ("log-x", "value"),
    ("log-y", "value"),
    ("log-z", "value"),
)


def create_app(
    settings: Settings, store: SnapshotStore | None = None, service: ProcessingService | None = None
) -> dash.Dash:
    """A Dash app reading `store` (default: the store in `settings.data_dir`) through a
    ProcessingService (default: one caching in `settings.cache_dir`)."""
    if service is None:
        store = store if store is not None else SnapshotStore(settings.data_dir)
        service = ProcessingService(
            store, settings.cache_dir, settings.subsystems, alarms_config=settings.alarms_config
        )
    app = dash.Dash(
        __name__,
        title="OVERWATCH-NG",
        assets_folder=str(ASSETS_DIR),
        external_stylesheets=[],
        serve_locally=True,
        # The tab title must not flicker "Updating..." on every refresh of a live page.
        update_title=None,
    )
    app.layout = build_layout(settings.status_refresh_ms)
    _register_callbacks(app, settings, service)
    return app


def _register_callbacks(app: dash.Dash, settings: Settings, service: ProcessingService) -> None:
    @app.callback(
        Output("run-select", "options"),
        Output("run-select", "value"),
        Output("subsystem-select", "options"),
        Output("subsystem-select", "value"),
        Output("run-state", "children"),
        Output("run-lengths", "data"),
        Input("refresh", "n_intervals"),
        Input("run-select", "value"),
        State("run-select", "options"),
        State("subsystem-select", "value"),
        State("subsystem-select", "options"),
        State("run-lengths", "data"),
    )
    def sync_selectors(_n, current_run, old_run_options, current_sub, old_sub_options, old_lengths):
        # One read of the run list per refresh feeds the selectors, the "ongoing?" line and the
        # slider's length (through the run-lengths store).
        now = time.time()
        infos = service.runs()
        summaries = summarize_runs(infos)
        new_run_options = run_options(summaries)
        previous_newest = old_run_options[0]["value"] if old_run_options else None
        run = choose_run([s.run for s in summaries], previous_newest, current_run)
        summary = next((s for s in summaries if s.run == run), None)
        available = summary.subsystems if summary else ()
        new_sub_options = subsystem_options(available, settings.subsystems)
        subsystem = choose_subsystem([o["value"] for o in new_sub_options], current_sub)
        lengths = {
            "run": run,
            "subsystems": {
                i.subsystem: [i.length_minutes, i.ongoing, i.merger_mode.value] for i in infos if i.run == run
            },
        }
        return (
            no_update if options_equal(new_run_options, old_run_options) else new_run_options,
            no_update if run == current_run else run,
            no_update if options_equal(new_sub_options, old_sub_options) else new_sub_options,
            no_update if subsystem == current_sub else subsystem,
            run_state_line(
                run, summary.last_snapshot_utc if summary else None, bool(summary and summary.ongoing), now
            ),
            no_update if lengths == old_lengths else lengths,
        )

    @app.callback(
        Output("slice-range", "max"),
        Output("slice-range", "marks"),
        Output("slice-range", "value"),
        Output("slice-min", "value"),
        Output("slice-max", "value"),
        Output("slider-memory", "data"),
        Input("run-lengths", "data"),
        Input("subsystem-select", "value"),
        Input("run-select", "value"),
        Input("slice-reset", "n_clicks"),
        Input("slice-range", "value"),
        Input("slice-min", "value"),
        Input("slice-max", "value"),
        State("slice-range", "max"),
        State("applied-slice", "data"),
        State("slider-memory", "data"),
    )
    def sync_slice_controls(lengths, subsystem, run, reset, range_value, low, high, old_max, applied, memory):
        controls = slices.sync_slice_controls(
            run=run,
            subsystem=subsystem,
            run_length_minutes=_run_length(lengths, run, subsystem),
            range_value=range_value,
            low=low,
            high=high,
            old_max=old_max,
            reset_clicks=reset,
            slice_applied=AppliedSlice.from_data(applied).for_view(run, subsystem) is not None,
            memory=memory,
        )
        if controls.memory == memory and controls.max_minutes == old_max:
            raise PreventUpdate
        return (
            _changed(controls.max_minutes, old_max),
            slider_marks(controls.max_minutes)
            if controls.max_minutes is not None and controls.max_minutes != old_max
            else no_update,
            _changed(controls.range_value, range_value),
            _changed(controls.low, low),
            _changed(controls.high, high),
            controls.memory,
        )

    @app.callback(
        Output("merger-mode", "value"),
        Output("merger-mode-memory", "data"),
        Input("run-lengths", "data"),
        Input("run-select", "value"),
        Input("subsystem-select", "value"),
        State("merger-mode", "value"),
        State("merger-mode-memory", "data"),
    )
    def sync_merger_mode(lengths, run, subsystem, current, memory):
        chosen = slices.sync_merger_mode(run, subsystem, _recorded_mode(lengths, run, subsystem), memory)
        if chosen is None:
            raise PreventUpdate
        return _changed(chosen["mode"], current), chosen

    @app.callback(
        Output("group-select", "options"),
        Output("group-select", "value"),
        Output("histogram-select", "options"),
        Output("histogram-select", "value"),
        Input("run-select", "value"),
        Input("subsystem-select", "value"),
        Input("group-select", "value"),
        Input("refresh", "n_intervals"),
        State("group-select", "options"),
        State("histogram-select", "value"),
        State("histogram-select", "options"),
        State("histogram-memory", "data"),
    )
    def sync_navigation(run, subsystem, group, _n, old_groups, current, old_entries, memory):
        groups, stacks = [], []
        if run is not None and subsystem is not None:
            try:
                # The full run's groups: what the run has, whatever slice or options are shown.
                view = service.view(run, subsystem)
                groups, stacks = view.groups, view.stacks
            except (LookupError, OptionsError) as error:
                logger.info("no groups for run %s %s: %s", run, subsystem, error)
        new_groups = group_options(groups)
        chosen_group = choose_group(
            [o["value"] for o in new_groups], group, remembered_choice(memory, subsystem)
        )
        group_spec, names = next(((g, names) for g, names in groups if g.title == chosen_group), (None, []))
        grid_title = group_spec.title if group_spec is not None and group_spec.grid else None
        entries = histogram_entries(names, stacks, plugin_for(subsystem or "").pretty_name, grid_title)
        chosen = choose_histogram(
            [e["value"] for e in entries], current, remembered_choice(memory, subsystem, chosen_group)
        )
        return (
            no_update if options_equal(new_groups, old_groups) else new_groups,
            no_update if chosen_group == group else chosen_group,
            no_update if options_equal(entries, old_entries) else entries,
            no_update if chosen == current else chosen,
        )

    @app.callback(
        Output("histogram-memory", "data"),
        Input("group-select", "value"),
        Input("histogram-select", "value"),
        State("subsystem-select", "value"),
        State("histogram-memory", "data"),
        prevent_initial_call=True,
    )
    def remember_histogram(group, name, subsystem, memory):
        if group is None or subsystem is None:
            raise PreventUpdate
        updated = remember_choice(memory, subsystem, group, name)
        if updated == memory:
            raise PreventUpdate
        return updated

    @app.callback(
        *(Output(component, prop) for component, prop in _VIEW_OUTPUTS),
        Input("run-select", "value"),
        Input("subsystem-select", "value"),
        Input("histogram-select", "value"),
        Input("log-x", "value"),
        Input("log-y", "value"),
        Input("log-z", "value"),
        Input("refresh", "n_intervals"),
        Input("slice-apply", "n_clicks"),
        Input("slice-reset", "n_clicks"),
        Input("merger-mode", "value"),
        Input("opt-scale", "value"),
        Input("opt-threshold", "value"),
        State("slice-min", "value"),
        State("slice-max", "value"),
        State("applied-slice", "data"),
        State("graph-key", "data"),
        State("merger-mode-memory", "data"),
    )
    def update_view(run, subsystem, name, log_x, log_y, log_z, _n, apply_clicks, reset_clicks, mode, scale,
                    threshold, slice_min, slice_max, applied_data, shown_key, mode_memory):  # fmt: skip
        request = _ViewRequest(
            run=run,
            subsystem=subsystem,
            name=name,
            logs=(log_x, log_y, log_z),
            # Until the radio is set for this run and subsystem, it still shows the previous one's.
            mode=mode if slices.merger_mode_is_set(mode_memory, run, subsystem) else None,
            scale=scale,
            threshold=threshold,
            slice_inputs=(slice_min, slice_max),
            clicks=(int(apply_clicks or 0), int(reset_clicks or 0)),
            applied_data=applied_data,
            shown_key=shown_key,
        )
        return _render_view(service, request)

    @app.callback(Output("status-panel", "children"), Input("refresh", "n_intervals"))
    def update_status(_n):
        return status_panel(read_all_status(settings.data_dir), settings, time.time())


@dataclass(frozen=True)
class _ViewRequest:
    """What update_view was called with, named; the rules live in `_render_view`."""

    run: int | None
    subsystem: str | None
    name: str | None
    logs: tuple[Any, Any, Any]
    mode: str | None  # None: as the run was recorded
    scale: bool
    threshold: Any
    slice_inputs: tuple[Any, Any]
    clicks: tuple[int, int]  # Apply, Full run
    applied_data: dict | None
    shown_key: dict | None


def _render_view(service: ProcessingService, request: _ViewRequest) -> tuple:
    """Everything update_view shows, from the state of the controls alone.

    Dash drops a pending callback response when a newer request of the same callback (the periodic
    refresh) supersedes it, and the newer one only knows that the refresh fired. So nothing here asks
    what fired the callback: clicks are recognised by their counts, and "nothing changed" by comparing
    with what the page shows (an idle refresh must not disturb hover or zoom).
    """
    run, subsystem, name = request.run, request.subsystem, request.name
    previous = AppliedSlice.from_data(request.applied_data)
    apply_clicks, reset_clicks = request.clicks
    applying = apply_clicks > previous.apply_seen
    state = replace(previous, apply_seen=apply_clicks, reset_seen=reset_clicks)
    if run is None:
        return _message(NO_RUNS_MESSAGE, request, state)
    if subsystem is None or name is None:
        return _message(f"Run {run}: no histograms stored yet", request, state)

    # 1. The window: a slice belongs to one run and subsystem; Full run and Apply change it.
    if previous.for_view(run, subsystem) is None:
        state = replace(state, run=run, subsystem=subsystem, window=None, error="")
    if reset_clicks > previous.reset_seen:
        state, applying = replace(state, window=None, error=""), False
    shown = request.shown_key or {}
    inputs = _inputs(request, request.mode)
    window_data = state.to_data()["window"]
    if (
        state.window is not None
        and not applying
        and state == previous
        and shown.get("inputs") == inputs
        and shown.get("window") == window_data
        and shown.get("logs") == [bool(v) for v in request.logs]
    ):
        raise PreventUpdate  # a slice is a fixed window: live updates do not touch it

    # 2. The options: bad input is named on the page and the last good plot stays.
    window = state.window
    try:
        options = options_from_inputs(request.scale, request.threshold)
        mode = None if request.mode is None else merger_mode(request.mode)
        if applying:
            window = window_from_inputs(
                *request.slice_inputs, service.run_info(run, subsystem).length_minutes
            )
        view = service.view(run, subsystem, window, options, mode)
    except OptionsError as error:
        message = error_text(error)
        if applying and error.field in ("min_minutes", "max_minutes"):
            # The slice was not applied: say why until the next Apply or reset.
            state, consequence = replace(state, error=message), "Slice not applied"
        else:
            consequence = "Not applied"
        return _settle(request, replace(state, shown_error=message), _error_alert(message, consequence))
    except LookupError as error:
        return _message(f"Run {run}: {error}", request, state)
    state = replace(state, window=window, error="" if applying else state.error)

    # 3. The histogram (stack, or grid) and the log axes: the experts' defaults for a new histogram.
    stack = next((s for s in view.stacks if s.name == name), None)
    grid_title = grid_group_of(name)
    try:
        if grid_title is not None:
            in_group = next((names for group, names in view.groups if group.title == grid_title), [])
            ordered = plugin_for(subsystem).order_grid(in_group)
            members = [view.histogram(member) for member in ordered]
            if not members:
                raise KeyError(grid_title)
        elif stack is not None:
            members = [view.histogram(member) for member in stack.members if member in view.names]
            if not members:
                raise KeyError(name)
        else:
            members = [view.histogram(name)]
    except KeyError:
        where = "this time slice" if window else f"the newest {subsystem} snapshot"
        return _message(f"{grid_title or name} is not in {where}", request, state)
    new_histogram = (shown.get("run"), shown.get("subsystem"), shown.get("name")) != (run, subsystem, name)
    hints = members[0].hints
    logs = [hints.log_x, hints.log_y, hints.log_z] if new_histogram else [bool(v) for v in request.logs]
    log_x, log_y, log_z = logs

    # 4. Nothing new: leave the graph alone, only settle the messages.
    uirevision = f"{subsystem}/{name}/{log_x}/{log_y}"
    content = f"{view.plan.mode.value}|{','.join(view.plan.used_snapshot_ids)}|{options.cache_key()}|{log_z}"
    key = {
        "run": run,
        "subsystem": subsystem,
        "name": name,
        "uirevision": uirevision,
        "content": content,
        # The mode used (the recorded one while the radio is not yet set for this run): the radio
        # catching up with it later is nothing new.
        "inputs": _inputs(request, view.plan.mode.value),
        "window": state.to_data()["window"],
        "logs": logs,
    }
    state = replace(state, shown_error=state.error)
    error = _error_alert(state.error, "Slice not applied") if state.error else ""
    if key == request.shown_key:
        return _settle(request, state, error)

    context = _slice_context(view) if window else ""
    if grid_title is not None:
        figure = grid_figure(grid_title, members, log_y=log_y, log_z=log_z, context=context)
    elif stack is not None:
        figure = stack_figure(stack, members, log_x=log_x, log_y=log_y, log_z=log_z, context=context)
    else:
        figure = processed_figure(members[0], log_x=log_x, log_y=log_y, log_z=log_z, context=context)
    figure.update_layout(uirevision=uirevision)
    checks = [check for member in members for check in member.checks]
    same_axes = shown.get("uirevision") == uirevision
    return _view_outputs(
        figure=_content_patch(figure) if same_axes else figure,
        caption=_caption(view, window, options),
        key=key,
        checks=check_results_panel(checks),
        description=_slice_banner(view, window),
        options_error=error,
        applied=state.to_data(),
        placeholder=threshold_placeholder(checks) or DEFAULT_THRESHOLD_PLACEHOLDER,
        logs=tuple(logs) if new_histogram else None,
    )


def _inputs(request: _ViewRequest, mode: str | None) -> list:
    """The controls a shown view was made from, as remembered in graph-key."""
    return [request.run, request.subsystem, request.name, mode, bool(request.scale), request.threshold]


def _settle(request: _ViewRequest, state: AppliedSlice, error: Any) -> tuple:
    """Only the messages and the remembered state; nothing at all when those are as shown."""
    data = state.to_data()
    if data == request.applied_data:
        raise PreventUpdate
    return _view_outputs(options_error=error, applied=data)


def _view_outputs(
    figure: Any = no_update,
    caption: Any = no_update,
    key: Any = no_update,
    checks: Any = no_update,
    description: Any = no_update,
    options_error: Any = no_update,
    applied: Any = no_update,
    placeholder: Any = no_update,
    logs: tuple[bool, bool, bool] | None = None,
) -> tuple:
    log_values = logs if logs is not None else (no_update, no_update, no_update)
    return (figure, caption, key, checks, description, options_error, applied, placeholder, *log_values)


def _message(text: str, request: _ViewRequest, state: AppliedSlice) -> tuple:
    key = {"message": text}
    state = replace(state, shown_error="")
    if key == request.shown_key and state.to_data() == request.applied_data:
        raise PreventUpdate
    return _view_outputs(
        figure=message_figure(text),
        caption="",
        key=key,
        checks="",
        description="",
        options_error="",
        applied=state.to_data(),
    )


def _error_alert(message: str, consequence: str) -> html.Div:
    return html.Div(
        [html.Strong(f"{consequence}. "), html.Span(message, className="error-text")],
        className="alert alert-danger py-2 px-3 mb-0 mt-2",
    )


def _content_patch(figure: go.Figure) -> Patch:
    """Only what new data or options change: traces, titles, notes and overlays, never the axes' ranges.

    Dash 4's dcc.Graph copies a user's zoom into its `figure` prop and replots, which makes
    plotly.js forget it was a UI change, so `uirevision` alone no longer keeps zoom across a full
    figure replacement. Patching the contents leaves the zoomed axes in the prop untouched.
    """
    full = figure.to_plotly_json()
    layout = full["layout"]
    patch = Patch()
    patch["data"] = full["data"]
    patch["layout"]["title"] = layout["title"]
    patch["layout"]["annotations"] = layout.get("annotations", [])
    patch["layout"]["shapes"] = layout.get("shapes", [])
    patch["layout"]["legend"] = layout.get("legend", {})
    # Axis titles change with the options ("entries / events" vs "entries"); their ranges stay.
    for axis in ("xaxis", "yaxis"):
        if "title" in layout.get(axis, {}):
            patch["layout"][axis]["title"] = layout[axis]["title"]
    return patch


def _caption(view: ProcessedView, window: Window | None, options: ProcessingOptions) -> list:
    """Where the numbers come from (snapshot or minutes, events) and how they were processed."""
    returned = view.plan.returned
    events = "—" if view.n_events is None else f"{view.n_events:,.0f}"
    if returned is None:
        where = "no snapshot"
    elif window is None:
        snapshot_time = view.run.start_utc + timedelta(minutes=returned.max_minutes)
        minute = f"minute {returned.max_minutes:.1f} of the run"
        count = f"{view.run.n_snapshots} snapshots in run"
        where = f"snapshot {format_utc(snapshot_time.timestamp())} · {minute} · {count}"
    else:
        where = f"minutes {returned.min_minutes:.1f}–{returned.max_minutes:.1f} of the run"
    threshold = "default" if options.hot_channel_threshold is None else f"{options.hot_channel_threshold:g}"
    processing = f"scaled by events: {'on' if options.scale_by_events else 'off'} · threshold: {threshold}"
    parts = [where, f"{events} events", processing]
    if view.plan.mode.value != "cumulative":
        parts.append(f"{view.plan.mode.value} mode")
    if view.run.uses_hlt_files:
        parts.append(f"from {view.run.source_subsystem} files")
    caption: list = [html.Span(" · ".join(parts))]
    if view.warnings:
        caption.append(html.Div(" · ".join(view.warnings), className="view-warnings"))
    return caption


def _slice_banner(view: ProcessedView, window: Window | None) -> html.Div:
    if window is None:
        return html.Div(
            describe_full_run(view.run.length_minutes, view.run.ongoing), className="slice-banner slice-full"
        )
    return html.Div(
        [
            html.Span("Time slice", className="slice-label"),
            html.Span(view.description, className="slice-text"),
            html.Span("fixed window · live updates paused", className="slice-note"),
        ],
        className="slice-banner slice-active",
    )


def _slice_context(view: ProcessedView) -> str:
    returned = view.plan.returned
    if returned is None:
        return "time slice: no data"
    return f"time slice {returned.min_minutes:.1f}–{returned.max_minutes:.1f} min"


def _run_entry(lengths: dict | None, run: int | None, subsystem: str | None) -> list | None:
    """[length minutes, ongoing, recorded merger mode] of the run and subsystem shown, None while the
    run-lengths store describes another run (or none)."""
    if not lengths or lengths.get("run") != run or subsystem is None:
        return None
    return (lengths.get("subsystems") or {}).get(subsystem)


def _run_length(lengths: dict | None, run: int | None, subsystem: str | None) -> float | None:
    entry = _run_entry(lengths, run, subsystem)
    return None if entry is None else float(entry[0])


def _recorded_mode(lengths: dict | None, run: int | None, subsystem: str | None) -> str | None:
    """The merger mode the run's snapshots of `subsystem` were taken in, None while not known."""
    entry = _run_entry(lengths, run, subsystem)
    return None if entry is None else entry[2]


def _changed(new: Any, old: Any) -> Any:
    """`new`, or no_update when it is None or what the browser already has (no needless round trip)."""
    if new is None or new == old:
        return no_update
    return new


def main() -> None:
    """Serve the page on settings.dash_host:dash_port (`python -m dashboard.app`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    create_app(settings).run(host=settings.dash_host, port=settings.dash_port, debug=False)


if __name__ == "__main__":
    main()
