"""`/system`: the run coordinator's page (the original's status page, made truthful).

Per receiver: its state (flowing / merger silent / receiver not responding / receiver dead / between
runs, ..., by the one liveness rule), heartbeat, merger-reply and last-snapshot ages, snapshots per
minute over the last 5 minutes, its counters and its last error (marked "cleared" once replies flow
again). Then the ongoing run and how long ago data last arrived, the data folder's size and free space,
and other sites' status. It refreshes by itself; everything comes from
`ProcessingService.system_status()`, the same model `GET /api/status` serves, so the page and the API
always agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.access import Role, callback_role
from dashboard.context import PageContext
from dashboard.ids import System
from dashboard.status_panel import STATE_COLORS, format_age, format_cern_local, format_minutes, format_utc
from pipeline.liveness import QCLiveness, QCState
from pipeline.system_status import ReceiverReport, SiteState, SiteStatus, SystemStatus

PATHS = ("/system",)
# The run coordinator's page: shifters and up (the kiosk sees GET /status and /api/status instead).
ROLE = Role.SHIFTER
SITE_COLORS = {
    SiteState.UP: "success",
    SiteState.DOWN: "danger",
    SiteState.UNREACHABLE: "danger",
    SiteState.NOT_CHECKED: "secondary",
}
QC_COLORS = {
    QCState.RUNNING: "success",
    QCState.NOT_RESPONDING: "warning",
    QCState.DEAD: "danger",
    QCState.NO_STATUS: "secondary",
}
COLUMNS = (
    "Receiver",
    "State",
    "Heartbeat",
    "Merger reply",
    "Last snapshot",
    "Snapshots/min (5 min)",
    "Requests",
    "Replies",
    "Timeouts",
    "Socket re-creations",
    "Skipped replies",
    "Rejected",
    "Unsupported",
    "Last run",
    "Last error",
)


def human_bytes(count: int | None) -> str:
    if count is None:
        return "—"
    size = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _ago(seconds: float | None) -> str:
    return "—" if seconds is None else f"{format_age(seconds)} ago"


def _since(now: float, epoch: float | None) -> float | None:
    return None if epoch is None else now - epoch


def _count(value: int, warn: bool = True) -> html.Span:
    # Non-zero trouble counters stand out; zero stays quiet.
    return html.Span(f"{value:,}", className="fw-bold text-warning-emphasis" if warn and value else "")


def receiver_row(report: ReceiverReport, now: float) -> html.Tr:
    sub, live, status = report.subsystem, report.liveness, report.status

    def cell(field: str, content, **kwargs) -> html.Td:
        return html.Td(content, id=System.cell(field, sub), **kwargs)

    state = cell(
        "state",
        [
            dbc.Badge(report.state.value, color=STATE_COLORS[report.state], className="state-badge"),
            html.Div(live.reason, className="small state-reason"),
        ],
    )
    if status is None:
        return html.Tr(
            [html.Td(html.Strong(sub)), state, html.Td("", colSpan=len(COLUMNS) - 2)],
            className=_row_class(report),
        )
    error: list = ["—"]
    if status.last_error:
        when = _ago(_since(now, status.last_error_utc))
        cleared = (
            "current"
            if report.last_error_current
            else f"cleared {_ago(_since(now, status.last_error_cleared_utc))}"
        )
        error = [
            html.Div(status.last_error, className="last-error-text"),
            html.Div(f"{when} · {cleared}", className="small text-muted"),
        ]
    rate = "—" if live.snapshots_per_min is None else f"{live.snapshots_per_min:.1f}"
    return html.Tr(
        [
            html.Td([html.Strong(sub), html.Div(status.endpoint, className="small text-muted")]),
            state,
            cell("heartbeat", _ago(live.heartbeat_age_s)),
            cell("reply", _ago(live.reply_age_s)),
            cell("snapshot", _ago(live.snapshot_age_s), title=format_utc(status.last_snapshot_utc)),
            cell("rate", rate),
            cell("requests", f"{status.requests:,}"),
            cell("replies", f"{status.replies:,}"),
            cell("timeouts", _count(status.timeouts)),
            cell("recreations", _count(status.socket_recreations)),
            cell("skipped", f"{status.skipped_replies:,}"),
            cell("rejected", _count(status.rejected_objects)),
            cell("unsupported", f"{status.unsupported_objects:,}"),
            cell("run", "—" if status.last_run is None else str(status.last_run)),
            cell(
                "error",
                error,
                className="last-error text-danger" if report.last_error_current else "last-error",
            ),
        ],
        className=_row_class(report),
    )


def _row_class(report: ReceiverReport) -> str:
    """The row's state, and its edge in the state's colour (STATE_COLORS: the badge's, the one place)."""
    return f"receiver-row state-{report.state.name.lower()} edge-{STATE_COLORS[report.state]}"


def receivers_table(reports: Sequence[ReceiverReport], now: float) -> dbc.Table:
    header = html.Thead(html.Tr([html.Th(label, scope="col") for label in COLUMNS]))
    return dbc.Table(
        [header, html.Tbody([receiver_row(report, now) for report in reports])],
        className="system-receivers",
        size="sm",
        bordered=False,
        responsive=True,
    )


def summary_line(status: SystemStatus) -> dbc.Alert:
    """The verdict of `GET /status`, in words."""
    if status.healthy:
        qc = " Quality control running." if status.qc and status.qc.state is QCState.RUNNING else ""
        return dbc.Alert(
            f"All receivers alive, their mergers answer.{qc}",
            color="success",
            id=System.SUMMARY,
            className="py-2",
        )
    return dbc.Alert(
        [
            html.Strong("Attention: "),
            html.Ul([html.Li(problem) for problem in status.problems], className="mb-0"),
        ],
        color="danger",
        id=System.SUMMARY,
        className="py-2",
    )


def run_card(status: SystemStatus) -> dbc.Card:
    run = status.ongoing_run
    if run is None:
        body = [html.H4("No run ongoing", className="card-title")]
    else:
        running_for = (status.now_utc - run.start_utc.timestamp()) / 60.0
        body = [
            html.H4(f"Run {run.run} ongoing", className="card-title"),
            html.Div(f"for {format_minutes(running_for)}", className="fs-5"),
            html.Div(f"started {format_cern_local(run.start_utc.timestamp())} (CERN)"),
            html.Div(f"started {format_utc(run.start_utc.timestamp())}", className="text-muted"),
            html.Div(f"HLT mode {run.hlt_mode} · beam {run.beam_type or '—'} · {', '.join(run.subsystems)}"),
        ]
    body.append(html.Div(f"Data last arrived {_ago(status.last_data_age_s)}", className="mt-2 fw-semibold"))
    return dbc.Card(dbc.CardBody(body), id=System.RUN, className="system-card")


def qc_card(qc: QCLiveness | None) -> dbc.Card:
    """The QC service: beating or not (the receivers' heartbeat rule), and how far behind it was."""
    if qc is None:
        return html.Div(id=System.QC)
    healthy = qc.state.healthy and qc.state is not QCState.NO_STATUS
    body = [
        html.H4("Quality control", className="card-title"),
        dbc.Badge(qc.state.value, color=QC_COLORS[qc.state], className="state-badge"),
        html.Div(qc.reason, className="state-reason"),
        html.Div(f"heartbeat {_ago(qc.heartbeat_age_s)}", className="small text-muted"),
    ]
    if not qc.state.healthy:
        body.append(
            html.Div(
                "The supervisor restarts a QC service that exits, not a hung one: stop it"
                f" (kill {qc.pid or '<pid>'}) and the supervisor starts a new one.",
                className="small",
            )
        )
    return dbc.Card(
        dbc.CardBody(body),
        id=System.QC,
        className="system-card" + ("" if healthy else " border-warning border-3"),
    )


def folder_card(status: SystemStatus) -> dbc.Card:
    folder = status.folder
    free = folder.free_bytes
    share = "" if free is None or not folder.total_bytes else f" ({100 * free / folder.total_bytes:.0f} %)"
    size = human_bytes(folder.data_bytes) if folder.data_bytes is not None else "being measured…"
    return dbc.Card(
        dbc.CardBody(
            [
                html.H4("Data folder", className="card-title"),
                html.Div(folder.path, className="small text-muted text-break"),
                html.Div(f"size {size}"),
                html.Div(f"free {human_bytes(free)} of {human_bytes(folder.total_bytes)}{share}"),
                html.Div(
                    f"measured {_ago(_since(status.now_utc, folder.measured_utc))}",
                    className="small text-muted",
                ),
            ]
        ),
        id=System.FOLDER,
        className="system-card",
    )


def sites_table(sites: Sequence[SiteStatus], now: float) -> html.Div:
    if not sites:
        return html.Div(
            "No other sites configured (OVERWATCH_STATUS_SITES).", id=System.SITES, className="text-muted"
        )
    rows = [
        html.Tr(
            [
                html.Td(html.A(site.url, href=site.url, target="_blank", rel="noopener")),
                html.Td(dbc.Badge(site.state, color=SITE_COLORS.get(site.state, "secondary"))),
                html.Td(site.detail, className="small text-break"),
                html.Td(_ago(_since(now, site.checked_utc))),
            ]
        )
        for site in sites
    ]
    header = html.Thead(
        html.Tr([html.Th(label, scope="col") for label in ("Site", "State", "Answer", "Checked")])
    )
    return html.Div(dbc.Table([header, html.Tbody(rows)], size="sm"), id=System.SITES)


def system_view(status: SystemStatus) -> list:
    """The whole page body for one `SystemStatus` (pure: unit-tested without a browser)."""
    return [
        summary_line(status),
        html.H3("Receivers", className="h5"),
        html.Div(receivers_table(status.receivers, status.now_utc), id=System.RECEIVERS),
        dbc.Row(
            [
                dbc.Col(run_card(status), md=4),
                dbc.Col(qc_card(status.qc), md=4),
                dbc.Col(folder_card(status), md=4),
            ],
            className="g-3 my-1",
        ),
        html.H3("Other sites", className="h5 mt-3"),
        sites_table(status.sites, status.now_utc),
        html.Div(f"updated {format_utc(status.now_utc)}", className="small text-muted mt-2"),
    ]


def layout(context: PageContext, params: dict, query: dict) -> html.Div:
    return html.Div(
        [
            html.H2("System"),
            html.Div(system_view(context.service.system_status()), id=System.CONTENT),
            dcc.Interval(id=System.REFRESH, interval=context.settings.status_refresh_ms),
        ],
        className="system-page",
    )


def register_callbacks(app: dash.Dash, context: PageContext) -> None:
    service = context.service

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(System.CONTENT, "children"),
        Input(System.REFRESH, "n_intervals"),
        prevent_initial_call=True,
    )
    def refresh(_n):
        return system_view(service.system_status())
