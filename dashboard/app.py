"""The Dash app: one live page showing the newest snapshot of a histogram and the receivers' health.

`create_app(settings, store)` builds a fresh app (callbacks bound to it, not to the global `dash`
registry, so two apps in one process never collide). Callbacks only read the store and hand the
result to the pure functions in `figures`, `layout` and `status_panel`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, Patch, State, no_update
from dash.exceptions import PreventUpdate

from dashboard.figures import histogram_figure, message_figure
from dashboard.layout import (
    NO_RUNS_MESSAGE,
    build_layout,
    choose_histogram,
    choose_run,
    choose_subsystem,
    histogram_options,
    options_equal,
    run_options,
    subsystem_options,
    summarize_runs,
)
from dashboard.status_panel import format_utc, run_state_line, status_panel
from pipeline.settings import Settings
from pipeline.status import read_all_status
from pipeline.store import SnapshotStore

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


def create_app(settings: Settings, store: SnapshotStore | None = None) -> dash.Dash:
    """A Dash app reading `store` (default: the store in `settings.data_dir`)."""
    store = store if store is not None else SnapshotStore(settings.data_dir)
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
    _register_callbacks(app, settings, store)
    return app


def snapshot_caption(snapshot_time_utc: float | None, n_snapshots: int) -> str:
    return f"snapshot {format_utc(snapshot_time_utc)} · {n_snapshots} snapshots in run"


def _register_callbacks(app: dash.Dash, settings: Settings, store: SnapshotStore) -> None:
    @app.callback(
        Output("run-select", "options"),
        Output("run-select", "value"),
        Output("subsystem-select", "options"),
        Output("subsystem-select", "value"),
        Output("run-state", "children"),
        Input("refresh", "n_intervals"),
        Input("run-select", "value"),
        State("run-select", "options"),
        State("subsystem-select", "value"),
        State("subsystem-select", "options"),
    )
    def sync_selectors(_n, current_run, old_run_options, current_sub, old_sub_options):
        # One read of the run table per refresh feeds both selectors and the "ongoing?" line.
        now = time.time()
        summaries = summarize_runs(store.runs())
        new_run_options = run_options(summaries, now)
        previous_newest = old_run_options[0]["value"] if old_run_options else None
        run = choose_run([s.run for s in summaries], previous_newest, current_run)
        summary = next((s for s in summaries if s.run == run), None)
        available = summary.subsystems if summary else ()
        new_sub_options = subsystem_options(available, settings.subsystems)
        subsystem = choose_subsystem([o["value"] for o in new_sub_options], current_sub)
        return (
            no_update if options_equal(new_run_options, old_run_options) else new_run_options,
            no_update if run == current_run else run,
            no_update if options_equal(new_sub_options, old_sub_options) else new_sub_options,
            no_update if subsystem == current_sub else subsystem,
            run_state_line(run, summary.last_snapshot_utc if summary else None, now),
        )

    @app.callback(
        Output("histogram-select", "options"),
        Output("histogram-select", "value"),
        Input("run-select", "value"),
        Input("subsystem-select", "value"),
        Input("refresh", "n_intervals"),
        State("histogram-select", "value"),
        State("histogram-select", "options"),
        State("histogram-memory", "data"),
    )
    def sync_histograms(run, subsystem, _n, current, old_options, memory):
        names: list[str] = []
        if run is not None and subsystem is not None:
            snapshot_id = store.latest_snapshot_id(run, subsystem)
            names = store.histogram_names(snapshot_id) if snapshot_id else []
        options = histogram_options(names)
        chosen = choose_histogram(names, current, (memory or {}).get(subsystem))
        return (
            no_update if options_equal(options, old_options) else options,
            no_update if chosen == current else chosen,
        )

    @app.callback(
        Output("histogram-memory", "data"),
        Input("histogram-select", "value"),
        State("subsystem-select", "value"),
        State("histogram-memory", "data"),
        prevent_initial_call=True,
    )
    def remember_histogram(name, subsystem, memory):
        if name is None or subsystem is None or (memory or {}).get(subsystem) == name:
            raise PreventUpdate
        return {**(memory or {}), subsystem: name}

    @app.callback(
        Output("histogram-graph", "figure"),
        Output("snapshot-caption", "children"),
        Output("graph-key", "data"),
        Input("run-select", "value"),
        Input("subsystem-select", "value"),
        Input("histogram-select", "value"),
        Input("log-z", "value"),
        Input("log-y", "value"),
        Input("refresh", "n_intervals"),
        State("graph-key", "data"),
    )
    def update_graph(run, subsystem, name, log_z, log_y, _n, shown_key):
        if run is None:
            return _message(NO_RUNS_MESSAGE, shown_key)
        if subsystem is None or name is None:
            return _message(f"Run {run}: no histograms stored yet", shown_key)
        snapshot_id = store.latest_snapshot_id(run, subsystem)
        if snapshot_id is None:
            return _message(f"Run {run}: no {subsystem} snapshot stored", shown_key)
        # Same revision across refreshes keeps zoom/pan; a new histogram or y scale resets them.
        uirevision = f"{subsystem}/{name}/{bool(log_y)}"
        key = [uirevision, bool(log_z), snapshot_id]
        # Redraw only when something changed: an idle refresh must not disturb hover or zoom.
        if key == shown_key:
            raise PreventUpdate
        try:
            histogram = store.read_histogram(snapshot_id, name)
        except KeyError:
            # The newest snapshot may lack a histogram the user had chosen; the list follows.
            return _message(f"{name} is not in the newest {subsystem} snapshot", shown_key)
        except (OSError, ValueError) as error:
            # An unreadable file must not break a live page; say so and retry on the next refresh.
            logger.warning("cannot read %s from %s: %s", name, snapshot_id, error)
            return no_update, f"cannot read {name} from {snapshot_id}: {error}", no_update
        figure = histogram_figure(histogram, log_z=bool(log_z), log_y=bool(log_y))
        figure.update_layout(uirevision=uirevision)
        caption = _caption(store.snapshots(run, subsystem), snapshot_id)
        if shown_key and shown_key[0] == uirevision:
            return _content_patch(figure), caption, key
        return figure, caption, key

    @app.callback(Output("status-panel", "children"), Input("refresh", "n_intervals"))
    def update_status(_n):
        return status_panel(read_all_status(settings.data_dir), settings, time.time())


def _message(text: str, shown_key: list | None) -> tuple:
    key = ["message", text]
    if key == shown_key:
        raise PreventUpdate
    return message_figure(text), "", key


def _content_patch(figure: go.Figure) -> Patch:
    """Only what a new snapshot changes: traces, title and notes, never the axes.

    Dash 4's dcc.Graph copies a user's zoom into its `figure` prop and replots, which makes
    plotly.js forget it was a UI change, so `uirevision` alone no longer keeps zoom across a full
    figure replacement. Patching the contents leaves the zoomed axes in the prop untouched.
    """
    full = figure.to_plotly_json()
    patch = Patch()
    patch["data"] = full["data"]
    patch["layout"]["title"] = full["layout"]["title"]
    patch["layout"]["annotations"] = full["layout"].get("annotations", [])
    return patch


def _caption(snapshots: pd.DataFrame, snapshot_id: str) -> str:
    match = snapshots.loc[snapshots["snapshot_id"] == snapshot_id, "snapshot_time_utc"]
    snapshot_time = match.iloc[0].timestamp() if len(match) else None
    return snapshot_caption(snapshot_time, len(snapshots))


def main() -> None:
    """Serve the page on settings.dash_host:dash_port (`python -m dashboard.app`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    create_app(settings).run(host=settings.dash_host, port=settings.dash_port, debug=False)


if __name__ == "__main__":
    main()
