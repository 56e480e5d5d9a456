"""`/control-room`: the big screen. Dark, large type, nothing to click.

A tile per subsystem says at a glance whether its data are good: red / yellow / green from the
subsystem's aggregated quality by the QC service (else the worst plug-in check of the histograms the
screen shows for it), its open alarms (count and newest message; muted ones only counted, quietly), and
two alerts that are impossible to miss (a striped, boldly bordered tile with a large line): "NO NEW DATA"
when its receiver is not flowing (dead, not responding, merger silent, not storing, never reported:
the last verdict stays, marked with its age), and "QC VERDICT NOT CURRENT" when a newer snapshot has
waited for its verdict longer than a few QC cycles (`pipeline.qc.freshness`). Between runs a tile is
calm grey. A banner under the header says when no source sends data and when the QC service stopped
beating (`pipeline.liveness.qc_liveness`). The ongoing run and how long it has been running sit on top,
and a large plot rotates through the configured groups (`settings.control_room_groups`, "SYS:Group
title"; by default the first group of each subsystem) every `settings.control_room_rotate_s` seconds,
or every `?rotate=N` seconds.

It must run for days: the plot is static (no hover state to build up), each update replaces the figure
whole, and nothing accumulates in the page or in the callbacks.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from dashboard.access import Role, callback_role
from dashboard.context import PageContext
from dashboard.figures import grid_figure, message_figure, template_json
from dashboard.ids import ControlRoom, Shell
from dashboard.status_panel import format_age, format_minutes
from dashboard.url_state import query_dict
from pipeline.detectors import plugin_for
from pipeline.detectors.base import CheckResult, DetectorPlugin, Group
from pipeline.detectors.names import stored_titles
from pipeline.liveness import QCLiveness, QCState, ReceiverState
from pipeline.processing.runs import RunSummary
from pipeline.processing.service import ProcessingService
from pipeline.qc.alarm_book import MUTED, OPEN_STATES
from pipeline.qc.freshness import VerdictAge, verdict_age, verdict_grace_s
from pipeline.qc.quality_reads import SUBSYSTEM_LEVEL
from pipeline.system_status import ReceiverReport

logger = logging.getLogger(__name__)

PATHS = ("/control-room",)
# The big screen: the read-only kiosk login may open it.
ROLE = Role.VIEWER
MIN_ROTATE_S, MAX_ROTATE_S = 1.0, 3600.0
MEMBERS_SHOWN = 20  # histograms of one group on the big plot (a grid of supermodules fits)
CHECKED_PER_SUBSYSTEM = 60  # histograms whose checks colour one tile
QUALITY_RANK = {"Bad": 3, "Medium": 2, "Good": 1, "Null": 0}
TILE_REFRESH_MS_MIN = 2000
DARK = "#0b1220"


# Receivers whose data stopped while data are expected: the tile shouts "NO NEW DATA".
NO_DATA_STATES = frozenset(
    {
        ReceiverState.NO_STATUS,
        ReceiverState.RECEIVER_DEAD,
        ReceiverState.RECEIVER_NOT_RESPONDING,
        ReceiverState.MERGER_SILENT,
        ReceiverState.NOT_STORING,
    }
)
NO_DATA, QC_STALE = "no-data", "qc-stale"  # a tile's alert


@dataclass(frozen=True)
class QCVerdict:
    """The QC service's aggregated quality of a subsystem at its newest checked snapshot."""

    quality: str
    message: str
    age: VerdictAge


@dataclass(frozen=True)
class TileAlarms:
    open: int  # active or acknowledged, not muted
    muted: int
    newest: str  # message of the newest open one


@dataclass(frozen=True)
class Tile:
    subsystem: str
    # The last verdict: "good" (green), "warning" (yellow), "bad" (red), "none" (no verdict yet), or
    # "idle" (grey: between runs or starting, no data expected).
    colour: str
    state_line: str
    quality_line: str
    alert: str = ""  # NO_DATA, QC_STALE or "" (see the module docstring)
    alert_line: str = ""
    alarm_line: str = ""
    alarms_loud: bool = False  # open alarms (the line shouts) rather than only muted ones


