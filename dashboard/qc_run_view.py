"""What the run page shows of quality control, as pure functions: the quality strip above the plot
(subsystem and group quality, the run's open alarms, those of the shown group first), the reference
overlay with its ratio, and the hot-channel history table. Unit-tested without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots

from dashboard.checks import QUALITY_COLORS
from dashboard.figures import message_figure
from dashboard.qc_links import run_page_url, trend_url
from dashboard.url_state import ViewQuery
from pipeline.compare import normalised_to_events, ratio
from pipeline.detectors import plugin_for
from pipeline.detectors.base import ProcessedHistogram, group_histograms
from pipeline.histogram import Histogram
from pipeline.qc.quality_reads import GROUP_LEVEL, QUALITY_ORDER, SUBSYSTEM_LEVEL

OPEN_ALARM_STATES = ("active", "acknowledged", "muted")
CURRENT_COLOR, REFERENCE_COLOR = "#1f4e9c", "#e67e22"
HISTORY_ROWS = 200  # rows drawn; more are counted, not drawn


def quality_badge(label: str, quality: str | None, element_id: str | None = None) -> dbc.Badge:
    """'EMC · Bad' in the quality's traffic-light colour; 'not checked yet' when QC has no verdict."""
    shown = quality or "not checked yet"
    extra = {"id": element_id} if element_id else {}
    return dbc.Badge(
        f"{label} · {shown}",
        color=QUALITY_COLORS.get(quality or "", "secondary"),
        className=f"quality-badge quality-{(quality or 'none').lower()}",
        **extra,
    )


def group_of(subsystem: str, histogram: str) -> str | None:
    """The plug-in group a histogram is shown in (its first matching group)."""
    groups = group_histograms(plugin_for(subsystem), [histogram])
    return groups[0][0].title if groups else None


def quality_strip(
    quality: pd.DataFrame,
    alarms: pd.DataFrame,
    run: int,
    subsystem: str,
    group: str | None,
    labels: Mapping[str, str] | None = None,
) -> list:
    """Badges for the subsystem and the shown group, links to the other groups that are not Good, and
    the run's open alarms of this subsystem (those on the shown group's histograms first), each
    histogram named by its label (`labels`: display names by raw name, as the run page lists them)."""
    subsystem_rows = quality[quality["level"] == SUBSYSTEM_LEVEL]
    group_rows = quality[quality["level"] == GROUP_LEVEL]
    subsystem_quality = None if subsystem_rows.empty else str(subsystem_rows["quality"].iloc[0])
    by_group = dict(zip(group_rows["name"], group_rows["quality"], strict=True))
    pieces: list[Any] = [html.Span("Quality now:", className="qc-label fw-bold")]
    pieces.append(quality_badge(subsystem, subsystem_quality, "runqc-subsystem-quality"))
    if group is not None:
        pieces.append(quality_badge(group, by_group.get(group), "runqc-group-quality"))
    rank = {q: i for i, q in enumerate(QUALITY_ORDER)}
    others = sorted(
        ((name, q) for name, q in by_group.items() if name != group and q in ("Bad", "Medium")),
        key=lambda item: (rank[item[1]], item[0]),
    )
    if others:
        pieces.append(html.Span("also:", className="text-muted"))
        pieces += [
            dcc.Link(
                f"{name} ({q})",
                href=f"/run/{run}/{subsystem}" + ViewQuery(group=name).to_search(),
                className=f"qc-other-group text-{QUALITY_COLORS[q]}-emphasis",
            )
            for name, q in others
        ]
    pieces += _alarm_lines(alarms, run, subsystem, group, labels or {})
    return pieces


def _alarm_lines(
    alarms: pd.DataFrame, run: int, subsystem: str, group: str | None, labels: Mapping[str, str]
) -> list:
    if alarms.empty:
        return []
    mine = alarms[
        (alarms["run"] == run) & (alarms["subsystem"] == subsystem) & alarms["state"].isin(OPEN_ALARM_STATES)
    ]
    records = mine.to_dict("records")
    for record in records:
        record["in_group"] = group is not None and group_of(subsystem, record["histogram"]) == group
    records.sort(key=lambda r: (not r["in_group"], r["state"] != "active", r["alarm"], r["histogram"]))
    lines = []
    for record in records:
        color = "danger" if record["severity"] == "error" and record["state"] == "active" else "warning"
        if record["state"] != "active":
            color = "secondary"
        lines.append(
            html.Div(
                [
                    html.Strong(f"Alarm {record['alarm']} ({record['state']}) "),
                    dcc.Link(
                        labels.get(record["histogram"], record["histogram"]),
                        href=run_page_url(run, subsystem, record["histogram"]),
                    ),
                    html.Span(f": {record['message']} · "),
                    dcc.Link(
                        "trend",
                        href=trend_url(
                            subsystem, run, record["histogram"], record["quantity"], record["content"]
                        ),
                    ),
                    html.Span(" · "),
                    dcc.Link("alarms page", href="/alarms"),
                ],
                className=f"qc-alarm alert alert-{color}" + (" qc-alarm-here" if record["in_group"] else ""),
                role="status",
            )
        )
    return lines


# ---- reference overlay ----------------------------------------------------------------------------


