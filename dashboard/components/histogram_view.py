"""The histogram view two pages share: which histograms a choice shows, its figure, the slice banner,
the caption and the graph's toolbar. Pure functions of a `ProcessedView` (no callbacks).

Plotly's toolbar keeps zoom, pan, reset and "download as PNG"; everything that talks to an outside
service (Chart Studio's "share/edit") is removed and the logo hidden: the control-room network is offline.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta

import plotly.graph_objects as go
from dash import Patch, dcc, html
from plotly.utils import PlotlyJSONEncoder

from dashboard.checks import MemberVerdict, check_results_panel, check_title, grid_checks_panel
from dashboard.figures import (
    grid_figure,
    group_log_flags,
    message_figure,
    processed_figure,
    stack_figure,
    styled,
)
from dashboard.layout import grid_group_of
from dashboard.slices import describe_full_run
from dashboard.status_panel import format_utc
from pipeline.detectors import plugin_for
from pipeline.detectors.base import ProcessedHistogram, Stack
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.query import subsystem_options
from pipeline.processing.service import ProcessedView, ProcessingService
from pipeline.processing.timeslice import Window

IMAGE_WIDTH, IMAGE_HEIGHT = 1600, 900
# What the navbar, run header, slice banner, caption, downloads and the check verdict leave of the
# screen: the verdict stays visible without scrolling at 1600x1000 and up.
GRAPH_HEIGHT = "calc(100vh - 430px)"
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
# Toolbar buttons that would talk to an outside service, or make no sense here.
REMOVED_BUTTONS = ["sendDataToCloud", "editInChartStudio", "lasso2d", "select2d"]


def graph_config(filename: str) -> dict:
    return {
        "displaylogo": False,
        "showSendToCloud": False,
        "showEditInChartStudio": False,
        "showLink": False,
        "plotlyServerURL": "",
        "modeBarButtonsToRemove": REMOVED_BUTTONS,
        "responsive": True,
        "toImageButtonOptions": {
            "format": "png",
            "filename": filename,
            "width": IMAGE_WIDTH,
            "height": IMAGE_HEIGHT,
        },
    }


def safe_file_name(*parts: object) -> str:
    """A file name (no extension) made of `parts`: letters, digits, `.`, `_` and `-` only, so a name
    with `/` or spaces is neither cut off nor turned into folders."""
    joined = "_".join(str(part) for part in parts if part not in (None, ""))
    cleaned = _UNSAFE_FILE_CHARACTERS.sub("-", joined).strip("-._")
    return cleaned[:150] or "overwatch"


def view_file_name(run: int, subsystem: str, name: str | None, window: Window | None) -> str:
    shown = grid_group_of(name) or name or "view"
    when = f"min{window.min_minutes:g}-{window.max_minutes:g}" if window is not None else "full-run"
    return safe_file_name(f"run{run}", subsystem, shown.rsplit("/", 1)[-1], when)


def graph(
    component_id: str,
    loading_id: str,
    filename: str = "overwatch",
    figure: dict | None = None,
    config: dict | None = None,
) -> dcc.Loading:
    """The plot (`figure`, else "Loading…" until a callback draws it), under a spinner shown only while
    its figure is being computed."""
    return dcc.Loading(
        dcc.Graph(
            id=component_id,
            figure=figure if figure is not None else styled(message_figure("Loading…")),
            config=config if config is not None else graph_config(filename),
            className="histogram-graph",
            # On the component itself: Plotly sizes the plot from this box, and a box without a height
            # let the plot spill over the caption and the check results below it.
            style={"height": GRAPH_HEIGHT, "minHeight": "380px"},
        ),
        id=loading_id,
        type="circle",
        delay_show=300,  # quick updates (live refreshes, cached views) show no spinner at all
        overlay_style={"visibility": "visible", "opacity": 0.6},
    )


@dataclass(frozen=True)
class Shown:
    """What one choice of the histogram list shows: a grid group, a stack, or one histogram."""

    grid_title: str | None
    stack: Stack | None
    members: list[ProcessedHistogram]


def shown_names(view: ProcessedView, subsystem: str, name: str) -> tuple[str | None, Stack | None, list[str]]:
    """(grid title, stack, histogram names) behind a histogram-list value, nothing processed yet."""
    grid_title = grid_group_of(name)
    if grid_title is not None:
        in_group = next((names for group, names in view.groups if group.title == grid_title), [])
        return grid_title, None, plugin_for(subsystem).order_grid(in_group)
    stack = next((s for s in view.stacks if s.name == name), None)
    if stack is not None:
        present = set(view.names)
        return None, stack, [member for member in stack.members if member in present]
    return None, None, [name]


def shown_histograms(view: ProcessedView, subsystem: str, name: str) -> Shown:
    """The processed histograms behind a histogram-list value; KeyError when the view lacks them."""
    grid_title, stack, names = shown_names(view, subsystem, name)
    members = [view.histogram(member) for member in names]
    if not members:
        raise KeyError(grid_title or name)
    return Shown(grid_title, stack, members)


def figure_for(shown: Shown, logs: tuple[bool, bool, bool], context: str) -> go.Figure:
    log_x, log_y, log_z = logs
    if shown.grid_title is not None:
        return grid_figure(shown.grid_title, shown.members, log_y=log_y, log_z=log_z, context=context)
    if shown.stack is not None:
        return stack_figure(
            shown.stack, shown.members, log_x=log_x, log_y=log_y, log_z=log_z, context=context
        )
    return processed_figure(shown.members[0], log_x=log_x, log_y=log_y, log_z=log_z, context=context)


def checks_panel(service: ProcessingService, view: ProcessedView, subsystem: str, shown: Shown) -> html.Div:
    """The checks under the plot. A grid lists its members' verdicts: the page's checks on what is
    shown, and the QC service's newest verdicts on those histograms (the ones its quality strip
    aggregates), so a Bad above the plot is never met by "no checks" under it."""
    if shown.grid_title is None:
        return check_results_panel([check for member in shown.members for check in member.checks])
    names = [member.histogram.name for member in shown.members]
    titles = {member.histogram.name: member.histogram.title for member in shown.members}
    labels = plugin_for(subsystem).labels(names, titles)
    verdicts = [
        MemberVerdict(labels[member.histogram.name], c.quality, check_title(c), c.message, "page")
        for member in shown.members
        for c in member.checks
    ]
    on_page = {(member.histogram.name, c.check) for member in shown.members for c in member.checks}
    stored = service.latest_checks(view.run.run, subsystem)
    stored = stored[stored["histogram"].isin(names)]
    for row in stored.itertuples(index=False):
        if (row.histogram, row.check) in on_page:
            continue  # the page's verdict is about what it shows (its options, its slice)
        title = row.title or row.check
        verdicts.append(MemberVerdict(labels[row.histogram], row.quality, title, row.message, "QC"))
    return grid_checks_panel(verdicts, len(names))


def default_logs(shown: Shown) -> tuple[bool, bool, bool]:
    """The log axes a view opens with: its members' hints, read as the figure builders read them
    (`figures.group_log_flags`: each axis from the first member it applies to)."""
    return group_log_flags(shown.members)


def trace_digests(figure: dict) -> list[str]:
    """A short digest of each trace of a figure (plain JSON, as `styled` gives it): what `content_patch`
    compares to send only the traces that changed."""
    return [
        hashlib.blake2b(
            json.dumps(trace, cls=PlotlyJSONEncoder, sort_keys=True).encode(), digest_size=8
        ).hexdigest()
        for trace in figure["data"]
    ]


def content_patch(figure: go.Figure | dict, shown_digests: list[str] | None = None) -> Patch:
    """Only what new data or options change: traces, titles, notes and overlays, never the axes' ranges.

    Dash 4's dcc.Graph copies a user's zoom into its `figure` prop and replots, which makes plotly.js
    forget it was a UI change, so `uirevision` alone no longer keeps zoom across a full figure
    replacement. Patching the contents leaves the zoomed axes in the prop untouched.

    With the digests of the traces on screen (`trace_digests`), only the traces that differ are sent:
    a threshold change then sends the threshold line and the ringed channels, not the 5,000 bins of
    the histogram under them again.
    """
    full = figure if isinstance(figure, dict) else figure.to_plotly_json()
    layout = full["layout"]
    patch = Patch()
    if shown_digests is None:
        patch["data"] = full["data"]
    else:
        _patch_changed_traces(patch, full["data"], shown_digests)
    patch["layout"]["title"] = layout["title"]
    patch["layout"]["annotations"] = layout.get("annotations", [])
    patch["layout"]["shapes"] = layout.get("shapes", [])
    patch["layout"]["legend"] = layout.get("legend", {})
    # Axis titles change with the options ("entries / events" vs "entries"); their ranges stay.
    for axis in ("xaxis", "yaxis"):
        if "title" in layout.get(axis, {}):
            patch["layout"][axis]["title"] = layout[axis]["title"]
    return patch


def _patch_changed_traces(patch: Patch, traces: list[dict], shown_digests: list[str]) -> None:
    new_digests = trace_digests({"data": traces})
    for index, (trace, digest) in enumerate(zip(traces, new_digests, strict=True)):
        if index >= len(shown_digests):
            patch["data"].append(trace)
        elif digest != shown_digests[index]:
            patch["data"][index] = trace
    for index in reversed(range(len(traces), len(shown_digests))):
        del patch["data"][index]


def scaling_note(view: ProcessedView, options: ProcessingOptions, shown: Shown | None = None) -> str:
    """What was done to the numbers on screen, not what was asked: "scaled per event (÷ 24,407)",
    "not scaled: no event count", "not scaled: scaling off", ... (`shown`: the histograms drawn)."""
    if not options.scale_by_events:
        return "not scaled: scaling off"
    if view.n_events is None or not view.n_events > 0:
        return "not scaled: no event count"
    per_event = f"scaled per event (÷ {view.n_events:,.0f})"
    if shown is None:
        return f"{per_event} where the detector scales"
    scaled = sum(1 for member in shown.members if member.scaled_by_events)
    if scaled == 0:
        return "not scaled: not a per-event histogram"
    if scaled < len(shown.members):
        return f"{per_event}: {scaled} of {len(shown.members)} histograms"
    return per_event


def caption(
    view: ProcessedView, window: Window | None, options: ProcessingOptions, shown: Shown | None = None
) -> list:
    """Where the numbers come from (snapshot or minutes, events) and how they were processed (the
    options that can act on the subsystem)."""
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
    # Only the options that can act on this subsystem: a TPC caption names neither scaling nor threshold.
    offered = subsystem_options(view.run.subsystem)
    parts = [where, f"{events} events"]
    if offered.scale:
        parts.append(scaling_note(view, options, shown))
    if offered.threshold:
        threshold = options.hot_channel_threshold
        parts.append(f"threshold: {'default' if threshold is None else f'{threshold:g}'}")
    if view.plan.mode.value != "cumulative":
        parts.append(f"{view.plan.mode.value} mode")
    if view.run.uses_hlt_files:
        parts.append(f"from {view.run.source_subsystem} files")
    return [html.Span(" · ".join(parts))]


def warnings_block(view: ProcessedView) -> html.Div | str:
    """The view's warnings (mixed merger modes, a mode the data were not recorded in, ...), prominent."""
    if not view.warnings:
        return ""
    return html.Div(
        [html.Strong("Note: "), " · ".join(view.warnings)],
        className="alert alert-warning py-1 px-2 mb-1 view-warnings",
        role="status",
    )


def slice_banner(view: ProcessedView, window: Window | None) -> html.Div:
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


def slice_context(view: ProcessedView) -> str:
    returned = view.plan.returned
    if returned is None:
        return "time slice: no data"
    return f"time slice {returned.min_minutes:.1f}–{returned.max_minutes:.1f} min"