@dataclass(frozen=True)
class RotationEntry:
    subsystem: str
    group: str


def rotate_seconds(query: dict, default_s: float) -> tuple[float, str]:
    """Seconds per group from `?rotate=N` (else the setting), and a note when the value was refused."""
    raw = query.get("rotate")
    if raw in (None, ""):
        return default_s, ""
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or not MIN_ROTATE_S <= seconds <= MAX_ROTATE_S:
        return default_s, (
            f"rotate={raw} is not a number of seconds between {MIN_ROTATE_S:g} and {MAX_ROTATE_S:g}:"
            f" rotating every {default_s:g} s"
        )
    return seconds, ""


def tile_for(
    report: ReceiverReport,
    checks: Sequence[CheckResult],
    qc: QCVerdict | None = None,
    alarms: TileAlarms | None = None,
) -> Tile:
    """The tile rule. The colour is the last verdict: the subsystem's aggregated quality from the QC
    service (`qc`) when it has one, else the worst check of the histograms shown (Bad red, Medium
    yellow, else green). Data that stopped (NO_DATA_STATES) keep that colour under the "NO NEW DATA"
    alert, the verdict marked with its age; a stale QC verdict gets the "QC VERDICT NOT CURRENT" alert;
    between runs (or starting) a tile is calm grey. Open alarms are counted, muted ones only noted."""
    live = report.liveness
    alarm_line, loud = _alarm_line(alarms)
    if report.state not in NO_DATA_STATES and report.state is not ReceiverState.FLOWING:
        age = "" if live.snapshot_age_s is None else f" · data {format_age(live.snapshot_age_s)} old"
        return Tile(report.subsystem, "idle", f"{report.state.value}{age}", "", "", "", alarm_line, loud)
    colour, verdict, verdict_age_s = _verdict(checks, qc, live.snapshot_age_s)
    if report.state in NO_DATA_STATES:
        since = "" if live.snapshot_age_s is None else f" · {format_age(live.snapshot_age_s)}"
        as_of = "" if verdict_age_s is None else f"as of {format_age(verdict_age_s)} ago · "
        return Tile(
            report.subsystem,
            colour,
            live.reason,
            f"{as_of}{verdict}" if verdict else "no verdict yet",
            NO_DATA,
            f"NO NEW DATA · {report.state.value}{since}",
            alarm_line,
            loud,
        )
    state_line = f"flowing · data {format_age(live.snapshot_age_s)} old"
    if qc is not None and qc.age.stale:
        unchecked = f" · {qc.age.unchecked} unchecked" if qc.age.unchecked else ""
        return Tile(
            report.subsystem,
            colour,
            state_line,
            f"as of {format_age(qc.age.age_s)} ago · {verdict}",
            QC_STALE,
            f"QC VERDICT NOT CURRENT · {format_age(qc.age.age_s)} old{unchecked}",
            alarm_line,
            loud,
        )
    return Tile(report.subsystem, colour, state_line, verdict, "", "", alarm_line, loud)


def _verdict(
    checks: Sequence[CheckResult], qc: QCVerdict | None, snapshot_age_s: float | None
) -> tuple[str, str, float | None]:
    """(colour, text, age of the data it judged) of the last verdict."""
    if qc is not None and qc.quality != "Null":
        colour = {"Bad": "bad", "Medium": "warning"}.get(qc.quality, "good")
        # The aggregation message lists the worst checks, "Bad: <histogram> <check>; ...": show the first.
        worst = [part.strip() for part in qc.message.split(";") if part.strip()]
        more = f" (+{len(worst) - 1} more)" if len(worst) > 1 else ""
        return colour, f"QC · {worst[0]}{more}" if worst else f"QC · {qc.quality}", qc.age.age_s
    worst_check = max(checks, key=lambda check: QUALITY_RANK.get(check.quality, 0), default=None)
    if worst_check is None:
        if snapshot_age_s is None:
            return "none", "", None
        return "good", "no checks on the histograms shown", None
    colour = {"Bad": "bad", "Medium": "warning"}.get(worst_check.quality, "good")
    if colour == "good":
        return colour, f"{len(checks)} checks passed", snapshot_age_s
    flagged = sum(1 for check in checks if check.quality == worst_check.quality)
    more = f" (+{flagged - 1} more)" if flagged > 1 else ""
    return colour, f"{worst_check.quality}: {worst_check.message}{more}", snapshot_age_s


