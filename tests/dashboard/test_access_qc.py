"""Roles on the QC actions, enforced by the server: a shifter acknowledges alarms but cannot mute them,
change alarm thresholds or mark references (403, nothing written); an expert can; the action is recorded
for the logged-in user, whatever name is typed."""

from __future__ import annotations

import json
import os

import pytest

from benchmarks.dash_bodies import callback_key, update_body
from dashboard.app import create_app
from dashboard.ids import Alarms, RunQC
from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.alarm_config import threshold_changes
from tests.dashboard.access_app import access_settings, csrf_token, log_in
from tests.dashboard.qc_store import FASTOR_L0, FAULT_RUN

UPDATE = "/_dash-update-component"


@pytest.fixture
def app(qc_data_dir, tmp_path):
    access_settings(tmp_path)  # users file (and a small store we do not use)
    return create_app(access_settings(tmp_path, data_dir=qc_data_dir, cache_dir=tmp_path / "cache2"))


def _qc_files(data_dir):
    folder = data_dir / "qc"
    return {
        (root, name, os.stat(os.path.join(root, name)).st_mtime_ns)
        for root, _, names in os.walk(folder)
        for name in names
    }


def _alarm(data_dir, histogram=FASTOR_L0):
    frame = AlarmBook(data_dir).alarms()
    return frame[frame["histogram"] == histogram].iloc[0]


def _pattern(kind: str, prop: str) -> str:
    return json.dumps({"alarm": ["ALL"], "type": kind}, separators=(",", ":"), sort_keys=True) + f".{prop}"


def _act_body(app, alarm_id: str, kind: str):
    key = callback_key(app.callback_map, "alarms-changed.data")
    clicked = {"id": {"alarm": alarm_id, "type": kind}, "property": "n_clicks", "value": 1}
    mute_id = {"alarm": alarm_id, "type": Alarms.MUTE}
    values = {
        _pattern(Alarms.ACKNOWLEDGE, "n_clicks"): [clicked] if kind == Alarms.ACKNOWLEDGE else [],
        _pattern(Alarms.MUTE, "n_clicks"): [clicked] if kind == Alarms.MUTE else [],
        _pattern(Alarms.MUTE, "children"): [{"id": mute_id, "property": "children", "value": "Mute"}],
        _pattern(Alarms.MUTE, "id"): [{"id": mute_id, "property": "id", "value": mute_id}],
        f"{Alarms.WHO}.value": "Mallory",
        f"{Alarms.CHANGED}.data": 0,
    }
    changed = (
        json.dumps({"alarm": alarm_id, "type": kind}, separators=(",", ":"), sort_keys=True) + ".n_clicks"
    )
    return update_body(app.callback_map, key, values, (changed,))


def _threshold_body(app, value: str):
    key = callback_key(app.callback_map, "alarms-threshold-log.children")
    values = {
        f"{Alarms.CHANGE}.n_clicks": 1,
        f"{Alarms.PARAMETER}.value": "EMC|new_hot_fastor|max",
        f"{Alarms.VALUE}.value": value,
        f"{Alarms.WHO}.value": "Mallory",
    }
    return update_body(app.callback_map, key, values, (f"{Alarms.CHANGE}.n_clicks",))


def _reference_body(app):
    key = callback_key(app.callback_map, f"{RunQC.REFERENCE_MESSAGE}.children")
    values = {
        f"{RunQC.SET_REFERENCE}.n_clicks": 1,
        f"{RunQC.REFERENCE_WHO}.value": "Mallory",
        "run-url.pathname": f"/run/{FAULT_RUN}/EMC",
    }
    return update_body(app.callback_map, key, values, (f"{RunQC.SET_REFERENCE}.n_clicks",))


def _post(client, body):
    return client.post(UPDATE, json=body, headers={"X-CSRFToken": csrf_token(client)})


def test_a_shifter_cannot_mute_change_thresholds_or_mark_references(app, qc_data_dir):
    client = log_in(app, "shifter1")
    alarm_id = _alarm(qc_data_dir)["alarm_id"]
    before = _qc_files(qc_data_dir)
    for body in (_act_body(app, alarm_id, Alarms.MUTE), _threshold_body(app, "6"), _reference_body(app)):
        answer = _post(client, body)
        assert answer.status_code == 403, answer.get_data(as_text=True)[:300]
        assert "needs the expert role" in answer.get_json()["message"]
    assert _qc_files(qc_data_dir) == before
    assert threshold_changes(qc_data_dir) == [] and _alarm(qc_data_dir)["state"] == "active"


def test_a_shifter_acknowledges_as_themself(app, qc_data_dir):
    client = log_in(app, "shifter1")
    alarm_id = _alarm(qc_data_dir)["alarm_id"]
    answer = _post(client, _act_body(app, alarm_id, Alarms.ACKNOWLEDGE))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    stored = _alarm(qc_data_dir)
    assert stored["state"] == "acknowledged" and stored["acknowledged_by"] == "shifter1"


def test_an_expert_changes_an_alarm_threshold_and_marks_a_reference(app, qc_data_dir):
    client = log_in(app, "expert1")
    assert _post(client, _threshold_body(app, "6")).status_code == 200
    changes = threshold_changes(qc_data_dir)
    assert [(c.who, c.alarm, c.parameter, c.new) for c in changes] == [
        ("expert1", "new_hot_fastor", "max", 6)
    ]
    answer = _post(client, _reference_body(app))
    assert answer.status_code == 200 and "set by expert1" in answer.get_data(as_text=True)
