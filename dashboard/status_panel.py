"""The live receiver status panel: is each receiver alive, how fast is it storing, what went wrong.

Pure functions of the receivers' status files (`pipeline.status`) and the current time, so the rules
(alive / stale / dead, ingest rates, "run ongoing?") are unit-tested without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
from dash import html

from pipeline.settings import Settings
from pipeline.status import PUSH, ReceiverStatus

# A run whose newest snapshot is younger than this is shown as ongoing ("● live").
# A receiver that missed this many request periods is "stale" long before it is "dead".
STALE_AFTER_PERIODS = 3

CERN_TZ = ZoneInfo("Europe/Zurich")
STATE_COLORS = {
    "alive": "success",
    "idle": "secondary",
    "stale": "warning",
    "dead": "danger",
    "no status": "secondary",
}


@dataclass(frozen=True)
class ReceiverHealth:
    """What the panel shows for one receiver, computed from its status and the clock."""

    subsystem: str
    state: str
    heartbeat_age_s: float | None
    snapshots_per_min: float | None
    histograms_per_s: float | None


def receiver_health(status: ReceiverStatus, settings: Settings, now: float) -> ReceiverHealth:
    """alive / stale (> 3 request periods without heartbeat) / dead (> receiver_dead_after_s).

    A push receiver's heartbeat is its last push: it is alive within receiver_dead_after_s of one and
    idle after that, since only its clients decide when data come.
    """
    age = status.heartbeat_age_s(now) if status.heartbeat_utc > 0 else None
    if status.kind == PUSH:
        state = "alive" if age is not None and age <= settings.receiver_dead_after_s else "idle"
    elif age is None or age > settings.receiver_dead_after_s:
        state = "dead"
    elif age > STALE_AFTER_PERIODS * settings.receiver_period_s:
        state = "stale"
    else:
        state = "alive"
    snapshots_per_min, histograms_per_s = ingest_rates(status, now)
    return ReceiverHealth(status.key, state, age, snapshots_per_min, histograms_per_s)


def ingest_rates(status: ReceiverStatus, now: float) -> tuple[float | None, float | None]:
    """(snapshots per minute, histograms per second) averaged over the receiver's lifetime."""
    lifetime_s = now - status.started_utc
    if lifetime_s <= 0:
        return None, None
    return status.snapshots_stored * 60.0 / lifetime_s, status.histograms_stored / lifetime_s


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
    # Keyed by `key`: a subsystem's push receiver gets its own row ("EMC-push") beside its ZMQ one.
    by_subsystem = {status.key: status for status in statuses}
    # Configured subsystems first, in settings order; unexpected extra receivers after them.
    order = list(settings.subsystems) + sorted(set(by_subsystem) - set(settings.subsystems))
    rows = [
        _receiver_row(by_subsystem[sub], settings, now) if sub in by_subsystem else _missing_row(sub)
        for sub in order
    ]
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
                    "Ingest rate",
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


def _receiver_row(status: ReceiverStatus, settings: Settings, now: float) -> html.Tr:
    health = receiver_health(status, settings, now)
    sub = status.key
    last_snapshot_age = None if status.last_snapshot_utc is None else now - status.last_snapshot_utc
    return html.Tr(
        [
            html.Td([html.Strong(sub), html.Div(status.endpoint, className="small text-muted")]),
            html.Td(dbc.Badge(health.state, color=STATE_COLORS[health.state], id=f"state-{sub}")),
            html.Td(f"{format_age(health.heartbeat_age_s)} ago", id=f"heartbeat-{sub}"),
            html.Td(
                [
                    html.Div(format_utc(status.last_snapshot_utc, with_date=False)),
                    html.Div(
                        "" if last_snapshot_age is None else f"{format_age(last_snapshot_age)} ago",
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
            html.Td(_rates(health)),
            html.Td(_counter(status.timeouts)),
            html.Td(_rejections(status), id=f"rejected-{sub}"),
            html.Td("—" if status.last_run is None else str(status.last_run)),
            html.Td(
                status.last_error or "—",
                className="last-error text-danger" if status.last_error else "text-muted",
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


def _rates(health: ReceiverHealth) -> str | list[html.Div]:
    if health.snapshots_per_min is None or health.histograms_per_s is None:
        return "—"
    return [
        html.Div(f"{health.snapshots_per_min:.1f} snapshots/min"),
        html.Div(f"{health.histograms_per_s:.1f} histograms/s", className="small text-muted"),
    ]


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