def _alarm_line(alarms: TileAlarms | None) -> tuple[str, bool]:
    """(text, loud): open alarms shout with the newest one's message; muted ones are only counted."""
    if alarms is None or not (alarms.open or alarms.muted):
        return "", False
    muted = f" (+{alarms.muted} muted)" if alarms.muted else ""
    if alarms.open:
        word = "ALARM" if alarms.open == 1 else "ALARMS"
        return f"⚠ {alarms.open} {word} · {alarms.newest}{muted}", True
    return f"{alarms.muted} muted alarm{'s' if alarms.muted > 1 else ''}", False


def tile_alarms(frame: pd.DataFrame, subsystem: str, run: int | None) -> TileAlarms:
    """A subsystem's alarms of `run` (any run when None) as a tile counts them, from
    `ProcessingService.alarms()` (newest first, `state` as people see it: active, acknowledged, muted,
    cleared)."""
    mine = frame[frame["subsystem"] == subsystem]
    if run is not None:
        mine = mine[mine["run"] == run]
    open_rows = mine[mine["state"].isin(OPEN_STATES)]
    newest = str(open_rows["message"].iloc[0]) if len(open_rows) else ""
    return TileAlarms(len(open_rows), int((mine["state"] == MUTED).sum()), newest)


def rotation(
    service: ProcessingService, run: RunSummary | None, configured: Sequence[str], subsystems: Sequence[str]
) -> tuple[list[RotationEntry], list[str]]:
    """The groups the plot rotates through for `run` (those with histograms in it), and notes about
    configured entries that cannot be shown."""
    if run is None:
        return [], []
    notes: list[str] = []
    wanted: list[RotationEntry] = []
    for entry in configured:
        subsystem, _, group = entry.partition(":")
        if not group:
            notes.append(f"{entry!r} is not SYS:Group title")
            continue
        wanted.append(RotationEntry(subsystem.strip(), group.strip()))
    entries = []
    for subsystem in [s for s in subsystems if s in run.subsystems]:
        groups = _groups(service, run.run, subsystem)
        if not configured:
            entries.extend(RotationEntry(subsystem, title) for title in list(groups)[:1])
            continue
        entries.extend(entry for entry in wanted if entry.subsystem == subsystem and entry.group in groups)
    known = set(entries)
    for entry in wanted:
        if entry not in known:
            notes.append(f"{entry.subsystem}:{entry.group} has no histograms in run {run.run}")
    return entries, notes


def _groups(service: ProcessingService, run: int, subsystem: str) -> dict[str, tuple[Group, list[str]]]:
    try:
        view = service.view(run, subsystem)
    except LookupError:
        return {}
    return {group.title: (group, names) for group, names in view.groups if names}


def group_figure(service: ProcessingService, run: int, entry: RotationEntry) -> go.Figure:
    group, names = _groups(service, run, entry.subsystem).get(entry.group, (None, []))
    view = service.view(run, entry.subsystem)
    members = [view.histogram(name) for name in names[:MEMBERS_SHOWN]]
    more = f" · first {MEMBERS_SHOWN} of {len(names)}" if len(names) > MEMBERS_SHOWN else ""
    figure = grid_figure(
        f"{entry.subsystem} · {entry.group}",
        members,
        context=f"run {run}{more}",
        # Supermodules share a scale (the odd one stands out); unrelated maps each get their own.
        shared_scale=bool(group and group.grid),
    )
    return dark(figure)


