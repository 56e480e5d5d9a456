"""The alarms page's tables: alarms grouped by state (active, acknowledged, muted, recently cleared), each
row linking to its histogram and its trend, with acknowledge and mute controls on open alarms; and the
threshold form's choices and change log. Pure functions of the QC layer's frames (no callbacks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard.ids import Alarms
from dashboard.qc_links import AXIS_TIME, run_page_url, trend_url
from pipeline.qc.alarm_book import histogram_label

ACTIVE, ACKNOWLEDGED, MUTED, CLEARED = "active", "acknowledged", "muted", "cleared"
SECTIONS: tuple[tuple[str, str], ...] = (
    (ACTIVE, "Active"),
    (ACKNOWLEDGED, "Acknowledged"),
    (MUTED, "Muted"),
    (CLEARED, "Recent (cleared)"),
)
RECENT_CLEARED = 50  # cleared alarms listed, newest first
SEVERITY_COLORS = {"error": "danger", "warning": "warning"}
STATE_COLORS = {ACTIVE: "danger", ACKNOWLEDGED: "primary", MUTED: "secondary", CLEARED: "success"}
# (label, minutes) of the mute durations offered.
MUTE_CHOICES: tuple[tuple[str, int], ...] = (
    ("15 min", 15),
    ("1 hour", 60),
    ("4 hours", 240),
    ("12 hours", 720),
    ("24 hours", 1440),
)
DEFAULT_MUTE_MINUTES = 60


def alarm_rows(frame: pd.DataFrame, state: str) -> list[dict[str, Any]]:
    """The alarms of one state, newest first (cleared ones: the newest `RECENT_CLEARED`), with links."""
    if frame.empty:
        return []
    chosen = frame[frame["state"] == state].sort_values(["fired_utc", "alarm_id"], ascending=False)
    if state == CLEARED:
        chosen = chosen.head(RECENT_CLEARED)
    rows = []
    for record in chosen.to_dict("records"):
        run, subsystem, histogram = int(record["run"]), str(record["subsystem"]), str(record["histogram"])
        rows.append(
            {
                **record,
                "histogram_label": histogram_label(record),
                "histogram_href": run_page_url(run, subsystem, histogram),
                "trend_href": trend_url(
                    subsystem, run, histogram, str(record["quantity"]), str(record["content"]), AXIS_TIME
                ),
            }
        )
    return rows


def state_counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["state"].value_counts().to_dict() if not frame.empty else {}
    return {state: int(counts.get(state, 0)) for state, _ in SECTIONS}


def alarm_sections(frame: pd.DataFrame) -> list:
    """One card per state with its table (or a quiet line when there is none)."""
    counts = state_counts(frame)
    cards = []
    for state, title in SECTIONS:
        rows = alarm_rows(frame, state)
        body: Any = (
            _table(rows, state)
            if rows
            else html.P(f"No {title.lower()} alarms.", className="text-muted mb-0")
        )
        cards.append(
            dbc.Card(
                [
                    dbc.CardHeader(
                        [
                            html.Span(title, className="me-2 fw-bold"),
                            dbc.Badge(str(counts[state]), color=STATE_COLORS[state], className="state-count"),
                        ]
                    ),
                    dbc.CardBody(body, className="p-2"),
                ],
                id=f"alarms-section-{state}",
                className="alarm-section mb-3",
            )
        )
    return cards


def _table(rows: Sequence[dict[str, Any]], state: str) -> dbc.Table:
    open_state = state in (ACTIVE, ACKNOWLEDGED, MUTED)
    headers = [
        "Severity",
        "Run",
        "Subsystem",
        "Alarm",
        "Histogram",
        "Message",
        "Fired (UTC)",
        _when_label(state),
    ]
    if open_state:
        headers.append("Actions")
    body = [
        html.Tr(
            [
                html.Td(dbc.Badge(row["severity"], color=SEVERITY_COLORS.get(row["severity"], "secondary"))),
                html.Td(str(row["run"])),
                html.Td(row["subsystem"]),
                html.Td(row["alarm"], className="alarm-name"),
                html.Td(
                    [
                        # People read the display name; the raw name (what the alarm file matches)
                        # is the link's tooltip.
                        dcc.Link(
                            row["histogram_label"],
                            href=row["histogram_href"],
                            title=row["histogram"],
                            className="alarm-histogram-link",
                        ),
                        html.Br(),
                        dcc.Link(
                            f"trend of {row['quantity']} ↗",
                            href=row["trend_href"],
                            className="alarm-trend-link small",
                        ),
                    ]
                ),
                html.Td(row["message"], className="alarm-message"),
                html.Td(format_time(row["fired_utc"])),
                html.Td(_when(row, state)),
                *([html.Td(_actions(row, state))] if open_state else []),
            ],
            id=f"alarm-row-{row['alarm_id']}",
            className=f"alarm-row alarm-{state}",
        )
        for row in rows
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in headers])), html.Tbody(body)],
        className="alarm-table mb-0",
        size="sm",
        hover=True,
        responsive=True,
    )


def _when_label(state: str) -> str:
    return {ACKNOWLEDGED: "Acknowledged", MUTED: "Muted until (UTC)", CLEARED: "Cleared (UTC)"}.get(
        state, "Last seen (UTC)"
    )


def _when(row: dict[str, Any], state: str) -> Any:
    if state == ACKNOWLEDGED:
        return f"{format_time(row['acknowledged_utc'])} by {row['acknowledged_by']}"
    if state == MUTED:
        return format_time(row["muted_until_utc"])
    if state == CLEARED:
        return format_time(row["cleared_utc"])
    # Its own element: a refresh updates this text alone (`last_seen_texts`), never the row's inputs.
    return html.Span(last_seen_text(row), id={"type": Alarms.LAST_SEEN, "alarm": row["alarm_id"]})


def last_seen_text(row: Any) -> str:
    """'2026-12-06 23:36:10 (7×)': when an active alarm was last seen, and how often."""
    return f"{format_time(row['last_seen_utc'])} ({int(row['occurrences'])}×)"


def last_seen_texts(frame: pd.DataFrame, alarm_ids: Sequence[str]) -> list[str]:
    """The last-seen text of each of `alarm_ids` (in that order), "—" for one no longer in `frame`."""
    rows = {} if frame.empty else {str(r["alarm_id"]): r for r in frame.to_dict("records")}
    return [last_seen_text(rows[i]) if i in rows else "—" for i in alarm_ids]


def _actions(row: dict[str, Any], state: str) -> html.Div:
    alarm_id = row["alarm_id"]
    buttons: list[Any] = []
    if state == ACTIVE:
        buttons.append(
            dbc.Button(
                "Acknowledge",
                id={"type": Alarms.ACKNOWLEDGE, "alarm": alarm_id},
                size="sm",
                color="primary",
                className="me-1",
            )
        )
    buttons += [
        dbc.Select(
            id={"type": Alarms.MUTE_FOR, "alarm": alarm_id},
            options=[{"label": label, "value": str(minutes)} for label, minutes in MUTE_CHOICES],
            value=str(DEFAULT_MUTE_MINUTES),
            # A redraw (another alarm changed state) keeps the duration someone picked.
            persistence=True,
            persistence_type="memory",
            size="sm",
            className="mute-for",
        ),
        dbc.Button(
            "Unmute" if state == MUTED else "Mute",
            id={"type": Alarms.MUTE, "alarm": alarm_id},
            size="sm",
            color="secondary",
            outline=True,
            className="ms-1",
        ),
    ]
    return html.Div(buttons, className="alarm-actions d-flex align-items-center")


def format_time(value: Any) -> str:
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return "—"
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def sections_key(frame: pd.DataFrame) -> list:
    """What the tables' rows are, so a refresh with no new row or state leaves them (and a half-chosen
    mute) alone. Not the last-seen times and counts: a firing alarm bumps them on every snapshot, and
    the page updates those texts in place (`last_seen_texts`)."""
    if frame.empty:
        return []
    columns = ["alarm_id", "state", "message", "muted_until_utc", "acknowledged_by"]
    return [[str(value) for value in row] for row in frame[columns].itertuples(index=False)]


# ---- thresholds -----------------------------------------------------------------------------------


def parameter_key(subsystem: str, path: str, parameter: str) -> str:
    """The form's value for one parameter: `EMC|new_hot_fastor|max`."""
    return f"{subsystem}|{path}|{parameter}"


