"""Small shared pieces of status display: the colour of each receiver state, times (UTC and CERN
local), ages and run lengths as people read them, and the "run N: ongoing" line.

The states themselves come from the one liveness rule (`pipeline.liveness`); nothing here decides one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dash_bootstrap_components as dbc
from dash import html

from pipeline.liveness import ReceiverState
from pipeline.processing.runs import CERN_TIME_ZONE as CERN_TZ
from pipeline.system_status import ReceiverReport

# Bootstrap colour of each state: green flowing, blue between runs, yellow when the merger, the store
# or a receiver that stopped responding lets data stop, red when the receiver is gone (no heartbeat
# for the dead delay), grey when nothing is known.
STATE_COLORS = {
    ReceiverState.FLOWING: "success",
    ReceiverState.BETWEEN_RUNS: "info",
    ReceiverState.STARTING: "secondary",
    ReceiverState.MERGER_SILENT: "warning",
    ReceiverState.NOT_STORING: "warning",
    ReceiverState.RECEIVER_NOT_RESPONDING: "warning",
    ReceiverState.RECEIVER_DEAD: "danger",
    ReceiverState.NO_STATUS: "secondary",
    ReceiverState.IDLE: "secondary",
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


def receiver_line(report: ReceiverReport | None) -> list:
    """The state of the receiver behind a run on screen, e.g. "EMC receiver: merger silent · no reply
    from tcp://... for 66 s": a run stays "ongoing" while its merger is silent, and only this says why
    no new data arrive. Empty for a run its receiver has left (then the run line says it ended)."""
    if report is None:
        return []
    return [
        html.Strong(f"{report.subsystem} receiver: "),
        dbc.Badge(report.state.value, color=STATE_COLORS[report.state], className="me-2 receiver-badge"),
        html.Span(report.liveness.reason),
    ]