def dark(figure: go.Figure) -> go.Figure:
    """The big screen's look: dark background, large type."""
    figure.update_layout(
        template=template_json("plotly_dark"),
        paper_bgcolor=DARK,
        plot_bgcolor=DARK,
        font={"size": 18},
        autosize=True,
        # Room for the title, its subtitle and the first row's panel titles.
        margin={"l": 60, "r": 30, "t": 130, "b": 50},
    )
    figure.update_annotations(font={"size": 16})
    return figure


def tiles(
    service: ProcessingService,
    reports: Sequence[ReceiverReport],
    run: RunSummary | None,
    configured: Sequence[str],
    now: float,
    grace_s: float,
) -> list[Tile]:
    """The tiles of the screen at `now`: each receiver's state, last verdict and alarms; a QC verdict
    is stale when a newer snapshot waited more than `grace_s` for its own."""
    shown, _ = rotation(service, run, configured, [r.subsystem for r in reports])
    try:
        alarms = service.alarms()
    except Exception:  # an unreadable alarm book must not blank the screen
        logger.exception("control room: alarms")
        alarms = None
    found = []
    for report in reports:
        checks: list[CheckResult] = []
        # The QC service's aggregated quality when it has checked the run; else the shown histograms'
        # checks (also of data that stopped: the last verdict stays on the tile).
        qc = _aggregated(service, run, report.subsystem, now, grace_s)
        if (
            qc is None
            and run is not None
            and (report.state is ReceiverState.FLOWING or report.state in NO_DATA_STATES)
        ):
            groups = _groups(service, run.run, report.subsystem)
            names = [
                name
                for entry in shown
                if entry.subsystem == report.subsystem
                for name in groups.get(entry.group, (None, []))[1]
            ]
            view = service.view(run.run, report.subsystem) if names else None
            for name in names[:CHECKED_PER_SUBSYSTEM]:
                checks.extend(view.histogram(name).checks)
        own = None if alarms is None else tile_alarms(alarms, report.subsystem, run and run.run)
        found.append(tile_for(report, checks, qc, own))
    return found


def tile_component(tile: Tile) -> html.Div:
    alert = f" tile-alert tile-{tile.alert}" if tile.alert else ""
    return html.Div(
        [
            html.Div(
                [
                    html.Div(tile.subsystem, className="tile-name"),
                    html.Div(tile.alert_line, className="tile-alert-line", hidden=not tile.alert_line),
                ],
                className="tile-head",
            ),
            html.Div(tile.state_line, className="tile-state"),
            html.Div(tile.quality_line, className="tile-quality"),
            html.Div(
                tile.alarm_line,
                className="tile-alarms" + (" tile-alarms-loud" if tile.alarms_loud else ""),
                hidden=not tile.alarm_line,
            ),
        ],
        id=ControlRoom.tile(tile.subsystem),
        className=f"cr-tile tile-{tile.colour}{alert}",
        **{"data-colour": tile.colour, "data-alert": tile.alert},
    )


def alert_banner(found: Sequence[Tile], reports: Sequence[ReceiverReport], qc: QCLiveness) -> list[str]:
    """What the banner under the header says, a line each (none hides it): no source sends data, the
    QC service stopped beating."""
    parts = []
    if found and all(tile.alert == NO_DATA for tile in found):
        ages = [r.liveness.snapshot_age_s for r in reports if r.liveness.snapshot_age_s is not None]
        states = " / ".join(dict.fromkeys(r.state.value for r in reports))
        newest = f" · newest data {format_age(min(ages))} old" if ages else ""
        parts.append(f"NO NEW DATA FROM ANY SOURCE · {states}{newest}")
    if not qc.state.healthy:
        beat = "" if qc.heartbeat_age_s is None else f" · no heartbeat for {format_age(qc.heartbeat_age_s)}"
        word = "STOPPED" if qc.state is QCState.DEAD else "NOT RESPONDING"
        parts.append(f"QC SERVICE {word}{beat} · verdicts are not current")
    return parts


