"""`/alarms`: active, acknowledged, muted and recently cleared alarms, each linking to its histogram and
its trend; acknowledge and mute buttons; the experts' threshold form with its change log.

Every action goes through the QC layer's functions on the ProcessingService (`acknowledge_alarm`,
`mute_alarm`, `set_alarm_threshold`), which record who did it; the page asks for a name once (kept in
the browser) and says clearly what is missing or wrong instead of doing nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard.access import Role, acting_name, callback_role
from dashboard.alarm_table import (
    alarm_sections,
    change_log_table,
    last_seen_texts,
    parameter_options,
    parse_threshold_value,
    sections_key,
    split_parameter_key,
)
from dashboard.context import PageContext
from dashboard.ids import Alarms
from pipeline.qc.alarms import AlarmConfigError

logger = logging.getLogger(__name__)

PATHS = ("/alarms",)
# Shifters see and acknowledge alarms; experts mute them and change thresholds (per callback).
ROLE = Role.SHIFTER
REFRESH_MS = 5000
WHO_MISSING = (
    "Type your name in “Your name” first: acknowledgements, mutes and threshold changes are recorded "
    "with who made them."
)


def layout(context: PageContext, params: dict, query: dict) -> html.Div:
    service = context.service
    frame = service.alarms()
    who = dbc.InputGroup(
        [
            dbc.InputGroupText("Your name"),
            dbc.Input(
                id=Alarms.WHO,
                type="text",
                placeholder="e.g. shift leader's name",
                autocomplete="name",
                persistence=True,
                persistence_type="local",
            ),
        ],
        size="sm",
        className="alarms-who",
    )
    return html.Div(
        [
            html.Div([html.H2("Alarms", className="run-title me-auto"), who], className="run-header"),
            html.Div(id=Alarms.MESSAGE, role="alert", className="alarms-message"),
            html.Div(alarm_sections(frame), id=Alarms.SECTIONS),
            _threshold_card(context),
            dcc.Interval(id=Alarms.REFRESH, interval=REFRESH_MS),
            dcc.Store(id=Alarms.KEY, data=sections_key(frame)),
            dcc.Store(id=Alarms.CHANGED, data=0),
        ],
        className="alarms-page",
    )


def _threshold_card(context: PageContext) -> dbc.Card:
    service = context.service
    options = parameter_options(service.alarm_parameters())
    return dbc.Card(
        [
            dbc.CardHeader(html.Span("Alarm thresholds (experts)", className="fw-bold")),
            dbc.CardBody(
                [
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label(
                                        "Alarm parameter",
                                        html_for=Alarms.PARAMETER,
                                        className="control-label",
                                    ),
                                    dbc.Select(
                                        id=Alarms.PARAMETER,
                                        options=options,
                                        value=options[0]["value"] if options else None,
                                        size="sm",
                                    ),
                                ],
                                md=6,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("Beam type", html_for=Alarms.BEAM, className="control-label"),
                                    dbc.Input(
                                        id=Alarms.BEAM,
                                        type="text",
                                        placeholder="all beam types (or pp, PbPb...)",
                                        size="sm",
                                        autocomplete="off",
                                    ),
                                ],
                                md=2,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("New value", html_for=Alarms.VALUE, className="control-label"),
                                    dbc.Input(
                                        id=Alarms.VALUE,
                                        type="text",
                                        inputmode="decimal",
                                        size="sm",
                                        autocomplete="off",
                                    ),
                                ],
                                md=2,
                            ),
                            dbc.Col(
                                dbc.Button("Change threshold", id=Alarms.CHANGE, color="warning", size="sm"),
                                md=2,
                                className="d-flex align-items-end",
                            ),
                        ],
                        className="g-2 mb-2",
                    ),
                    html.Div(
                        "Used by the QC service from its next snapshot; recorded with your name, the time, "
                        "the old and the new value.",
                        className="option-help mb-2",
                    ),
                    html.Div(change_log_table(service.alarm_threshold_changes()), id=Alarms.CHANGE_LOG),
                ]
            ),
        ],
        className="alarm-thresholds mb-3",
    )


def register_callbacks(app: dash.Dash, context: PageContext) -> None:
    service = context.service

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Alarms.SECTIONS, "children"),
        Output(Alarms.KEY, "data"),
        Output({"type": Alarms.LAST_SEEN, "alarm": ALL}, "children"),
        Input(Alarms.REFRESH, "n_intervals"),
        Input(Alarms.CHANGED, "data"),
        State(Alarms.KEY, "data"),
        State({"type": Alarms.LAST_SEEN, "alarm": ALL}, "id"),
        State({"type": Alarms.LAST_SEEN, "alarm": ALL}, "children"),
        prevent_initial_call=True,
    )
    def show(_tick, _changed, shown, seen_ids, seen_texts):
        frame = service.alarms()
        key = sections_key(frame)
        if key != shown:  # a new alarm or a changed state: the tables anew
            return alarm_sections(frame), key, [no_update] * len(seen_ids)
        # Only counts and times moved: update those texts, never the rows' inputs (a half-chosen mute
        # duration stays as picked).
        texts = last_seen_texts(frame, [i["alarm"] for i in seen_ids])
        if texts == (seen_texts or []):
            raise PreventUpdate
        return no_update, no_update, texts

    # Shifters acknowledge; muting is an alarm setting, an expert's.
    @callback_role(app, Role.SHIFTER, escalate={Alarms.MUTE: Role.EXPERT})
    @app.callback(
        Output(Alarms.MESSAGE, "children", allow_duplicate=True),
        Output(Alarms.CHANGED, "data", allow_duplicate=True),
        Input({"type": Alarms.ACKNOWLEDGE, "alarm": ALL}, "n_clicks"),
        Input({"type": Alarms.MUTE, "alarm": ALL}, "n_clicks"),
        State({"type": Alarms.MUTE, "alarm": ALL}, "children"),
        State({"type": Alarms.MUTE, "alarm": ALL}, "id"),
        State({"type": Alarms.MUTE_FOR, "alarm": ALL}, "value"),
        State({"type": Alarms.MUTE_FOR, "alarm": ALL}, "id"),
        State(Alarms.WHO, "value"),
        State(Alarms.CHANGED, "data"),
        prevent_initial_call=True,
    )
    def act(_acks, _mutes, mute_labels, mute_ids, durations, duration_ids, who, changed):
        who = acting_name(who)
        trigger = ctx.triggered_id
        # Tables drawn anew fire these inputs with no click: only a real click acts.
        if not isinstance(trigger, dict) or not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        if not (who or "").strip():
            return _alert(WHO_MISSING, "warning"), no_update
        alarm_id = trigger["alarm"]
        try:
            if trigger["type"] == Alarms.ACKNOWLEDGE:
                service.acknowledge_alarm(alarm_id, who)
                text = f"Alarm {alarm_id} acknowledged by {who.strip()}."
            else:
                labels = {i["alarm"]: label for i, label in zip(mute_ids, mute_labels, strict=True)}
                minutes = {i["alarm"]: value for i, value in zip(duration_ids, durations, strict=True)}
                now = datetime.now(UTC)
                if labels.get(alarm_id) == "Unmute":
                    service.mute_alarm(alarm_id, now - timedelta(seconds=1), who)
                    text = f"Alarm {alarm_id} unmuted by {who.strip()}."
                else:
                    until = now + timedelta(minutes=int(minutes.get(alarm_id) or 60))
                    service.mute_alarm(alarm_id, until, who)
                    text = f"Alarm {alarm_id} muted until {until:%Y-%m-%d %H:%M} UTC by {who.strip()}."
        except (KeyError, ValueError) as error:
            return _alert(f"Not done: {_plain_error(error)}", "danger"), no_update
        return _alert(text, "success"), (changed or 0) + 1

    @callback_role(app, Role.EXPERT)  # changes an alarm threshold: stored
    @app.callback(
        Output(Alarms.MESSAGE, "children", allow_duplicate=True),
        Output(Alarms.CHANGE_LOG, "children"),
        Output(Alarms.PARAMETER, "options"),
        Input(Alarms.CHANGE, "n_clicks"),
        State(Alarms.PARAMETER, "value"),
        State(Alarms.BEAM, "value"),
        State(Alarms.VALUE, "value"),
        State(Alarms.WHO, "value"),
        prevent_initial_call=True,
    )
    def change_threshold(_clicks, key, beam_type, value_text, who):
        who = acting_name(who)
        if not (who or "").strip():
            return _alert(WHO_MISSING, "warning"), no_update, no_update
        try:
            subsystem, path, parameter = split_parameter_key(key)
            value = parse_threshold_value(value_text)
            change = service.set_alarm_threshold(
                subsystem, path, parameter, value, who, (beam_type or "").strip()
            )
        except (ValueError, AlarmConfigError) as error:
            return _alert(f"Threshold not changed. {_plain_error(error)}", "danger"), no_update, no_update
        text = (
            f"{change.subsystem} · {change.alarm} · {change.parameter}: {change.old} → {change.new} "
            f"({change.beam_type or 'all beam types'}), recorded for {change.who}."
        )
        return (
            _alert(text, "success"),
            change_log_table(service.alarm_threshold_changes()),
            parameter_options(service.alarm_parameters()),
        )


def _alert(text: str, color: str) -> dbc.Alert:
    return dbc.Alert(text, color=color, className="py-2 px-3 mb-2", dismissable=True)


def _plain_error(error: Exception) -> str:
    # KeyError's text is the repr of its argument; show the sentence.
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