def split_parameter_key(key: str) -> tuple[str, str, str]:
    """Inverse of `parameter_key`; ValueError when the key is not one."""
    parts = str(key or "").split("|")
    if len(parts) != 3 or not all(parts):
        raise ValueError("Alarm parameter: choose one from the list")
    return parts[0], parts[1], parts[2]


def parameter_options(parameters: Sequence[Any]) -> list[dict[str, str]]:
    """`EMC · new_hot_fastor · max = 4 (between on interval hot_channels)` per changeable parameter."""
    return [
        {
            "label": f"{p.subsystem} · {p.path} · {p.parameter} = {_value_text(p.value)} "
            f"({p.rule} on {p.content} {p.quantity})",
            "value": parameter_key(p.subsystem, p.path, p.parameter),
        }
        for p in parameters
    ]


def parse_threshold_value(text: Any) -> int | float:
    """A typed new value as a number (integers stay integers: `n = 3`); ValueError saying what is wrong."""
    raw = str(text if text is not None else "").strip()
    if not raw:
        raise ValueError("New value: type a number")
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"New value: “{raw}” is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"New value: “{raw}” is not a finite number")
    return int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number


def change_log_table(changes: Sequence[Any]) -> dbc.Table | html.P:
    """Every recorded threshold change, newest first: when, who, which parameter, beam type, old → new."""
    if not changes:
        return html.P("No threshold changed yet.", className="text-muted mb-0")
    rows = [
        html.Tr(
            [
                html.Td(change.time_utc.replace("T", " ").replace("+00:00", "")),
                html.Td(change.who),
                html.Td(f"{change.subsystem} · {change.alarm} · {change.parameter}"),
                html.Td(change.beam_type or "all"),
                html.Td(_value_text(change.old)),
                html.Td(_value_text(change.new)),
            ],
            className="threshold-change",
        )
        for change in reversed(changes)
    ]
    headers = ["When (UTC)", "Who", "Parameter", "Beam type", "Old", "New"]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in headers])), html.Tbody(rows)],
        size="sm",
        className="threshold-log mb-0",
        responsive=True,
    )


def _value_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