def _aggregated(
    service: ProcessingService, run: RunSummary | None, subsystem: str, now: float, grace_s: float
) -> QCVerdict | None:
    """The QC service's aggregated quality for the subsystem at the run's newest checked snapshot,
    its histograms and checks named as the pages name them, with its age and whether newer snapshots
    waited too long for theirs; None when it has not checked the run."""
    if run is None:
        return None
    rows = service.latest_quality(run.run, subsystem)
    rows = rows[rows["level"] == SUBSYSTEM_LEVEL]
    if rows.empty:
        return None
    try:
        view = service.view(run.run, subsystem)
        titles = stored_titles(service.store, view.plan.used_snapshot_ids)
    except LookupError:
        titles = {}
    message = readable_verdicts(str(rows["message"].iloc[0]), plugin_for(subsystem), titles)
    verdict_epoch = rows["snapshot_time_utc"].iloc[0].timestamp()
    age = verdict_age(verdict_epoch, service.snapshot_epochs(run.run, subsystem), now, grace_s)
    return QCVerdict(str(rows["quality"].iloc[0]), message, age)


# The QC service's aggregation message: "Bad: <histogram> <check>; Medium: ..." (`pipeline.qc.evaluate`).
_VERDICT = re.compile(r"^(Good|Medium|Bad|Null): (.+) (\S+)$")


def readable_verdicts(message: str, plugin: DetectorPlugin, titles: Mapping[str, str]) -> str:
    """The aggregation message with each histogram's display name and each check's title:
    "Bad: EMCTRQA_histFastORL0 hot_fastors" -> "Bad: FastOR L0 (hits with ADC > 0) · Hot FastORs".
    Parts that do not read that way are kept as they are."""
    parts = []
    for part in (part.strip() for part in message.split(";")):
        match = _VERDICT.match(part)
        if match is None:
            parts.append(part)
            continue
        quality, histogram, check = match.groups()
        spec = plugin.check_spec(check)
        label = plugin.labels([histogram], titles)[histogram]
        parts.append(f"{quality}: {label} · {spec.title if spec else check}")
    return "; ".join(part for part in parts if part)


def run_line(run: RunSummary | None, now: float) -> list:
    if run is None:
        return [html.Span("No run yet", className="cr-run-number")]
    if not run.ongoing:
        return [html.Span("No run ongoing", className="cr-run-number"), html.Span(f"last: run {run.run}")]
    running_for = (now - run.start_utc.timestamp()) / 60.0
    return [
        html.Span(f"Run {run.run}", className="cr-run-number"),
        html.Span(f"running {format_minutes(running_for)}", className="cr-run-length"),
        html.Span(f"{run.hlt_mode} · {run.beam_type or '—'}", className="cr-run-mode"),
    ]


def layout(context: PageContext, params: dict, query: dict) -> html.Div:
    """The screen as it is now, tiles and first group drawn: the page arrives complete, its plot drawn
    once in its final box (no "Loading…" figure first, no tiles arriving later to shrink the plot)."""
    seconds, _ = rotate_seconds(query, context.settings.control_room_rotate_s)
    try:
        tiles_now, run_now, clock_now, alert_now, alert_hidden = screen_state(context, time.time())
        figure, position, note, note_hidden = rotated_view(context, None, query)
    except Exception:  # the callbacks show (and log) it at their first tick
        logger.exception("control room: first view")
        tiles_now, run_now, clock_now, alert_now, alert_hidden = [], [], "", [], True
        figure, position, note, note_hidden = dark(message_figure("Loading…")), None, "", True
    return html.Div(
        [
            html.Div(
                [
                    html.Div("OVERWATCH · control room", className="cr-title"),
                    html.Div(run_now, id=ControlRoom.RUN, className="cr-run"),
                    html.Div(clock_now, id=ControlRoom.CLOCK, className="cr-clock"),
                ],
                className="cr-header",
            ),
            html.Div(
                alert_now, id=ControlRoom.ALERT, className="cr-alert", hidden=alert_hidden, role="alert"
            ),
            html.Div(tiles_now, id=ControlRoom.TILES, className="cr-tiles"),
            html.Div(note, id=ControlRoom.NOTE, className="cr-note", hidden=note_hidden),
            html.Div(
                dcc.Graph(
                    id=ControlRoom.GRAPH,
                    figure=figure,
                    config={"staticPlot": True, "displayModeBar": False, "responsive": True},
                    className="cr-graph",
                    # The plot takes what the header and the tiles leave of the screen (.cr-plot).
                    style={"height": "100%"},
                ),
                className="cr-plot",
            ),
            dcc.Interval(id=ControlRoom.ROTATE, interval=int(seconds * 1000)),
            dcc.Store(id=ControlRoom.POSITION, data=position),
            dcc.Interval(
                id=ControlRoom.TILE_REFRESH,
                interval=max(context.settings.status_refresh_ms, TILE_REFRESH_MS_MIN),
            ),
        ],
        id=ControlRoom.PAGE,
        className="control-room",
    )


