"""The live receiver status panel: each receiver's state, how fast it is storing, what went wrong.

Pure functions of the receivers' reports (`pipeline.system_status`, whose states come from the one
liveness rule in `pipeline.liveness`) and the current time, unit-tested without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
from dash import html

from pipeline.liveness import ReceiverState
from pipeline.settings import Settings
from pipeline.status import ReceiverStatus
from pipeline.system_status import ReceiverReport, reports_for

CERN_TZ = ZoneInfo("Europe/Zurich")

# Bootstrap colour of each state: green flowing, blue between runs, yellow when the merger or the
# store lets data stop, red when the receiver is gone, grey when nothing is known.
STATE_COLORS = {
    ReceiverState.FLOWING: "success",
    ReceiverState.BETWEEN_RUNS: "info",
    ReceiverState.STARTING: "secondary",
    ReceiverState.MERGER_SILENT: "warning",
    ReceiverState.NOT_STORING: "warning",
    ReceiverState.RECEIVER_DEAD: "danger",
    ReceiverState.NO_STATUS: "secondary",
}


def format_utc(epoch_s: float | None, with_date: bool = True) -> str:
    if epoch_s is None:
        return "—"
    pattern = "%Y-%m-%d %H:%M:%S UTC" if with_date else "%H:%M:%S UTC"
    return datetime.fromtimestamp(epoch_s, UTC).strftime(pattern)


def format_cern_local(epoch_s: float | None) -> str:
    """Local time at CERN (Geneva: CET/CEST), labelled, e.g. "2026-12-06 09:15:02 CET"."""
    if epoch_s is None:
        return "—"
    return datetime.fromtimestamp(epoch_s, CERN_TZ).strftime("%Y-%m-%d %H:%M:%S %Z")


def format_minutes(minutes: float) -> str:
    """A run length: "7.5 min", "2 h 05 min"."""
    if minutes < 60:
        return f"{minutes:.1f} min"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest:02d} min"


def format_age(seconds: float | None) -> str:
    """Short human age: 4 s, 12 min, 3.5 h, 2.0 d."""
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def status_panel(
    statuses: Sequence[ReceiverStatus], settings: Settings, now: float | None = None
) -> dbc.Table:
    """One table row per receiver (configured subsystems without a status file included)."""
    now = time.time() if now is None else now
    reports = reports_for(statuses, settings.subsystems, now, settings.receiver_dead_after_s)
    rows = [_receiver_row(report) if report.status else _missing_row(report.subsystem) for report in reports]
    header = html.Thead(
        html.Tr(
            [
                html.Th(label)
                for label in (
                    "Receiver",
                    "State",
                    "Heartbeat",
                    "Last snapshot",
                    "Snapshots",
                    "Rate (5 min)",
                    "Timeouts",
                    "Rejected",
                    "Last run",
                    "Last error",
                )
            ]
        )
    )
    return dbc.Table(
        [header, html.Tbody(rows)],
        className="status-table mb-1",
        size="sm",
        hover=True,
        responsive=True,
    )


def run_state_line(run: int | None, last_snapshot_utc: float | None, ongoing: bool, now: float) -> html.Div:
    """'Run N: ongoing / not ongoing, last snapshot ...' for the run selected in the page; `ongoing` is
    the processing's verdict (recent snapshot, or a live receiver still on the run), as the run list's."""
    if run is None:
        return html.Div("No run selected.", className="text-muted")
    age = None if last_snapshot_utc is None else now - last_snapshot_utc
    if ongoing:
        badge = dbc.Badge("ongoing", color="success", className="me-2")
        text = f"last snapshot {format_age(age)} ago"
    else:
        badge = dbc.Badge("not ongoing", color="secondary", className="me-2")
        text = f"last snapshot {format_utc(last_snapshot_utc)} ({format_age(age)} ago)"
    return html.Div([html.Strong(f"Run {run}: "), badge, html.Span(text)])


def _receiver_row(report: ReceiverReport) -> html.Tr:
    status, live = report.status, report.liveness
    sub = status.subsystem
    rate = "—" if live.snapshots_per_min is None else f"{live.snapshots_per_min:.1f} snapshots/min"
    return html.Tr(
        [
            html.Td([html.Strong(sub), html.Div(status.endpoint, className="small text-muted")]),
            html.Td(
                dbc.Badge(report.state.value, color=STATE_COLORS[report.state], id=f"state-{sub}"),
                title=live.reason,
            ),
            html.Td(f"{format_age(live.heartbeat_age_s)} ago", id=f"heartbeat-{sub}"),
            html.Td(
                [
                    html.Div(format_utc(status.last_snapshot_utc, with_date=False)),
                    html.Div(
                        "" if live.snapshot_age_s is None else f"{format_age(live.snapshot_age_s)} ago",
                        className="small text-muted",
                    ),
                ],
                title=format_utc(status.last_snapshot_utc),
            ),
            html.Td(
                [
                    html.Div(f"{status.snapshots_stored:,}", id=f"snapshots-{sub}"),
                    html.Div(f"{status.histograms_stored:,} hists", className="small text-muted"),
                ]
            ),
            html.Td(rate),
            html.Td(_counter(status.timeouts)),
            html.Td(_rejections(status), id=f"rejected-{sub}"),
            html.Td("—" if status.last_run is None else str(status.last_run)),
            html.Td(
                status.last_error or "—",
                className=("last-error text-danger" if report.last_error_current else "last-error text-muted")
                if status.last_error
                else "text-muted",
                title=status.last_error or "",
            ),
        ]
    )


def _missing_row(subsystem: str) -> html.Tr:
    return html.Tr(
        [
            html.Td(html.Strong(subsystem)),
            html.Td(dbc.Badge("no status", color="secondary", id=f"state-{subsystem}")),
            html.Td("receiver has not reported yet", colSpan=8, className="text-muted"),
        ]
    )


def _rejections(status: ReceiverStatus) -> list:
    """Rejected objects, with how many of them are of classes we do not store (TProfile, TGraph...):
    those are expected from some mergers, while the others mean corrupt or undecodable data."""
    cell: list = [_counter(status.rejected_objects)]
    if status.unsupported_objects:
        cell.append(html.Div(f"{status.unsupported_objects:,} unsupported", className="small text-muted"))
    return cell


def _counter(count: int) -> html.Span:
    # Non-zero error counters stand out; zero stays quiet.
    return html.Span(f"{count:,}", className="fw-bold text-warning-emphasis" if count else "")