def reference_as_shown(
    shown: ProcessedHistogram, n_events: float, reference: Histogram, reference_n_events: float
) -> tuple[Histogram, Histogram]:
    """(reference drawn like `shown`, shown / reference). The reference is normalised to the same number
    of events (`pipeline.compare.normalised_to_events`) and, when the page shows per-event values,
    divided by that number too, so both curves are in the plotted units. ValueError for a missing or
    zero event count."""
    normalised = normalised_to_events(reference, reference_n_events, n_events)
    if shown.scaled_by_events:
        normalised = normalised.scaled(1.0 / n_events)
    return normalised, ratio(shown.histogram, normalised)


def reference_figure(
    shown: Histogram,
    reference: Histogram,
    shown_over_reference: Histogram,
    *,
    reference_run: int,
    y_title: str,
    log_y: bool = False,
) -> go.Figure:
    """The histogram and the normalised reference on top, their ratio below, sharing x (1D only)."""
    if shown.dimension != 1:
        return message_figure("The reference overlay is drawn for 1D histograms")
    edges = np.asarray(shown.edges[0], dtype=float)
    centres = 0.5 * (edges[:-1] + edges[1:])
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.04)
    for histogram, name, color in (
        (shown, "this run", CURRENT_COLOR),
        (reference, f"reference run {reference_run} (normalised)", REFERENCE_COLOR),
    ):
        figure.add_trace(
            go.Scatter(
                x=centres,
                y=histogram.values(),
                error_y={
                    "type": "data",
                    "array": np.sqrt(np.maximum(histogram.variances(), 0)),
                    "thickness": 1,
                },
                mode="lines",
                line={"shape": "hvh", "color": color, "width": 1.6},
                name=name,
                hovertemplate="x %{x:.4g}<br>%{y:.6g}<extra>" + name + "</extra>",
            ),
            row=1,
            col=1,
        )
    values = shown_over_reference.values()
    figure.add_trace(
        go.Scatter(
            x=centres,
            y=np.where(np.isfinite(values), values, None),
            error_y={
                "type": "data",
                "array": np.sqrt(np.abs(np.nan_to_num(shown_over_reference.variances()))),
            },
            mode="markers",
            marker={"color": "#333", "size": 5},
            name="ratio",
            hovertemplate="x %{x:.4g}<br>ratio %{y:.4g}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    figure.add_hline(y=1.0, line_dash="dash", line_color="#888", row=2, col=1)
    figure.update_layout(
        template="plotly_white",
        margin={"l": 70, "r": 20, "t": 70, "b": 50},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1.0, "xanchor": "right"},
        title={
            "text": f"{shown.name} vs reference run {reference_run}",
            "font": {"size": 14},
            "x": 0.01,
            "y": 0.98,
            "yanchor": "top",
        },
        hovermode="closest",
    )
    figure.update_yaxes(title_text=y_title, type="log" if log_y else "linear", row=1, col=1)
    figure.update_yaxes(title_text="this / reference", row=2, col=1)
    figure.update_xaxes(title_text=shown.axis_titles[0] if shown.axis_titles else "", row=2, col=1)
    return figure


# ---- hot-channel history --------------------------------------------------------------------------


def history_table(history: pd.DataFrame) -> html.Div:
    """This run's flagged channels: check, channel, first and last minute flagged, snapshots, and
    "new" for channels no earlier run flagged (listed first)."""
    if history.empty:
        return html.Div("No channel flagged in this run.", className="text-muted")
    frame = history.sort_values(["new", "check", "channel_id"], ascending=[False, True, True])
    n_new = int(frame["new"].sum())
    rows = [
        html.Tr(
            [
                html.Td(_check_title(record["subsystem"], record["check"])),
                html.Td(str(int(record["channel_id"]))),
                html.Td(f"{record['first_minute']:.1f}"),
                html.Td(f"{record['last_minute']:.1f}"),
                html.Td(str(int(record["n_snapshots"]))),
                html.Td(dbc.Badge("new", color="danger") if record["new"] else "seen before"),
            ],
            className="channel-new" if record["new"] else "",
        )
        for record in frame.head(HISTORY_ROWS).to_dict("records")
    ]
    more = len(frame) - HISTORY_ROWS
    headers = ["Check", "Channel id", "First flagged (min)", "Last flagged (min)", "Snapshots", "Before?"]
    return html.Div(
        [
            html.Div(
                f"{len(frame)} flagged channel{'s' if len(frame) != 1 else ''} in this run, {n_new} new",
                className="history-summary fw-bold mb-1",
            ),
            dbc.Table(
                [html.Thead(html.Tr([html.Th(h, scope="col") for h in headers])), html.Tbody(rows)],
                size="sm",
                className="qc-history-table mb-0",
                responsive=True,
            ),
            *([html.Div(f"… and {more} more", className="text-muted")] if more > 0 else []),
        ]
    )


def _check_title(subsystem: str, check: str) -> str:
    """What the pages call a check ("Hot FastORs"), its name when the plug-in no longer declares it."""
    spec = plugin_for(subsystem).check_spec(check)
    return spec.title if spec is not None else check


def reference_line(reference: Any, subsystem: str, beam_type: str) -> str:
    """'Reference for EMC (pp): run 300000, set by alice at 2026-12-06 09:00 UTC' or that none is set."""
    beam = beam_type or "no beam type"
    if reference is None:
        return f"No reference run set for {subsystem} ({beam})."
    when = str(reference.set_at_utc)[:16].replace("T", " ")
    return f"Reference for {subsystem} ({beam}): run {reference.run}, set by {reference.set_by} at {when} UTC"