def screen_state(context: PageContext, now: float) -> tuple[list, list, str, list, bool]:
    """(tiles, run line, clock, banner lines, banner hidden) of the screen at `now`."""
    service, settings = context.service, context.settings
    run = service.current_run()
    reports = [r for r in service.receivers() if r.subsystem in settings.subsystems]
    clock = time.strftime("%H:%M:%S UTC", time.gmtime(now))
    grace_s = verdict_grace_s(settings.qc_poll_s)
    found = tiles(service, reports, run, settings.control_room_groups, now, grace_s)
    banner = [html.Div(line) for line in alert_banner(found, reports, service.qc_liveness())]
    return [tile_component(tile) for tile in found], run_line(run, now), clock, banner, not banner


def rotated_view(context: PageContext, shown_position: int | None, query: dict):
    """(figure, position, note, note hidden) of the group after the one at `shown_position` (the
    first when None)."""
    service, settings = context.service, context.settings
    run = service.current_run()
    entries, notes = rotation(service, run, settings.control_room_groups, settings.subsystems)
    _, rotate_note = rotate_seconds(query, settings.control_room_rotate_s)
    position = None
    if not entries:
        message = "No data to show yet" if run is None else f"Run {run.run}: no group to show"
        figure = dark(message_figure(message))
    else:
        position = 0 if shown_position is None else (int(shown_position) + 1) % len(entries)
        entry = entries[position]
        figure = group_figure(service, run.run, entry)
        # Said in the figure, so a test (or a person with devtools) can tell what is shown.
        figure.update_layout(meta={"group": f"{entry.subsystem}:{entry.group}", "position": position})
    text = " · ".join(note for note in (rotate_note, *notes) if note)
    return figure, position, text, not text


def register_callbacks(app: dash.Dash, context: PageContext) -> None:
    # No initial calls: the layout comes with the screen as it is (see `layout`).
    @callback_role(app, Role.VIEWER)
    @app.callback(
        Output(ControlRoom.TILES, "children"),
        Output(ControlRoom.RUN, "children"),
        Output(ControlRoom.CLOCK, "children"),
        Output(ControlRoom.ALERT, "children"),
        Output(ControlRoom.ALERT, "hidden"),
        Input(ControlRoom.TILE_REFRESH, "n_intervals"),
        prevent_initial_call=True,
    )
    def refresh_tiles(_n):
        return screen_state(context, time.time())

    @callback_role(app, Role.VIEWER)
    @app.callback(
        Output(ControlRoom.GRAPH, "figure"),
        Output(ControlRoom.POSITION, "data"),
        Output(ControlRoom.NOTE, "children"),
        Output(ControlRoom.NOTE, "hidden"),
        Input(ControlRoom.ROTATE, "n_intervals"),
        State(ControlRoom.POSITION, "data"),
        State(Shell.LOCATION, "search"),
        prevent_initial_call=True,
    )
    def rotate(_n, shown_position, search):
        # The next group after the one on screen (not n_intervals modulo): an update the browser dropped
        # because the next tick came first (a slow server) is retried, never skipped.
        return rotated_view(context, shown_position, query_dict(search))
